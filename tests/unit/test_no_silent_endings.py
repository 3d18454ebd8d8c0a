"""No silent endings: an unreachable server is said, and with stop_after_idle it ends the run with an error.

"Idle" counts only confirmed-empty reads: a consumer or an emulator whose Kinesis stops answering never
reports a drained stream. FakeKinesis(unreachable=True) fails every call as a dead server does.
"""

from __future__ import annotations

import logging

import pytest

from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.checkpoints.model import Lease
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.errors import NoProgressError, ThrottledError
from streamkit.shard_reader import IdleConfirmation, ReaderBase
from streamkit.testing import FakeClock, FakeKinesis


def consumer(kinesis: FakeKinesis, clock: FakeClock, store: MemoryCheckpointStore | None = None,
             **config: object) -> Consumer:
    return Consumer("s", lambda r: None, application_name="app", checkpoint_store=store or MemoryCheckpointStore(),
                    client=kinesis, clock=clock, config=ConsumerConfig(**config))  # type: ignore[arg-type]


def test_a_consumer_whose_server_dies_ends_with_no_progress_not_a_drained_summary(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    kinesis.put("s", b"x", "k")
    c = consumer(kinesis, clock)
    clock.on_wait = lambda s: setattr(kinesis, "unreachable", True) if kinesis.op_counts.get("GetRecords", 0) >= 2 else None
    with caplog.at_level(logging.WARNING), pytest.raises(NoProgressError, match="no answer from Kinesis"):
        c.run(install_signal_handlers=False, stop_after_idle=5)
    assert any("failed" in r.getMessage() and "retrying" in r.getMessage() for r in caplog.records)


def test_a_consumer_that_cannot_start_retries_then_gives_up_after_stop_after_idle() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    kinesis.unreachable = True
    started = clock.monotonic()
    with pytest.raises(NoProgressError, match="no answer from the servers for 5 s"):
        consumer(kinesis, clock).run(install_signal_handlers=False, stop_after_idle=5)
    assert 5 <= clock.monotonic() - started < 15
    assert kinesis.op_counts["DescribeStreamSummary"] > 1  # it retried


def test_throttling_is_an_answer_not_a_dead_server() -> None:
    clock = FakeClock()
    throttled = {"n": 0}

    def fault(op: str, detail: object) -> BaseException | None:
        if op == "GetRecords" and throttled["n"] < 30:
            throttled["n"] += 1
            return ThrottledError("ProvisionedThroughputExceededException", code="ProvisionedThroughputExceededException")
        return None

    kinesis = FakeKinesis(clock=clock, fault=fault)
    for i in range(20):
        kinesis.put("s", str(i).encode(), "k")
    got: list[bytes] = []
    Consumer("s", lambda r: got.append(r.data), application_name="app", checkpoint_store=MemoryCheckpointStore(),
             client=kinesis, clock=clock).run(install_signal_handlers=False, stop_after_idle=1)
    assert len(got) == 20 and throttled["n"] == 30


def test_a_worker_waiting_for_a_dead_workers_leases_is_not_idle_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    kinesis.put("s", b"x", "k")
    store = MemoryCheckpointStore()
    shard = kinesis.list_shards("s")[0].shard_id
    store.create_lease("app/s", Lease(shard_id=shard, owner="crashed-worker", counter=3))
    got: list[bytes] = []
    c = Consumer("s", lambda r: got.append(r.data), application_name="app", checkpoint_store=store, client=kinesis,
                 clock=clock, config=ConsumerConfig(lease_duration=10))
    with caplog.at_level(logging.WARNING):
        c.run(install_signal_handlers=False, stop_after_idle=2)
    assert got == [b"x"]  # it waited for the lease to expire, took it, and read the record
    assert any("crashed-worker" in r.getMessage() and "expire" in r.getMessage() for r in caplog.records)


def test_an_emulator_whose_handler_always_fails_ends_with_no_progress_and_logs_the_attempts(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    kinesis.put("s", b"x", "k")

    def handler(event: object, context: object) -> object:
        raise RuntimeError("always")

    esm = EventSourceMapping("s", handler, client=kinesis, clock=clock,
                             config=EsmConfig(starting_position="TRIM_HORIZON", retry_delay=0.5))
    with caplog.at_level(logging.WARNING), pytest.raises(NoProgressError, match="handler keeps failing"):
        esm.run(stop_after_idle=5)
    assert any("failed (attempt" in r.getMessage() for r in caplog.records)


def test_an_emulator_whose_server_dies_ends_with_no_progress() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    esm = EventSourceMapping("s", lambda e, c: None, client=kinesis, clock=clock,
                             config=EsmConfig(starting_position="TRIM_HORIZON"))
    clock.on_wait = lambda s: setattr(kinesis, "unreachable", True)
    with pytest.raises(NoProgressError, match="no answer from Kinesis"):
        esm.run(stop_after_idle=5)



class _Reader:
    """What IdleConfirmation reads of a reader."""

    def __init__(self, *, polls: bool = True) -> None:
        self.answers = 1
        self.answers_while_idle = polls


def test_caught_up_is_confirmed_only_once_every_poller_is_answered_again() -> None:
    # The race CI hit: a shard's empty read, then its server died; the engine's loop looked again before the
    # reader's thread made its next call (so no failure was recorded yet) and called the run idle.
    a, b, sub = _Reader(), _Reader(), _Reader(polls=False)
    readers: dict[str, ReaderBase | None] = {"a": a, "b": b, "sub": sub}  # type: ignore[dict-item]
    idle = IdleConfirmation()
    assert not idle.confirmed(readers)  # first seen caught up: noted, not yet idle
    assert not idle.confirmed(readers)  # no reader answered since: a dead server looks exactly like this
    a.answers += 1
    assert not idle.confirmed(readers)  # b still silent
    b.answers += 1
    assert idle.confirmed(readers)  # both answered again; a subscription is not waited for
    idle.reset()
    assert not idle.confirmed(readers)
    c = _Reader()
    readers["b"] = c  # type: ignore[assignment]  # a new reader on a shard starts its count again
    a.answers += 1
    assert not idle.confirmed(readers)
    a.answers += 1
    c.answers += 1
    assert idle.confirmed(readers)
    unstarted = IdleConfirmation()  # a shard whose reader has not started is never confirmed
    assert not unstarted.confirmed({"x": None}) and not unstarted.confirmed({"x": None})
