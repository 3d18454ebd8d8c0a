"""The Consumer on FakeKinesis with a FakeClock: no server, no sleeps. One behaviour per test."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from streamkit.aggregation import UserRecord, encode
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.checkpoints.model import Lease
from streamkit.consumer import Consumer, ConsumerConfig, ProcessRecordsInput, RecordProcessor
from streamkit.destinations import DeadLetter
from streamkit.records import StreamRecord
from streamkit.testing import FakeClock, FakeKinesis


def run(kinesis: FakeKinesis, clock: FakeClock, handler: Any, store: MemoryCheckpointStore | None = None,
        **config: Any) -> Consumer:
    c = Consumer("s", handler, application_name="app", checkpoint_store=store or MemoryCheckpointStore(),
                 client=kinesis, clock=clock, config=ConsumerConfig(**config))
    c.run(install_signal_handlers=False, stop_after_idle=3)
    return c


def test_a_restart_resumes_inside_an_aggregate_after_the_last_checkpointed_sub_record() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    kinesis.put("s", encode([UserRecord(f"u{i}".encode(), "k") for i in range(10)]), "k")
    store = MemoryCheckpointStore()

    class FirstFour(RecordProcessor):
        def process_records(self, input: ProcessRecordsInput) -> None:
            input.checkpointer.checkpoint(input.records[3])  # then the worker dies before more

    run(kinesis, clock, FirstFour, store)
    got: list[bytes] = []
    clock.advance(60)
    run(kinesis, clock, lambda r: got.append(r.data), store)
    assert got == [f"u{i}".encode() for i in range(4, 10)]


def test_parents_are_read_to_their_end_before_their_children() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    parent = kinesis.list_shards("s")[0].shard_id
    for i in range(30):
        kinesis.put("s", f"before-{i}".encode(), f"k{i % 5}")
    children = kinesis.split_shard("s", parent)
    for i in range(30):
        kinesis.put("s", f"after-{i}".encode(), f"k{i % 5}")
    order: dict[str, list[str]] = defaultdict(list)
    run(kinesis, clock, lambda r: order[str(r.partition_key)].append(r.shard_id))
    for key, shards in order.items():
        assert shards.index(parent) == 0 and shards.count(parent) == 6, key
        assert all(s in {c.shard_id for c in children} for s in shards[6:]), key


def test_a_poison_record_goes_to_the_destination_with_its_payload_and_the_shard_moves_on() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    for i in range(10):
        kinesis.put("s", f"r{i}".encode(), "k")
    letters: list[DeadLetter] = []
    got: list[bytes] = []

    def handler(r: StreamRecord) -> None:
        if r.data == b"r4":
            raise ValueError("poison")
        got.append(r.data)

    c = run(kinesis, clock, handler, max_attempts=3, on_failure=letters.extend)
    assert [letter.record.data for letter in letters] == [b"r4"] and letters[0].attempts == 3
    assert got == [f"r{i}".encode() for i in range(10) if i != 4]
    assert sum(s.dead_lettered for s in c.final_stats) == 1


def test_an_expired_iterator_resumes_after_the_last_record_read() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    for i in range(20):
        kinesis.put("s", f"r{i}".encode(), "k")
    got: list[bytes] = []

    def slow(r: StreamRecord) -> None:
        got.append(r.data)
        if r.data == b"r4":
            clock.advance(400)  # the handler took longer than an iterator lives

    run(kinesis, clock, slow, max_records=5)
    assert got == [f"r{i}".encode() for i in range(20)]


def test_a_lease_taken_by_another_worker_stops_the_shard_without_checkpointing() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    for i in range(10):
        kinesis.put("s", f"r{i}".encode(), "k")
    store = MemoryCheckpointStore()
    lost: list[str] = []

    class Thief(RecordProcessor):
        def process_records(self, input: ProcessRecordsInput) -> None:
            stolen = None
            while stolen is None:  # the owner renews meanwhile: try again on the counter it left
                lease = store.get_lease("app/s", input.shard_id)
                assert lease is not None
                stolen = store.update_lease("app/s", input.shard_id, expected_counter=lease.counter,
                                            expected_owner=lease.owner, owner="another-worker")
            input.checkpointer.checkpoint()  # fenced: raises LeaseLostError

        def lease_lost(self, input: Any) -> None:
            lost.append(input.shard_id)

    c = Consumer("s", Thief, application_name="app", checkpoint_store=store, client=kinesis, clock=clock)
    clock.on_wait = lambda seconds: c.stop() if lost else None
    c.run(install_signal_handlers=False)
    lease = store.get_lease("app/s", kinesis.list_shards("s")[0].shard_id)
    assert lost and lease is not None and lease.owner == "another-worker" and lease.checkpoint.is_sentinel


def test_a_dead_workers_lease_is_taken_once_it_has_expired_not_before_and_a_live_ones_never() -> None:
    """Fail-over timing in fake seconds (the e2e lease test checks the same on real servers by order only):
    the dead worker's lease is taken no sooner than lease_duration after its counter was first seen still,
    and within one renewal interval after that; the lease whose owner keeps renewing stays its owner's."""
    clock = FakeClock()
    kinesis = FakeKinesis(2, clock=clock)
    dead_shard, live_shard = (s.shard_id for s in kinesis.list_shards("s"))
    store = MemoryCheckpointStore()
    store.create_lease("app/s", Lease(shard_id=dead_shard, owner="dead", counter=3))
    store.create_lease("app/s", Lease(shard_id=live_shard, owner="alive", counter=5))
    config = ConsumerConfig(lease_duration=9.0, renew_interval=3.0)
    c = Consumer("s", lambda r: None, application_name="app", checkpoint_store=store, client=kinesis, clock=clock,
                 config=config)
    first_wait: list[float] = []
    taken_at: list[float] = []

    def meanwhile(_seconds: float) -> None:
        # Called before every pause advances the clock, so the first call after the take sees the take's time.
        first_wait[:] = first_wait or [clock.monotonic()]
        live = store.get_lease("app/s", live_shard)
        assert live is not None
        store.update_lease("app/s", live_shard, expected_counter=live.counter, expected_owner="alive")  # renewing
        dead = store.get_lease("app/s", dead_shard)
        if not taken_at and dead is not None and dead.owner == c.worker_id:
            taken_at.append(clock.monotonic())
            c.stop()

    clock.on_wait = meanwhile
    started = clock.monotonic()
    c.run(install_signal_handlers=False)
    assert taken_at, "the dead worker's lease was never taken"
    assert first_wait[0] == started  # the first look at the table is before any pause
    assert config.lease_duration <= taken_at[0] - started <= config.lease_duration + config.renew_interval
    live = store.get_lease("app/s", live_shard)
    assert live is not None and live.owner == "alive"


def test_with_no_store_the_default_is_a_named_sqlite_file_here_and_it_is_said(
        tmp_path: Any, monkeypatch: Any, caplog: Any) -> None:
    monkeypatch.chdir(tmp_path)
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    kinesis.put("s", b"x", "k")
    got: list[bytes] = []
    with caplog.at_level("WARNING", logger="streamkit.consumer"):
        Consumer("s", lambda r: got.append(r.data), application_name="app", client=kinesis,
                 clock=clock).run(install_signal_handlers=False, stop_after_idle=1)
    assert got == [b"x"] and (tmp_path / "streamkit-checkpoints.db").exists()
    assert any("no checkpoint_store given" in r.getMessage() for r in caplog.records)
