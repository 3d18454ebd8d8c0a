"""What only the asyncio producer has: an event loop that keeps running, awaited backpressure, cancellation.

tests/realtime: no servers, but the real clock (the event loop's timers are what is measured here).

The producer's behaviour itself (validation, aggregation, retries, TTL, order, on_failure) is tested for
both producers by the parametrised tests in test_producer.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from producer import AsyncProducer, FailedRecord, ProducerConfig, PutResult
from streamkit.errors import ConfigurationError, ValidationError
from streamkit.testing import FakeKinesis

FAST = dict(rate_limit=0, record_max_buffered_time=0.005, backoff_base=0.001, backoff_max=0.01)


def cfg(**kw: Any) -> ProducerConfig:
    return ProducerConfig(**{**FAST, **kw})


def test_other_tasks_run_during_every_burst_of_sends_at_100k_puts() -> None:
    """16 bursts of 10,000 `await send()` calls: a task that only hands the loop back (``sleep(0)``) runs
    several times inside every burst, so the producer returns the loop within a burst, not only at its end.

    Counted, not timed: how late the loop runs a timer under this load is a speed figure, measured by
    bench/async_producer_loop.py (on a loaded machine it says nothing about the producer). A producer that
    never yielded inside a burst, or that blocked the loop's thread on a full buffer, fails here."""

    async def main() -> tuple[list[int], int, int]:
        beats = 0
        stop = asyncio.Event()

        async def heartbeat() -> None:
            nonlocal beats
            while not stop.is_set():
                beats += 1
                await asyncio.sleep(0)

        during: list[int] = []
        async with AsyncProducer("s", client=FakeKinesis(8), config=ProducerConfig(rate_limit=0)) as p:
            task = asyncio.create_task(heartbeat())
            n = 0
            for _burst in range(16):
                await asyncio.sleep(0)
                before = beats
                for _ in range(10_000):
                    await p.send(b"x" * 100, f"sensor-{n % 5_000}")
                    n += 1
                during.append(beats - before)
            stop.set()
            await task
        return during, n, p.metrics()["user_records_written"]

    during, sent, written = asyncio.run(main())
    assert written == sent == 160_000
    # The producer yields after each YIELD_AFTER (1 ms) of sends: 10,000 sends take far longer than 2 ms on any
    # machine, so each burst hands the loop back at least twice (a slower machine only adds more).
    assert min(during) >= 2, during


def test_backpressure_is_an_await_the_loop_runs_meanwhile_and_nothing_is_lost() -> None:
    # Kinesis refuses everything until another task on the loop has run 20 times: the sends can only get
    # past the full buffer if that task runs while they wait. Ordered by events, never by how long it took;
    # the timer is a hang guard (a producer blocking the loop's thread would otherwise hang here).
    refusing = threading.Event()
    refusing.set()
    guard = threading.Timer(60, refusing.clear)

    def refused_until_released(call: int, index: int, entry: dict[str, Any]) -> str | None:
        return "ProvisionedThroughputExceededException" if refusing.is_set() else None

    async def main() -> tuple[int | None, int, dict[str, Any]]:
        ticks, sent, sent_at_release = 0, 0, None
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks, sent_at_release
            while not stop.is_set():
                ticks += 1
                if ticks == 20 and refusing.is_set():
                    sent_at_release = sent
                    refusing.clear()
                await asyncio.sleep(0.01)

        client = FakeKinesis(2, entry_error=refused_until_released)
        config = cfg(max_buffered_bytes=64 * 1024, max_record_size=1024, aggregation_max_size=1024,
                     aggregation=False, record_ttl=600)
        async with AsyncProducer("s", client=client, config=config) as p:
            task = asyncio.create_task(ticker())
            for i in range(2_000):  # 2,000 x 100 B: three times what the buffer holds
                await p.send(b"y" * 96, f"k{i % 10}")
                sent += 1
            await p.flush()
            stop.set()
            await task
        return sent_at_release, sent, p.metrics()

    guard.start()
    try:
        sent_at_release, sent, m = asyncio.run(main())
    finally:
        guard.cancel()
    assert sent_at_release is not None, "the other task never ran 20 times while Kinesis refused (loop blocked?)"
    assert sent_at_release < 2_000  # the sends were held back while Kinesis refused everything...
    assert sent == 2_000  # ...and went on once it took them
    assert m["user_records_written"] == 2_000 and m["user_records_failed"] == 0


def test_put_awaits_the_result_and_put_future_lets_many_be_gathered() -> None:
    async def main() -> tuple[PutResult, list[PutResult]]:
        async with AsyncProducer("s", client=FakeKinesis(4), config=cfg()) as p:
            one = await p.put(b"hello", "k")
            futures = [await p.put_future(b"r%d" % i, f"k{i}") for i in range(100)]
            return one, list(await asyncio.gather(*futures))

    one, many = asyncio.run(main())
    assert one.shard_id.startswith("shardId-") and one.sequence_number
    assert len(many) == 100 and all(r.sequence_number for r in many)


def test_bad_input_raises_at_the_call_and_a_failed_record_raises_where_it_is_awaited() -> None:
    failed: list[FailedRecord] = []

    async def main() -> None:
        client = FakeKinesis(entry_error=lambda c, i, e: "AccessDeniedException")
        async with AsyncProducer("s", client=client, config=cfg(on_failure=failed.append)) as p:
            with pytest.raises(ValidationError, match="1 to 256"):
                await p.put(b"x", "")
            with pytest.raises(Exception, match="AccessDenied"):
                await p.put(b"refused", "k")

    asyncio.run(main())
    assert [f.data for f in failed] == [b"refused"]


def test_a_cancelled_task_leaves_the_block_within_the_grace_and_reports_what_was_unwritten() -> None:
    failed: list[FailedRecord] = []

    async def publisher(p_box: list[AsyncProducer]) -> None:
        client = FakeKinesis(entry_error=lambda c, i, e: "ProvisionedThroughputExceededException")
        async with AsyncProducer("s", client=client, config=cfg(record_ttl=600, on_failure=failed.append)) as p:
            p_box.append(p)
            for i in range(10):
                await p.send(b"r%d" % i, "k")
            await asyncio.sleep(3600)  # a server shutting down cancels this task

    async def main() -> float:
        box: list[AsyncProducer] = []
        task = asyncio.create_task(publisher(box))
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    took = asyncio.run(main())
    assert took < 30  # the 2 s grace, not the 600 s TTL
    assert sorted(f.data for f in failed) == [b"r%d" % i for i in range(10)]
    assert all(f.error_code == "Expired" for f in failed)


def test_it_starts_on_first_use_and_says_so_when_asked_for_its_producer_before() -> None:
    p = AsyncProducer("s", client=FakeKinesis())
    with pytest.raises(ConfigurationError, match="not started"):
        _ = p.producer

    async def main() -> int:
        await p.send(b"x", "k")  # starts it
        await p.close()
        return int(p.metrics()["user_records_written"])

    assert asyncio.run(main()) == 1
    with pytest.raises(ConfigurationError, match="stream_name"):
        AsyncProducer("")
