"""The console's views against real servers (kinesalite, dynalite, moto's SQS), through its HTTP API:
lease tables of both layouts with owner, checkpoint and lag; an SQS dead-letter queue shown without
taking its messages, and replayed with the token (about 10 s)."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer import Producer
from streamkit.checkpoints import DynamoDBCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.destinations import DeadLetter
from streamkit.errors import ConfigurationError
from streamkit.local.console import ConsoleConfig, ConsoleServer
from streamkit.positions import parse_position
from streamkit.records import StreamRecord
from streamkit.tail import Tail, TailConfig
from streamkit.testing import StreamHandle

pytestmark = pytest.mark.integration


def get(server: ConsoleServer, path: str) -> Any:
    with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=30) as resp:
        return orjson.loads(resp.read())


def post(server: ConsoleServer, path: str, body: dict[str, Any], token: str) -> Any:
    req = urllib.request.Request(server.url.rstrip("/") + path, data=orjson.dumps(body), method="POST",
                                 headers={"Content-Type": "application/json", "X-Streamkit-Token": token})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return orjson.loads(resp.read())


@pytest.mark.streamkit(shards=2)
def test_lease_tables_of_both_layouts_show_owner_counter_checkpoint_and_lag(
        kinesis_stream: StreamHandle, dynamodb_client: Any, tmp_path: Path) -> None:
    name = kinesis_stream.name
    with Producer(name, client=kinesis_stream.client) as p:
        for i in range(20):
            p.put(b"%d" % i, f"k{i}")
    for layout in ("streamkit", "kcl"):
        store = DynamoDBCheckpointStore(f"{name}-{layout}", client=dynamodb_client, layout=layout)  # type: ignore[arg-type]
        Consumer(name, lambda r: None, application_name=f"app-{layout}", checkpoint_store=store,
                 client=kinesis_stream.client, config=ConsumerConfig(initial_position="TRIM_HORIZON")).run(
            install_signal_handlers=False, stop_after_idle=1.0)
    config = ConsoleConfig(kinesis_endpoint=kinesis_stream.stack.kinesis_endpoint,
                           dynamodb_endpoint=kinesis_stream.stack.dynamodb_endpoint)
    told = ConsoleConfig(kinesis_endpoint=kinesis_stream.stack.kinesis_endpoint,
                         dynamodb_endpoint=kinesis_stream.stack.dynamodb_endpoint, lease_streams=(f"{name}-kcl={name}",))
    with ConsoleServer(told) as server:  # told the KCL table's stream, it shows that table's lag too
        kcl = {t["table"]: t for t in get(server, "/api/leases")}[f"{name}-kcl"]
        assert [row["lag_ms"] for row in kcl["leases"]] == [0, 0]
    with ConsoleServer(config) as server:
        tables = {t["table"]: t for t in get(server, "/api/leases")}
        mine = tables[f"{name}-streamkit"]
        assert mine["layout"] == "streamkit" and len(mine["leases"]) == 2
        assert all(row["checkpoint"].split("/")[0].isdigit() and row["counter"] >= 1 for row in mine["leases"])
        assert [row["lag_ms"] for row in mine["leases"]] == [0, 0]  # everything processed: nothing waits
        kcl = tables[f"{name}-kcl"]
        assert kcl["layout"] == "kcl" and {row["lease_key"] for row in kcl["leases"]} == \
            {row["lease_key"] for row in mine["leases"]}
        assert all(row["lag_ms"] is None for row in kcl["leases"])  # a KCL single-stream table names no stream
        with Producer(name, client=kinesis_stream.client) as p:
            for i in range(20):
                p.put(b"late %d" % i, f"k{i}")
        lags = [row["lag_ms"] for row in {t["table"]: t for t in get(server, "/api/leases")}[f"{name}-streamkit"]["leases"]]
        assert all(lag is not None and lag >= 0 for lag in lags)


def test_a_lease_stream_is_given_as_table_equals_stream() -> None:
    with pytest.raises(ConfigurationError, match="TABLE=STREAM"):
        ConsoleConfig(lease_streams=("just-a-table",))


@pytest.mark.streamkit(shards=1)
def test_a_dead_letter_queue_is_shown_without_taking_its_messages_and_replayed_with_the_token(
        kinesis_stream: StreamHandle, sqs_client: Any, sqs_endpoint: str) -> None:
    queue = sqs_client.create_queue(QueueName=f"dlq-{kinesis_stream.name}")["QueueUrl"]
    record = StreamRecord(b'{"sensor_id": "s-9", "temp_c": "bad"}', "s-9", "1", shard_id="shardId-000000000000",
                          event_source_arn=kinesis_stream.arn)
    sqs_client.send_message(QueueUrl=queue, MessageBody=orjson.dumps(
        DeadLetter(record=record, error="ValueError('bad')", attempts=3).to_json()).decode())
    config = ConsoleConfig(kinesis_endpoint=kinesis_stream.stack.kinesis_endpoint,
                           dynamodb_endpoint=kinesis_stream.stack.dynamodb_endpoint, sqs_endpoint=sqs_endpoint,
                           dead_letters=(f"sqs:{queue}",))
    with ConsoleServer(config) as server:
        for _ in range(2):  # looking twice shows it twice: looking takes nothing
            (source,) = get(server, "/api/dead-letters")
            assert source["error"] is None and [(x["partition_key"], x["stream"]) for x in source["letters"]] == \
                [("s-9", kinesis_stream.name)]
            assert '"temp_c": "bad"' in source["letters"][0]["payload"]
        with urllib.request.urlopen(server.url, timeout=10) as resp:
            token = re.search(rb'const TOKEN = "([^"]+)"', resp.read()).group(1).decode()  # type: ignore[union-attr]
        result = post(server, "/api/replay", {"source": f"sqs:{queue}", "stream": kinesis_stream.name}, token)
    assert (result["letters"], result["records"], result["failed"]) == (1, 1, 0)
    back = list(Tail(kinesis_stream.name, client=kinesis_stream.client,
                     config=TailConfig(position=parse_position("trim-horizon"))).records())
    assert [(r.partition_key, r.data) for r in back] == [("s-9", b'{"sensor_id": "s-9", "temp_c": "bad"}')]


@pytest.mark.streamkit(shards=1)
def test_a_long_shard_is_shown_a_page_at_a_time_and_after_goes_on_from_the_last_record(
        kinesis_stream: StreamHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamkit.local.console as console

    monkeypatch.setattr(console, "SHARD_SCAN_RECORDS", 7)
    with Producer(kinesis_stream.name, client=kinesis_stream.client) as p:  # one aggregate: sub-records page too
        for i in range(12):
            p.put(b"%d" % i, "k")
    shard = kinesis_stream.client.list_shards(StreamName=kinesis_stream.name)["Shards"][0]["ShardId"]
    config = ConsoleConfig(kinesis_endpoint=kinesis_stream.stack.kinesis_endpoint,
                           dynamodb_endpoint=kinesis_stream.stack.dynamodb_endpoint)
    with ConsoleServer(config) as server:
        first = get(server, f"/api/records?stream={kinesis_stream.name}&shard={shard}")
        assert first["more"] and [r["body"] for r in first["records"]] == list(range(7))
        last = first["records"][-1]
        after = f"{last['sequence_number']}/{last['sub_sequence_number']}"
        rest = get(server, f"/api/records?stream={kinesis_stream.name}&shard={shard}&after={after}")
        assert not rest["more"] and [r["body"] for r in rest["records"]] == list(range(7, 12))
