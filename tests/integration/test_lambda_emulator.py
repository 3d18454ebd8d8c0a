"""The event-source-mapping emulator against the real local stack: what only a real server shows (event
shapes, resharding, the proxy's throttling and expiry, SQS, restarts on a store). Its AWS semantics are
unit-tested on FakeKinesis in tests/unit/test_emulator_engine.py."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer import Producer, ProducerConfig
from producer.replay import replay
from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.checkpoints import SqliteCheckpointStore
from streamkit.destinations import SqsDestination
from streamkit.testing import ProxyHandle, StreamHandle
from tests.integration.helpers import read_stream, split_first_shard

pytestmark = pytest.mark.integration
EVENT_RECORD_KEYS = {"kinesis", "eventSource", "eventVersion", "eventID", "eventName", "invokeIdentityArn",
                     "awsRegion", "eventSourceARN"}


def put_plain(stream: StreamHandle, n: int, keys: int = 5) -> None:
    with Producer(stream.name, client=stream.client, config=ProducerConfig(aggregation=False)) as p:
        for i in range(n):
            p.put(b"%d" % i, f"k{i % keys}")


def run(stream: StreamHandle, handler: Any, **config: Any) -> Any:
    esm = EventSourceMapping(stream.name, handler, client=stream.client,
                             config=EsmConfig(starting_position="TRIM_HORIZON", retry_delay=0.01, **config))
    return esm.run(stop_after_idle=1.5)


def values(event: dict[str, Any]) -> list[int]:
    return [int(base64.b64decode(r["kinesis"]["data"])) for r in event["Records"]]


@pytest.mark.streamkit(shards=1)
def test_events_have_exactly_the_fields_aws_sends(kinesis_stream: StreamHandle) -> None:
    put_plain(kinesis_stream, 30)
    events: list[dict[str, Any]] = []
    stats = run(kinesis_stream, lambda e, c: events.append(e), batch_size=10)
    got = [v for e in events for v in values(e)]
    assert got == list(range(30)) and stats.invocations == 3
    r = events[0]["Records"][0]
    assert set(r) == EVENT_RECORD_KEYS and r["eventSource"] == "aws:kinesis"
    assert set(r["kinesis"]) == {"kinesisSchemaVersion", "partitionKey", "sequenceNumber", "data",
                                 "approximateArrivalTimestamp"}
    assert r["eventID"] == f"shardId-000000000000:{r['kinesis']['sequenceNumber']}"
    assert r["eventSourceARN"] == kinesis_stream.arn and isinstance(r["kinesis"]["approximateArrivalTimestamp"], float)


@pytest.mark.streamkit(shards=1)
def test_a_parents_records_are_all_handled_before_its_childrens_first_batch(kinesis_stream: StreamHandle) -> None:
    client, name = kinesis_stream.client, kinesis_stream.name

    def put(values: range) -> None:
        with Producer(name, client=client, config=ProducerConfig(aggregation=False)) as p:
            for i in values:
                p.put(b"%d" % i, f"k{i % 6}")

    put(range(60))
    parent = split_first_shard(client, name)
    put(range(60, 120))
    seen: list[tuple[str, int]] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> None:
        with lock:
            seen.extend((r["eventID"].split(":")[0], v) for r, v in zip(event["Records"], values(event), strict=True))
        time.sleep(0.02)  # slow enough that children read at once would overtake the parent

    run(kinesis_stream, handler, batch_size=10)
    assert sorted(v for _s, v in seen) == list(range(120))
    shards = [sid for sid, _v in seen]
    last_parent = max(i for i, sid in enumerate(shards) if sid == parent)
    assert all(sid == parent for sid in shards[:last_parent + 1]) and len(set(shards)) == 3


@pytest.mark.streamkit(shards=2)
def test_expired_iterators_and_throttling_resume_where_reading_stopped(
        kinesis_stream: StreamHandle, kinesis_proxy: Callable[..., ProxyHandle]) -> None:
    put_plain(kinesis_stream, 300, keys=7)
    proxy = kinesis_proxy(limit_scale=1.0, faults="expired=0.3,throttle=0.2,seed=5")
    got: list[int] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> None:
        with lock:
            got.extend(values(event))

    esm = EventSourceMapping(kinesis_stream.name, handler, client=proxy.client(),
                             config=EsmConfig(starting_position="TRIM_HORIZON", retry_delay=0.01, batch_size=10))
    # The pollers keep calling GetRecords (about once a second once caught up), so over the run
    # several calls hit an expired iterator; each must resume after the last record read.
    esm.run(stop_after_idle=2.0)
    assert sorted(got) == list(range(300))
    assert proxy.stats().get("fault.expired", 0) > 0


@pytest.mark.streamkit(shards=1)
def test_with_a_checkpoint_store_a_restart_resumes_where_the_last_run_stopped(kinesis_stream: StreamHandle,
                                                                            tmp_path: Path) -> None:
    client, name = kinesis_stream.client, kinesis_stream.name
    store = SqliteCheckpointStore(tmp_path / "esm.db")

    def put(values: range) -> None:
        with Producer(name, client=client, config=ProducerConfig(aggregation=False)) as p:
            for i in values:
                p.put(b"%d" % i, f"k{i % 4}")

    def run_once(**config: Any) -> list[int]:
        got: list[int] = []
        lock = threading.Lock()

        def handler(event: dict[str, Any], context: Any) -> None:
            with lock:
                got.extend(values(event))

        EventSourceMapping(name, handler, client=client, checkpoint_store=store,
                           config=EsmConfig(starting_position="TRIM_HORIZON", batch_size=10, retry_delay=0.01,
                                            **config)).run(stop_after_idle=1.0)
        return sorted(got)

    put(range(40))
    assert run_once(parallelization_factor=3) == list(range(40))
    parent = split_first_shard(client, name)
    put(range(40, 70))
    assert run_once() == list(range(40, 70))  # the parent from where it stopped, then its children
    lease = store.get_lease(f"esm:streamkit-local-function:{name}", parent)
    assert lease is not None and lease.checkpoint.is_shard_end
    put(range(70, 80))
    assert run_once() == list(range(70, 80))  # the finished parent is not read again


@pytest.mark.streamkit(shards=1)
def test_a_throttled_poller_is_not_idle(kinesis_stream: StreamHandle, kinesis_proxy: Callable[..., ProxyHandle]) -> None:
    put_plain(kinesis_stream, 50)
    proxy = kinesis_proxy(faults="throttle=1.0")  # every GetRecords call is throttled...
    threading.Timer(1.0, lambda: proxy.configure(faults="")).start()  # ...for the first second
    got: list[int] = []
    esm = EventSourceMapping(kinesis_stream.name, lambda e, c: got.extend(values(e)), client=proxy.client(),
                             config=EsmConfig(starting_position="TRIM_HORIZON", retry_delay=0.01))
    esm.run(stop_after_idle=0.3)  # shorter than the throttling: stopping then would lose every record
    assert sorted(got) == list(range(50))
    assert proxy.stats().get("fault.throttle_call", 0) > 0


@pytest.mark.streamkit(shards=1)
def test_on_failure_to_a_local_sqs_queue(kinesis_stream: StreamHandle, sqs_client: Any) -> None:
    put_plain(kinesis_stream, 2)
    queue = sqs_client.create_queue(QueueName="onfailure")["QueueUrl"]

    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("down")

    run(kinesis_stream, handler, batch_size=2, max_retry_attempts=0, on_failure=SqsDestination(queue, client=sqs_client))
    msgs = sqs_client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    doc = orjson.loads(msgs[0]["Body"])
    assert doc["KinesisBatchInfo"]["batchSize"] == 2 and doc["requestContext"]["condition"] == "RetryAttemptsExhausted"


@pytest.mark.streamkit(shards=1)
def test_replay_reads_on_failure_ranges_back_from_the_stream(kinesis_stream: StreamHandle, stream_factory: Any,
                                                            tmp_path: Path) -> None:
    put_plain(kinesis_stream, 4)
    dead = tmp_path / "onfailure.jsonl"
    run(kinesis_stream, lambda e, c: (_ for _ in ()).throw(RuntimeError("x")), batch_size=4, max_retry_attempts=0,
        on_failure=f"file:{dead}")
    target = stream_factory(shards=1)
    result = replay(f"file:{dead}", target.name, client=target.client)
    assert result == {"letters": 1, "records": 4, "failed": 0, "stopped": 0}
    assert sorted(int(d) for recs in read_stream(target.client, target.name).values() for _k, d, _s in recs) == [0, 1, 2, 3]
