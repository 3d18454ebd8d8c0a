"""Producer behaviour against an in-memory Kinesis (FakeKinesis): validation, retries, TTL, order."""

from __future__ import annotations

import base64
import random
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from producer import FailedRecord, Producer, ProducerConfig
from streamkit.aggregation import decode
from streamkit.destinations import read_dead_letters
from streamkit.errors import (
    BufferFullError,
    ConfigurationError,
    KinesisError,
    RecordExpiredError,
    ServerUnreachableError,
    StreamkitError,
    ValidationError,
)
from streamkit.hashing import hash_key
from streamkit.testing import FakeKinesis
from tests.unit.producer_kinds import KINDS


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """The threaded `Producer` or the `AsyncProducer` (driven from this thread): the same test for both."""
    return KINDS[request.param]


FAST = dict(rate_limit=0, record_max_buffered_time=0.005, backoff_base=0.001, backoff_max=0.01)


def cfg(**kw: object) -> ProducerConfig:
    return ProducerConfig(**{**FAST, **kw})  # type: ignore[arg-type]


def user_records(client: FakeKinesis) -> dict[str, list[tuple[str, bytes]]]:
    """Per shard, the user records written, in order: (partition key, data)."""
    out: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    for shard, entries in client.written.items():
        for _seq, e in entries:
            for r in decode(e["Data"], e["PartitionKey"]):
                out[shard].append((r.partition_key, r.data))
    return out


@pytest.mark.parametrize(("args", "message"), [
    ((b"x", ""), "1 to 256 characters"),
    ((b"x", "k" * 257), "got 257"),
    ((b"x", 7), "must be a str"),
    ((b"x" * (1024 * 1024), "k"), "over the 1048576-byte record limit"),
    ((12, "k"), "data must be bytes or str"),
    ((b"x", "k", "-1"), "explicit hash key"),
])
@pytest.mark.parametrize("method", ["put", "send"])
def test_bad_input_is_rejected_before_anything_is_buffered(args: tuple[object, ...], message: str, method: str,
                                                            make: Callable[..., Any]) -> None:
    client = FakeKinesis()
    with make("s", client=client, config=cfg()) as p:
        with pytest.raises(ValidationError, match=message):
            getattr(p, method)(*args)
        assert p.metrics()["buffered_records"] == 0
    assert client.calls == 0


def test_sent_and_put_records_share_aggregates_and_keep_their_order(make: Callable[..., Any]) -> None:
    client = FakeKinesis(shards=1)
    with make("s", client=client, config=cfg(record_max_buffered_time=5.0)) as p:  # one aggregate: flush() seals
        futs = {}
        for i in range(10):
            if i % 3:
                p.send(b"s%d" % i, "k")
            else:
                futs[i] = p.put(b"p%d" % i, "k")
        p.send("text", "k")
        p.send_json({"n": 1}, "k")
        p.flush()
        m = p.metrics()
    assert [d for _k, d in user_records(client)["shardId-000000000000"]] == \
        [b"s%d" % i if i % 3 else b"p%d" % i for i in range(10)] + [b"text", b'{"n":1}']
    assert {i: f.result().sub_sequence_number for i, f in futs.items()} == {0: 0, 3: 3, 6: 6, 9: 9}
    assert m["user_records_put"] == m["user_records_written"] == 12 and m["kinesis_records_written"] == 1


def test_a_sent_record_that_fails_goes_to_on_failure_with_its_payload(make: Callable[..., Any]) -> None:
    failed: list[FailedRecord] = []
    client = FakeKinesis(entry_error=lambda c, i, e: "ValidationException")
    with make("s", client=client, config=cfg(on_failure=failed.append)) as p:
        p.send(b"payload", "k", 42)
        p.flush()
        assert p.metrics()["user_records_failed"] == 1
    assert [(f.data, f.partition_key, f.explicit_hash_key, f.error_code, f.attempts) for f in failed] == \
        [(b"payload", "k", "42", "ValidationException", 1)]


def test_failed_records_go_to_a_file_destination_one_batch_per_kinesis_record(tmp_path: Path, make: Callable[..., Any]) -> None:
    dead = tmp_path / "dead.jsonl"
    client = FakeKinesis(entry_error=lambda c, i, e: "ValidationException")
    with make("s", client=client, config=cfg(on_failure=f"file:{dead}")) as p:
        p.send(b"\x00binary", "k1")
        fut = p.put(b"text", "k1")
        p.flush()
    assert fut.exception() is not None
    docs = list(read_dead_letters(dead))
    assert [(base64.b64decode(d["data"]), d["partition_key"], d["error_code"], d["attempts"]) for d in docs] == \
        [(b"\x00binary", "k1", "ValidationException", 1), (b"text", "k1", "ValidationException", 1)]


