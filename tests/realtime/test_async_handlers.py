"""`async def` handlers wherever a handler is accepted: consumer, RecordProcessor, Lambda wrapper, dispatcher.

tests/realtime: no servers, but the real clock (handlers await real timers, to show they overlap).

They run on streamkit.aio's one event loop, concurrently across shards and lanes, in order within each.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from dispatcher import Dispatcher, LocalTarget
from streamkit import kinesis_handler
from streamkit.aio import BackgroundLoop, blocking, is_async
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig, ProcessRecordsInput, RecordProcessor, ShutdownRequestedInput
from streamkit.destinations import DeadLetter
from streamkit.records import StreamRecord
from streamkit.testing import FakeClock, FakeKinesis

EVENTS = Path(__file__).resolve().parents[1] / "events"


class InFlight:
    """How many handler calls are awaiting at once (they all run on the one loop: no lock needed)."""

    def __init__(self) -> None:
        self.now = self.most = 0

    async def hold(self, seconds: float) -> None:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.now -= 1


def consume(kinesis: FakeKinesis, clock: FakeClock, handler: Any, **config: Any) -> Consumer:
    c = Consumer("s", handler, application_name="app", checkpoint_store=MemoryCheckpointStore(), client=kinesis,
                 clock=clock, config=ConsumerConfig(**config))
    c.run(install_signal_handlers=False, stop_after_idle=3)
    return c


def test_an_async_function_handler_gets_every_record_in_order_per_shard_and_shards_await_together() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(8, clock=clock)
    for i in range(400):
        kinesis.put("s", f"{i}".encode(), f"k{i % 40}")
    got: dict[str, list[int]] = defaultdict(list)
    flight = InFlight()

    async def handle(r: StreamRecord) -> None:
        await flight.hold(0.005)
        got[str(r.partition_key)].append(int(r.data))

    consume(kinesis, clock, handle)
    assert sum(len(v) for v in got.values()) == 400
    assert all(v == sorted(v) for v in got.values())
    assert flight.most >= 4  # the shards' handlers awaited at the same time, on one loop


def test_an_async_handler_that_fails_is_retried_then_dead_lettered_like_a_plain_one() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    for i in range(6):
        kinesis.put("s", f"r{i}".encode(), "k")
    letters: list[DeadLetter] = []
    calls: list[bytes] = []

    async def handle(r: StreamRecord) -> None:
        calls.append(r.data)
        await asyncio.sleep(0)
        if r.data == b"r2":
            raise ValueError("poison")

    consume(kinesis, clock, handle, max_attempts=3, on_failure=letters.extend)
    assert [letter.record.data for letter in letters] == [b"r2"] and letters[0].attempts == 3
    assert calls == [b"r0", b"r1", b"r2", b"r2", b"r2", b"r3", b"r4", b"r5"]


def test_a_record_processor_with_async_methods() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(2, clock=clock)
    for i in range(50):
        kinesis.put("s", f"r{i}".encode(), f"k{i}")
    seen: list[bytes] = []
    shutdowns: list[str] = []

    class Async(RecordProcessor):
        async def process_records(self, input: ProcessRecordsInput) -> None:
            for r in input.records:
                await asyncio.sleep(0)
                seen.append(r.data)
            input.checkpointer.checkpoint()

        async def shutdown_requested(self, input: ShutdownRequestedInput) -> None:
            shutdowns.append(input.shard_id)
            input.checkpointer.checkpoint()

    c = consume(kinesis, clock, Async)
    assert sorted(seen) == sorted(f"r{i}".encode() for i in range(50))
    assert sorted(shutdowns) == sorted(s.shard_id for s in kinesis.list_shards("s"))
    assert all(s.records > 0 for s in c.final_stats)


def test_kinesis_handler_on_an_async_def_stays_a_plain_lambda_handler_on_one_loop_across_invocations() -> None:
    loops: set[int] = set()
    calls: list[str] = []

    @kinesis_handler(body="json", max_attempts=2, backoff_base=0.001)
    async def handler(record: StreamRecord) -> None:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        calls.append(record.body["sensor_id"])
        if record.body["sensor_id"] == "s-1":
            raise RuntimeError("downstream down")

    assert not is_async(handler)  # Lambda's runtime calls it as a plain function
    ev = json.loads((EVENTS / "kinesis_plain.json").read_text())
    first = handler(ev, None)
    second = handler(ev, None)
    assert first == second == {"batchItemFailures": [{"itemIdentifier": ev["Records"][1]["kinesis"]["sequenceNumber"]}]}
    assert calls == ["s-0", "s-1", "s-1"] * 2
    assert len(loops) == 1  # a session opened on the first invocation still works on the next


def test_the_dispatcher_with_an_async_worker_keeps_key_order_and_bounds_concurrency() -> None:
    flight = InFlight()
    log: dict[str, list[int]] = defaultdict(list)
    rng = random.Random(3)
    pauses = [rng.uniform(0, 0.003) for _ in range(300)]

    async def work(r: StreamRecord) -> None:
        await flight.hold(pauses[int(r.data)])  # uneven, so lanes finish in varied orders
        log[str(r.partition_key)].append(int(r.data))

    records = [StreamRecord(b"%d" % i, f"k{i % 30}", str(1000 + i), None, "shardId-000000000000")
               for i in range(300)]
    d = Dispatcher(LocalTarget(work, workers=6), mode="per-key")
    result = d.dispatch(records)
    d.close()
    assert result.delivered == 300 and not result.failed
    assert all(v == sorted(v) for v in log.values())
    assert 2 <= flight.most <= 6  # concurrent across lanes, never more than the target's workers


def test_blocking_leaves_plain_functions_alone_and_says_when_called_from_its_own_loop() -> None:
    def plain(x: int) -> int:
        return x

    assert blocking(plain) is plain
    loop = BackgroundLoop("test-loop")

    async def double(x: int) -> int:
        return 2 * x

    try:
        assert blocking(double, loop)(21) == 42

        async def reentrant() -> int:
            return int(blocking(double, loop)(1))

        with pytest.raises(RuntimeError, match="its own event loop"):
            loop.run(reentrant())
    finally:
        loop.close()


class _AsyncCallable:
    async def __call__(self, r: StreamRecord) -> None:
        await asyncio.sleep(0)


def test_async_callable_objects_count_as_async() -> None:
    assert is_async(_AsyncCallable()) and not is_async(lambda r: None)
