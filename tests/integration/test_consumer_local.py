"""The consumer against real local servers: order, resume inside aggregates, failures, faults, resharding."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from producer import Producer, ProducerConfig
from streamkit import kinesis
from streamkit.aggregation import UserRecord, encode
from streamkit.checkpoints import MemoryCheckpointStore, SqliteCheckpointStore
from streamkit.consumer import (
    Consumer,
    ConsumerConfig,
    ProcessRecordsInput,
    RecordProcessor,
    ShardFailedError,
)
from streamkit.destinations import JsonLinesDestination, read_dead_letters
from streamkit.records import StreamRecord
from streamkit.testing import ProxyHandle, StreamHandle
from tests.integration.helpers import merge_first_two_open_shards, split_first_shard

pytestmark = pytest.mark.integration
FAST = dict(idle_poll_interval=0.1, min_poll_interval=0.05, lease_duration=1.5, backoff_base=0.01, backoff_max=0.05)


def cfg(**kw: object) -> ConsumerConfig:
    return ConsumerConfig(**{**FAST, **kw})  # type: ignore[arg-type]


def produce(stream: StreamHandle, n: int, keys: int = 50, **config: object) -> dict[str, list[bytes]]:
    sent: dict[str, list[bytes]] = defaultdict(list)
    with Producer(stream.name, client=stream.client, config=ProducerConfig(**config)) as p:  # type: ignore[arg-type]
        for i in range(n):
            key = f"key-{i % keys}"
            data = b"%d" % i
            sent[key].append(data)
            p.put(data, key)
    return sent


def consume(stream: StreamHandle, func: Callable[[StreamRecord], object], *, store: object = None,
            client: object = None, **config: object) -> Consumer:
    c = Consumer(stream.name, func, application_name="test", checkpoint_store=store or MemoryCheckpointStore(),  # type: ignore[arg-type]
                 client=client or stream.client, config=cfg(**config))
    c.run(install_signal_handlers=False, stop_after_idle=1.0)
    return c


@pytest.mark.streamkit(shards=3)
def test_every_record_once_in_order_per_key_with_metadata(kinesis_stream: StreamHandle) -> None:
    sent = produce(kinesis_stream, 5000)
    got: dict[str, list[bytes]] = defaultdict(list)
    records: list[StreamRecord] = []

    def handle(r: StreamRecord) -> None:
        got[r.partition_key].append(r.data)
        records.append(r)

    consume(kinesis_stream, handle)
    assert got == sent
    shards = kinesis.shard_map(kinesis_stream.client, kinesis_stream.name)
    assert all(r.shard_id == shards.shard_for_key(r.partition_key).shard_id for r in records)
    assert all(r.sub_sequence_number is not None and r.approximate_arrival_timestamp for r in records)
    assert all(r.event_source_arn and r.event_source_arn.endswith(kinesis_stream.name) for r in records)


@pytest.mark.streamkit(shards=1)
def test_a_restart_resumes_inside_an_aggregate_at_the_next_sub_record(kinesis_stream: StreamHandle,
                                                                      tmp_path: Path) -> None:
    kinesis_stream.client.put_record(StreamName=kinesis_stream.name, PartitionKey="k",
                                     Data=encode([UserRecord(b"%d" % i, "k") for i in range(10)]))
    store = SqliteCheckpointStore(tmp_path / "cp.db")

    class StopAfterFour(RecordProcessor):
        def process_records(self, input: ProcessRecordsInput) -> None:
            input.checkpointer.checkpoint(input.records[3])
            raise KeyboardInterrupt  # "crash" after checkpointing sub-record 3

    with pytest.raises(KeyboardInterrupt):
        Consumer(kinesis_stream.name, StopAfterFour, application_name="test", checkpoint_store=store,
                 client=kinesis_stream.client, config=cfg()).run(install_signal_handlers=False)
    got: list[tuple[bytes, int | None]] = []
    consume(kinesis_stream, lambda r: got.append((r.data, r.sub_sequence_number)), store=SqliteCheckpointStore(
        tmp_path / "cp.db"), lease_duration=0.5)
    assert got == [(b"%d" % i, i) for i in range(4, 10)]


@pytest.mark.streamkit(shards=1)
def test_a_poison_record_goes_to_the_destination_with_its_payload_and_the_shard_moves_on(
        kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    produce(kinesis_stream, 20, keys=1)
    attempts: dict[bytes, int] = defaultdict(int)
    ok: list[bytes] = []

    def handle(r: StreamRecord) -> None:
        attempts[r.data] += 1
        if r.data == b"7":
            raise ValueError("bad reading")
        ok.append(r.data)

    dead = tmp_path / "dead.jsonl"
    consume(kinesis_stream, handle, max_attempts=3, on_failure=JsonLinesDestination(dead))
    assert ok == [b"%d" % i for i in range(20) if i != 7]
    assert attempts[b"7"] == 3 and attempts[b"6"] == 1  # only the failing record is retried
    (letter,) = list(read_dead_letters(dead))
    assert letter["partition_key"] == "key-0" and letter["attempts"] == 3 and "bad reading" in letter["error"]
    assert letter["data"] == "Nw==" and letter["sub_sequence_number"] == 7  # base64 of b"7"


@pytest.mark.streamkit(shards=1)
def test_on_failure_stop_ends_the_run_with_a_clear_error(kinesis_stream: StreamHandle) -> None:
    produce(kinesis_stream, 5, keys=1)

    def handle(r: StreamRecord) -> None:
        raise RuntimeError("always")

    with pytest.raises(ShardFailedError, match=r"failed 2 times.*on_failure='stop'"):
        consume(kinesis_stream, handle, max_attempts=2)


@pytest.mark.streamkit(shards=1)
def test_a_checkpoint_from_a_deleted_stream_of_the_same_name_is_a_clear_error(kinesis_stream: StreamHandle,
                                                                             tmp_path: Path) -> None:
    store = SqliteCheckpointStore(tmp_path / "cp.db")
    produce(kinesis_stream, 5, keys=1)
    consume(kinesis_stream, lambda r: None, store=store)
    kinesis.delete_stream(kinesis_stream.client, kinesis_stream.name)
    kinesis.create_stream(kinesis_stream.client, kinesis_stream.name, 1)
    produce(kinesis_stream, 5, keys=1)
    with pytest.raises(ShardFailedError, match=r"deleted and created again.*application_name"):
        consume(kinesis_stream, lambda r: None, store=store)


@pytest.mark.streamkit(shards=1)
def test_a_corrupt_aggregate_is_reported_and_delivered_not_dropped(kinesis_stream: StreamHandle,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    import hashlib

    from streamkit.aggregation import MAGIC

    body = b"\x1a\x05\x08\x00\x1a\x09x"
    blob = MAGIC + body + hashlib.md5(body).digest()
    kinesis_stream.client.put_record(StreamName=kinesis_stream.name, PartitionKey="k", Data=blob)
    kinesis_stream.client.put_record(StreamName=kinesis_stream.name, PartitionKey="k", Data=b"fine")
    got: list[bytes] = []
    consume(kinesis_stream, lambda r: got.append(r.data))
    assert got == [blob, b"fine"]
    assert any("malformed body" in m for m in caplog.messages)


@pytest.mark.streamkit(shards=2)
def test_every_record_is_processed_through_throttling_failures_resets_and_expired_iterators(
        kinesis_stream: StreamHandle, kinesis_proxy: Callable[..., ProxyHandle]) -> None:
    sent = produce(kinesis_stream, 20_000, aggregation_max_size=8 * 1024)
    proxy = kinesis_proxy(limit_scale=1.0,
                          faults="throttle=0.2,internal=0.05,reset=0.05,expired=0.05,seed=3")
    got: dict[str, list[bytes]] = defaultdict(list)
    # Few Kinesis records per call, so there are hundreds of calls for the faults to hit.
    consume(kinesis_stream, lambda r: got[r.partition_key].append(r.data), client=proxy.client(), max_records=5)
    assert got == sent
    stats = proxy.stats()
    assert stats.get("fault.expired", 0) > 0 and stats.get("fault.throttle_call", 0) > 0
    assert stats.get("fault.reset", 0) > 0 and stats.get("fault.internal", 0) > 0


@pytest.mark.streamkit(shards=1)
def test_polling_respects_five_calls_per_second_per_shard(kinesis_stream: StreamHandle,
                                                          kinesis_proxy: Callable[..., ProxyHandle]) -> None:
    produce(kinesis_stream, 1200, aggregation=False)
    proxy = kinesis_proxy()
    got = []
    # 15 full calls and the empty ones after: three seconds of reading at the five-a-second limit.
    consume(kinesis_stream, got.append, client=proxy.client(), max_records=80, min_poll_interval=0.2)
    assert len(got) == 1200
    assert proxy.stats().get("limit.read_throttled", 0) == 0


@pytest.mark.streamkit(backend="kinesis-mock", shards=2)
def test_split_and_merge_mid_stream_lose_nothing_and_parents_come_before_children(kinesis_stream: StreamHandle) -> None:
    client, name = kinesis_stream.client, kinesis_stream.name
    sent: dict[str, list[bytes]] = defaultdict(list)
    got: dict[str, list[tuple[bytes, str]]] = defaultdict(list)
    lock = threading.Lock()

    def handle(r: StreamRecord) -> None:
        with lock:
            got[r.partition_key].append((r.data, r.shard_id))

    consumer = Consumer(name, handle, application_name="test", checkpoint_store=MemoryCheckpointStore(),
                        client=client, config=cfg(shard_sync_interval=1.0))
    runner = threading.Thread(target=consumer.run, kwargs={"install_signal_handlers": False})
    runner.start()
    try:
        with Producer(name, client=client, config=ProducerConfig(record_max_buffered_time=0.01)) as p:
            i = 0

            def put_some(count: int) -> None:
                nonlocal i
                for _ in range(count):
                    key = f"k{i % 13}"
                    sent[key].append(b"%d" % i)
                    p.put(b"%d" % i, key)
                    i += 1
                p.flush()

            put_some(300)
            split_first_shard(client, name)
            put_some(300)
            merge_first_two_open_shards(client, name)
            put_some(300)
        deadline = time.monotonic() + 240  # a hang guard only (kinesis-local is slow on a loaded machine)
        while time.monotonic() < deadline and sum(map(len, got.values())) < 900:
            time.sleep(0.2)
    finally:
        consumer.stop()
        runner.join(30)
    received = {k: [d for d, _s in v] for k, v in got.items()}
    # Said apart, so that a failure names itself: lost or doubled records, or the same records out of order.
    assert {k: sorted(v) for k, v in received.items()} == {k: sorted(v) for k, v in sent.items()}
    assert received == sent, {k: [(d, sid) for d, sid in got[k]] for k in sent if received.get(k) != sent[k]}
    parents = {s.shard_id: list(s.parents) for s in kinesis.list_shards(client, name)}
    for key, recs in got.items():
        order = [sid for _d, sid in recs]
        for i, sid in enumerate(order):
            for p in parents.get(sid, []):
                assert p not in order[i + 1:], f"{key}: parent {p} read after child {sid}"
    assert len({sid for recs in got.values() for _d, sid in recs}) >= 4  # parents, children and the merged shard


@pytest.mark.streamkit(shards=1)
def test_the_reported_stop_during_retry_delivers_every_record_on_the_restart(kinesis_stream: StreamHandle,
                                                                            tmp_path: Path) -> None:
    """Issue 13's reproduction, as reported, against kinesalite: it used to deliver 0 of 1,000."""
    produce(kinesis_stream, 1000, aggregation=False)
    db = tmp_path / "c.db"
    config = ConsumerConfig(initial_position="TRIM_HORIZON", max_attempts=10, backoff_base=1.0, lease_duration=2)

    def failing(r: StreamRecord) -> None:
        raise ConnectionError("downstream down")

    first = Consumer(kinesis_stream.name, failing, application_name="app", checkpoint_store=SqliteCheckpointStore(db),
                     client=kinesis_stream.client, config=config)
    runner = threading.Thread(target=lambda: first.run(install_signal_handlers=False))
    runner.start()
    time.sleep(2.5)
    first.stop()
    runner.join(30)
    time.sleep(2.5)  # the lease expires
    got: list[bytes] = []
    Consumer(kinesis_stream.name, lambda r: got.append(r.data), application_name="app",
             checkpoint_store=SqliteCheckpointStore(db), client=kinesis_stream.client,
             config=config).run(install_signal_handlers=False, stop_after_idle=2)
    assert len(got) == 1000 and len(set(got)) == 1000