@pytest.mark.parametrize(("value", "message"), [("nope:x", "use file:PATH or sqs:QUEUE_URL"), (5, "on_failure must be")])
def test_a_bad_on_failure_is_rejected_at_construction(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ProducerConfig(on_failure=value)  # type: ignore[arg-type]


def test_a_sent_record_that_fails_with_no_on_failure_is_logged(caplog: pytest.LogCaptureFixture,
                                                               make: Callable[..., Any]) -> None:
    client = FakeKinesis(entry_error=lambda c, i, e: "ValidationException")
    with make("s", client=client, config=cfg()) as p:
        p.send(b"payload", "k")
        p.flush()
    assert "1 record(s) sent without a future failed for good" in caplog.text


def test_close_timeout_fails_what_is_left_to_futures_and_on_failure(make: Callable[..., Any]) -> None:
    failed: list[FailedRecord] = []
    client = FakeKinesis(entry_error=lambda c, i, e: "ProvisionedThroughputExceededException")
    p = make("s", client=client, config=cfg(record_ttl=30, backoff_base=0.05, backoff_max=0.05,
                                                on_failure=failed.append))
    fut = p.put(b"tracked", "k1")
    p.send(b"untracked", "k2")
    p.close(timeout=0.3)
    with pytest.raises(RecordExpiredError, match="closed before this record was written"):
        fut.result(timeout=1)
    assert sorted(f.data for f in failed) == [b"tracked", b"untracked"]
    assert all(f.attempts >= 1 and f.error_code == "Expired" for f in failed)
    assert p.metrics()["user_records_failed"] == 2


def _exits(block: Callable[[], None], within: float = 30.0) -> BaseException | None:
    """Run `block` in a thread; fail the test (instead of hanging it) if it does not end."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            block()
        except BaseException as exc:  # the test looks at what escaped
            raised.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(within)
    assert not t.is_alive(), "the producer did not let go of the with block"
    return raised[0] if raised else None


def test_ctrl_c_inside_put_leaves_no_flush_waiting_for_a_half_added_record(monkeypatch: pytest.MonkeyPatch) -> None:
    # A KeyboardInterrupt can land anywhere in the caller's thread, here in the middle of adding a
    # record to its aggregate (counted, not yet queued). Leaving the with block then used to wait
    # forever for that record (seen as `streamkit demo` not stopping on Ctrl-C).
    from streamkit import aggregation

    client = FakeKinesis(2)
    real = aggregation.AggregateBuilder.try_add
    calls = {"n": 0}

    def interrupted(self: aggregation.AggregateBuilder, *a: object) -> bool:
        calls["n"] += 1
        if calls["n"] == 500:
            raise KeyboardInterrupt
        return real(self, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(aggregation.AggregateBuilder, "try_add", interrupted)
    futures = []

    def block() -> None:
        with Producer("s", client=client, config=cfg()) as p:
            for i in range(1_000):
                futures.append(p.put(b"r%d" % i, f"k{i % 7}"))

    assert isinstance(_exits(block), KeyboardInterrupt)
    assert len(futures) == 499
    assert all(f.result(timeout=5) for f in futures)  # every put that returned was written
    written = {d for recs in user_records(client).values() for _k, d in recs}
    assert {b"r%d" % i for i in range(499)} <= written


def test_ctrl_c_with_kinesis_unreachable_fails_what_is_buffered_instead_of_hanging() -> None:
    failed: list[FailedRecord] = []
    client = FakeKinesis(entry_error=lambda c, i, e: "ProvisionedThroughputExceededException")
    futures = []

    def block() -> None:
        with Producer("s", client=client, config=cfg(record_ttl=600, on_failure=failed.append)) as p:
            futures.extend(p.put(b"r%d" % i, "k") for i in range(10))
            raise KeyboardInterrupt

    assert isinstance(_exits(block), KeyboardInterrupt)
    for f in futures:
        with pytest.raises(RecordExpiredError):
            f.result(timeout=1)
    assert len(failed) == 10  # reported, not dropped


def test_results_report_shard_sequence_and_sub_sequence(make: Callable[..., Any]) -> None:
    client = FakeKinesis(shards=2)
    with make("s", client=client, config=cfg(record_max_buffered_time=5.0)) as p:  # one aggregate: flush() seals
        futs = [p.put(b"v%d" % i, "same-key") for i in range(3)]
        p.flush()
    results = [f.result() for f in futs]
    assert len({r.sequence_number for r in results}) == 1
    assert [r.sub_sequence_number for r in results] == [0, 1, 2]
    assert all(r.attempts == 1 and r.shard_id == results[0].shard_id for r in results)


def test_str_data_and_put_json(make: Callable[..., Any]) -> None:
    client = FakeKinesis()
    with make("s", client=client, config=cfg(aggregation=False)) as p:
        p.put("héllo", "k")
        p.put_json({"a": 1}, "k")
    assert [d for _k, d in user_records(client)["shardId-000000000000"]] == ["héllo".encode(), b'{"a":1}']


def test_only_failed_entries_are_retried_and_attempts_are_counted(make: Callable[..., Any]) -> None:
    def throttle_first_attempt_of_odd_keys(call: int, i: int, entry: dict[str, object]) -> str | None:
        return "ProvisionedThroughputExceededException" if call == 1 and str(entry["PartitionKey"])[-1] in "13579" else None

    client = FakeKinesis(entry_error=throttle_first_attempt_of_odd_keys)
    # All ten in the first call, whatever the time between puts (flush() sends them).
    with make("s", client=client, config=cfg(aggregation=False, ordered=False, record_max_buffered_time=5.0)) as p:
        futs = {k: p.put(b"x", k) for k in (f"k{i}" for i in range(10))}
        p.flush()
        metrics = p.metrics()
    assert {k: f.result().attempts for k, f in futs.items()} == {f"k{i}": 1 + i % 2 for i in range(10)}
    assert sum(len(v) for v in client.written.values()) == 10
    assert metrics["retries"] == 5 and metrics["throttles"] == 5


def test_transport_errors_retry_the_whole_call(make: Callable[..., Any]) -> None:
    def reset_twice(call: int) -> BaseException | None:
        return ServerUnreachableError("connection reset", code="ConnectionClosedError") if call <= 2 else None

    client = FakeKinesis(call_error=reset_twice)
    with make("s", client=client, config=cfg()) as p:
        fut = p.put(b"x", "k")
        assert fut.result(timeout=5).attempts == 3
        assert p.metrics()["put_call_errors"] == 2


def test_a_non_retryable_error_fails_the_record_at_once_with_its_payload_to_on_failure(make: Callable[..., Any]) -> None:
    failed: list[FailedRecord] = []
    client = FakeKinesis(entry_error=lambda c, i, e: "ValidationException")
    with make("s", client=client, config=cfg(on_failure=failed.append)) as p:
        fut = p.put(b"payload", "k", "42")
        with pytest.raises(KinesisError, match="ValidationException"):
            fut.result(timeout=5)
    assert len(failed) == 1
    assert (failed[0].data, failed[0].partition_key, failed[0].explicit_hash_key) == (b"payload", "k", "42")
    assert failed[0].error_code == "ValidationException" and failed[0].attempts == 1


def test_a_record_always_throttled_fails_at_its_ttl_and_is_handed_to_on_failure(make: Callable[..., Any]) -> None:
    failed: list[FailedRecord] = []
    client = FakeKinesis(entry_error=lambda c, i, e: "ProvisionedThroughputExceededException")
    with make("s", client=client, config=cfg(record_ttl=0.2, on_failure=failed.append)) as p:
        fut = p.put(b"x", "k")
        with pytest.raises(RecordExpiredError, match=r"record_ttl=0\.2"):
            fut.result(timeout=5)
        assert p.metrics()["user_records_failed"] == 1
    assert client.calls > 1 and len(failed) == 1 and failed[0].attempts == client.calls


def test_whole_call_client_errors_that_are_not_retryable_fail_every_record(make: Callable[..., Any]) -> None:
    err = KinesisError("AccessDeniedException: no", code="AccessDeniedException", retryable=False)
    client = FakeKinesis(call_error=lambda call: err)
    with make("s", client=client, config=cfg()) as p:
        futs = [p.put(b"x", f"k{i}") for i in range(3)]
        for f in futs:
            with pytest.raises(KinesisError, match="AccessDenied"):
                f.result(timeout=5)
    assert client.calls == 1


def test_per_key_order_survives_random_throttling(make: Callable[..., Any]) -> None:
    rng = random.Random(7)
    lock = threading.Lock()

    def flaky(call: int, i: int, entry: dict[str, object]) -> str | None:
        with lock:
            return "ProvisionedThroughputExceededException" if rng.random() < 0.3 else None

    for aggregation in (True, False):
        client = FakeKinesis(shards=3, entry_error=flaky)
        with make("s", client=client, config=cfg(aggregation=aggregation, aggregation_max_size=2000,
                                                     max_connections=4)) as p:
            for i in range(600):
                p.put(b"%d" % i, f"key-{i % 17}")
        per_key: dict[str, list[int]] = defaultdict(list)
        for recs in user_records(client).values():
            for k, d in recs:
                per_key[k].append(int(d))
        assert sum(map(len, per_key.values())) == 600
        assert all(v == sorted(v) for v in per_key.values())


def test_puts_from_many_threads_all_arrive(make: Callable[..., Any]) -> None:
    client = FakeKinesis(shards=4)
    with make("s", client=client, config=cfg()) as p:
        def work(t: int) -> None:
            for i in range(500):
                p.put(b"%d-%d" % (t, i), f"t{t}-k{i % 10}")
        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    got = [d for recs in user_records(client).values() for _k, d in recs]
    assert len(got) == len(set(got)) == 4000


def test_buffer_full_raises_when_configured_to(make: Callable[..., Any]) -> None:
    gate = threading.Event()
    client = FakeKinesis(call_error=lambda call: gate.wait(5) and None)
    p = make("s", client=client, config=cfg(max_buffered_bytes=2 * 1024 * 1024, buffer_full="raise",
                                                max_record_size=1024 * 1024))
    try:
        p.put(b"x" * 1_000_000, "a")
        p.put(b"x" * 1_000_000, "b")
        with pytest.raises(BufferFullError, match="buffer full"):
            p.put(b"x" * 1_000_000, "c")
    finally:
        gate.set()
        p.close()


def test_buffer_full_blocks_until_room_or_timeout(make: Callable[..., Any]) -> None:
    gate = threading.Event()
    client = FakeKinesis(call_error=lambda call: gate.wait(5) and None)
    p = make("s", client=client, config=cfg(max_buffered_bytes=2 * 1024 * 1024, put_timeout=0.2))
    try:
        p.put(b"x" * 1_000_000, "a")
        p.put(b"x" * 1_000_000, "b")
        with pytest.raises(BufferFullError, match="stayed full"):
            p.put(b"x" * 1_000_000, "c")
        # Once the calls complete the buffer drains, and a put that blocked goes through.
        threading.Timer(0.1, gate.set).start()
        assert p.put(b"x" * 10, "d").result(timeout=5).attempts == 1
    finally:
        gate.set()
        p.close()


def test_put_after_close_raises_and_close_is_idempotent(make: Callable[..., Any]) -> None:
    p = make("s", client=FakeKinesis(), config=cfg())
    p.close()
    p.close()
    with pytest.raises(StreamkitError, match="closed"):
        p.put(b"x", "k")


def test_metrics_snapshot_counts_everything(make: Callable[..., Any]) -> None:
    client = FakeKinesis(shards=2)
    with make("s", client=client, config=cfg(record_max_buffered_time=5.0)) as p:  # flush() seals
        for i in range(100):
            p.put(b"m", f"k{i}")
        p.flush()
        m = p.metrics()
    assert m["user_records_put"] == m["user_records_written"] == 100
    assert m["kinesis_records_written"] == m["aggregates_written"] == 2
    assert m["put_calls"] >= 1 and m["buffered_bytes"] == 0
    assert m["put_latency_ms"]["p50"] is not None


@pytest.mark.parametrize(("kw", "message"), [({"collection_max_count": 501}, "1..500"),
                                              ({"aggregation_max_size": 11 * 1024 * 1024}, "aggregation_max_size"),
                                              ({"record_ttl": 0}, "record_ttl"),
                                              ({"rate_limit": -1}, "rate_limit"),
                                              ({"buffer_full": "drop"}, "buffer_full")])
def test_bad_configuration_is_rejected_at_construction(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ProducerConfig(**kw)  # type: ignore[arg-type]


def test_a_split_under_a_running_producer_reroutes_and_loses_nothing_in_order_per_key(make: Callable[..., Any]) -> None:
    client = FakeKinesis(shards=1)
    parent = client.list_shards("s")[0].shard_id
    with make("s", client=client, config=cfg()) as p:
        first = [p.put(b"a%d" % i, f"k{i % 8}") for i in range(200)]
        p.flush()
        client.split_shard("s", parent)  # the producer's shard map is now stale
        second = [p.put(b"b%d" % i, f"k{i % 8}") for i in range(200)]
    results = [f.result(timeout=5) for f in first + second]
    children = {s.shard_id for s in client.list_shards("s")} - {parent}
    assert all(r.shard_id == parent for r in results[:200])
    assert {r.shard_id for r in results[200:]} <= children and p.metrics()["reshards_detected"] >= 1
    written = user_records(client)
    ranges = {s.shard_id: s for s in client.list_shards("s")}
    for key in {f"k{i % 8}" for i in range(8)}:
        # What a reader delivers: the records in the shard that holds their key. The producer's first aggregates
        # after the split landed by their first record's hash in one child, carrying the other's keys too; those
        # are put again where their key belongs (and readers skip the misplaced copies, as the KCL does), so
        # each key's records are in one shard after the parent, in order, with the children read in parallel.
        holder = [sid for sid in [parent, *sorted(children)] if ranges[sid].contains(hash_key(key))]
        in_order = [d for shard in holder for k, d in written.get(shard, []) if k == key]
        assert in_order == [b"a%d" % i for i in range(200) if f"k{i % 8}" == key] + \
            [b"b%d" % i for i in range(200) if f"k{i % 8}" == key]
