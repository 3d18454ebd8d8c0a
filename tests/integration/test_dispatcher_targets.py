"""Dispatcher targets over the wire: Lambda Invoke against a local endpoint, SQS against moto's server."""

from __future__ import annotations

import base64
import threading
import time
from collections import defaultdict
from typing import Any

import orjson
import pytest

from dispatcher import Dispatcher, LambdaTarget, SqsTarget
from dispatcher.handler import dispatcher_from_env
from producer import Producer, ProducerConfig
from streamkit.aws.clients import aws_client
from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.aws_lambda.events import parse_event
from streamkit.errors import ConfigurationError
from streamkit.local.lambda_server import LocalLambdaServer
from streamkit.records import StreamRecord
from streamkit.testing import StreamHandle

pytestmark = pytest.mark.integration


def recs(n: int, keys: int = 10, size: int = 10) -> list[StreamRecord]:
    return [StreamRecord(b"%d" % i + b"x" * size, f"k{i % keys}", str(5000 + i), None, "shardId-000000000000")
            for i in range(n)]


def test_lambda_target_invokes_asynchronously_in_chunks_under_the_payload_limit() -> None:
    got: list[list[dict[str, Any]]] = []
    lock = threading.Lock()

    def worker(event: dict[str, Any], context: Any) -> None:
        with lock:
            got.append(event["records"])

    with LocalLambdaServer({"worker": worker}) as server:
        client = aws_client("lambda", endpoint_url=server.endpoint, retries=0)
        target = LambdaTarget("worker", client=client, max_payload=4096, concurrency=4)
        d = Dispatcher(target, mode="unordered")
        result = d.dispatch(recs(200, size=50))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum(map(len, got)) < 200:
            time.sleep(0.02)
        d.close()
    assert result.delivered == 200 and not result.failed
    datas = sorted(int(base64.b64decode(r["data"]).rstrip(b"x")) for chunk in got for r in chunk)
    assert datas == list(range(200))
    assert len(got) > 4 and all(len(orjson.dumps({"records": c})) <= 4096 for c in got)


def test_per_key_mode_invokes_synchronously_in_order_and_retries_function_errors() -> None:
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()
    failed_once: set[int] = set()

    def worker(event: dict[str, Any], context: Any) -> None:
        for r in event["records"]:
            n = int(base64.b64decode(r["data"]).rstrip(b"x"))
            if n % 10 == 3 and n not in failed_once:  # every tenth record fails once, and its whole call
                failed_once.add(n)
                raise RuntimeError(f"flaky on {n}")
        with lock:
            seen.extend((r["partition_key"], int(base64.b64decode(r["data"]).rstrip(b"x"))) for r in event["records"])

    with LocalLambdaServer({"worker": worker}) as server:
        client = aws_client("lambda", endpoint_url=server.endpoint, retries=0)
        with pytest.raises(ConfigurationError, match="synchronous=True"):
            Dispatcher(LambdaTarget("worker", client=client), mode="per-key")
        target = LambdaTarget("worker", client=client, synchronous=True, concurrency=4)
        d = Dispatcher(target, mode="per-key", max_attempts=3, backoff_base=0.001)
        result = d.dispatch(recs(200, keys=20))
        d.close()
    assert result.delivered == 200 and not result.failed and result.retried > 0
    per_key: dict[str, list[int]] = defaultdict(list)
    for key, n in seen:
        per_key[key].append(n)
    assert sum(map(len, per_key.values())) >= 200
    for key, ns in per_key.items():
        assert sorted(set(ns)) == [n for n in range(200) if f"k{n % 20}" == key]
        first_seen = list(dict.fromkeys(ns))
        assert first_seen == sorted(first_seen), f"{key} handled out of order"


def test_a_missing_function_fails_only_its_records() -> None:
    with LocalLambdaServer({}) as server:
        client = aws_client("lambda", endpoint_url=server.endpoint, retries=0)
        d = Dispatcher(LambdaTarget("nope", client=client), mode="unordered", max_attempts=2, backoff_base=0.001)
        result = d.dispatch(recs(5))
        d.close()
    assert len(result.failed) == 5 and result.delivered == 0


def test_sqs_fifo_target_groups_messages_by_partition_key(sqs_client: Any) -> None:
    queue = sqs_client.create_queue(QueueName="work.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    d = Dispatcher(SqsTarget(queue, client=sqs_client), mode="per-key", lanes=4)
    result = d.dispatch(recs(30, keys=3))
    d.close()
    assert result.delivered == 30
    by_group: dict[str, list[int]] = defaultdict(list)
    for _ in range(20):
        out = sqs_client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"])
        for m in out.get("Messages", []):
            body = orjson.loads(m["Body"])
            assert m["Attributes"]["MessageGroupId"] == body["partition_key"]
            by_group[body["partition_key"]].append(int(base64.b64decode(body["data"]).rstrip(b"x")))
            sqs_client.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
        if sum(map(len, by_group.values())) == 30:
            break
    assert sorted(by_group) == ["k0", "k1", "k2"]
    assert all(v == sorted(v) for v in by_group.values())


@pytest.mark.streamkit(shards=1)
def test_the_lambda_entry_point_configured_by_environment_under_the_emulator(
        kinesis_stream: StreamHandle, sqs_client: Any, sqs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = sqs_client.create_queue(QueueName="fanout.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    with Producer(kinesis_stream.name, client=kinesis_stream.client, config=ProducerConfig()) as p:
        for i in range(120):
            p.put(b"%d" % i, f"k{i % 7}")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", sqs_endpoint)
    d = dispatcher_from_env({"STREAMKIT_DISPATCH_TARGET": f"sqs:{queue}", "STREAMKIT_DISPATCH_MODE": "per-key",
                             "STREAMKIT_DISPATCH_LANES": "4"})

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"batchItemFailures": d.dispatch(parse_event(event)).batch_item_failures()}

    stats = EventSourceMapping(kinesis_stream.name, handler, client=kinesis_stream.client,
                               config=EsmConfig(starting_position="TRIM_HORIZON", report_batch_item_failures=True,
                                                batch_size=100)).run(stop_after_idle=1.5)
    d.close()
    assert stats.function_errors == 0 and stats.partial_failures == 0
    count = int(sqs_client.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
                ["Attributes"]["ApproximateNumberOfMessages"])
    assert count == 120  # every deaggregated reading, once
