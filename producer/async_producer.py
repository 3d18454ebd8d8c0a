"""`AsyncProducer`: the producer for asyncio applications, on the threaded producer's own engine.

There is one producer. `AsyncProducer` holds a `Producer` and adds only what an event loop needs:

- the calls that can wait (start, flush, close) run in a worker thread (`asyncio.to_thread`);
- `put` awaits the record's `Future` (`asyncio.wrap_future`), so the loop runs meanwhile;
- backpressure is an ``await``: when the buffer is full, `put`/`send` sleep on the loop until the
  producer's sender has made room (or `put_timeout` passes), instead of blocking the loop's thread;
- a long burst of `put`/`send` calls that never wait hands the loop back now and then
  (after `YIELD_AFTER` seconds of them), so other tasks and the loop's timers keep running.

Batching, aggregation, retries, ordering, TTL and `on_failure` are the threaded producer's, unchanged.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from producer.config import ProducerConfig
from producer.producer import INTERRUPT_GRACE, Producer, WouldBlock
from producer.results import PutResult
from streamkit.clock import Clock
from streamkit.errors import BufferFullError, ConfigurationError, ProducerClosedError

__all__ = ["YIELD_AFTER", "AsyncProducer"]

#: Seconds of `put`/`send` calls that did not have to wait, after which the loop is handed back
#: (an ``await asyncio.sleep(0)``), so a long burst never holds up the loop's other tasks.
YIELD_AFTER = 0.001

#: `send` calls between two looks at the clock (for `YIELD_AFTER`): a look costs more than a count.
_CHECK_EVERY = 32

#: How often a caller held back by a full buffer looks again (seconds; doubling up to the maximum).
_ROOM_POLL, _ROOM_POLL_MAX = 0.001, 0.02

Data = bytes | bytearray | memoryview | str
_now = time.monotonic


class AsyncProducer:
    """`Producer` for asyncio: ``async with AsyncProducer(stream) as p: await p.put(data, key)``.

    Takes the same arguments as `Producer`. Use it from one event loop. The stream is described and the
    worker threads start on `start()` (or entering ``async with``, or the first `put`/`send`).
    """

    def __init__(
        self,
        stream_name: str,
        *,
        client: Any = None,
        config: ProducerConfig | None = None,
        clock: Clock | Callable[[], float] | None = None,
        rng: random.Random | None = None,
        metrics: Any = None,
    ) -> None:
        if not stream_name:
            raise ConfigurationError("stream_name must not be empty")
        self.stream_name = stream_name
        self._args: dict[str, Any] = {"client": client, "config": config, "clock": clock, "rng": rng,
                                      "metrics": metrics}
        self._producer: Producer | None = None
        self._starting: asyncio.Lock | None = None
        self._yield_at = 0.0  # monotonic time by which the loop is handed back
        self._left = 0  # sends before the next look at the clock; 0 until started
        self._acc: Any = None  # the started producer's accumulator and send, read on the hot path
        self._send: Any = None
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> AsyncProducer:
        """Describe the stream and start the sender (in a thread: DescribeStreamSummary is a network call)."""
        self._refuse_if_closed()
        if self._producer is None:
            if self._starting is None:
                self._starting = asyncio.Lock()
            async with self._starting:
                self._refuse_if_closed()
                if self._producer is None:
                    p = Producer(self.stream_name, **self._args)
                    await asyncio.to_thread(p.start)
                    p._no_block_thread = threading.get_ident()  # this loop's thread: WouldBlock, not a wait
                    self._acc, self._send = p._acc, p.send
                    self._producer = p
        return self

    @property
    def producer(self) -> Producer:
        """The threaded producer underneath (started)."""
        if self._producer is None:
            raise ConfigurationError("the AsyncProducer is not started: use `async with` or `await start()`")
        return self._producer

    @property
    def config(self) -> ProducerConfig:
        return self.producer.config

    async def flush(self, timeout: float | None = None) -> bool:
        """`Producer.flush`, awaited: True once every record put so far has resolved."""
        self._refuse_if_closed()
        if self._producer is None:
            return True
        return await asyncio.to_thread(self._producer.flush, timeout)

    async def close(self, timeout: float | None = None) -> None:
        """`Producer.close`, awaited: flush, then stop; what is unwritten after `timeout` fails, reported.

        Every later call but `close` raises `ProducerClosedError`.
        """
        self._closed = True
        self._left = 0  # the next send takes `_admit`, which refuses
        if self._producer is not None:
            await asyncio.to_thread(self._producer.close, timeout)

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise ProducerClosedError(f"the AsyncProducer for stream {self.stream_name!r} is closed")

    async def __aenter__(self) -> AsyncProducer:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            # Cancelled (a shutting-down server) or interrupted: the threaded producer's short grace.
            await asyncio.shield(self.close(timeout=INTERRUPT_GRACE))
        else:
            await self.close()

    def metrics(self) -> dict[str, Any]:
        return self.producer.metrics()

    # -- records -------------------------------------------------------------------------------
    async def put(self, data: Data, partition_key: str | None, explicit_hash_key: str | int | None = None) -> PutResult:
        """Buffer one record and wait until it is durably in Kinesis; returns where it landed.

        Raises what `Producer.put` raises (a `ValidationError` before buffering, `BufferFullError`),
        and the record's own failure (`RecordExpiredError`, ...) once it has failed for good.
        """
        return await (await self.put_future(data, partition_key, explicit_hash_key))

    async def put_future(self, data: Data, partition_key: str | None,
                         explicit_hash_key: str | int | None = None) -> asyncio.Future[PutResult]:
        """Buffer one record; returns a future of its result, to await later or `asyncio.gather`.

        Many records in flight at once without a task each: ``futures = [await p.put_future(d, k) ...]``.
        """
        await self._admit()
        while True:
            try:
                future = self._producer.put(data, partition_key, explicit_hash_key)  # type: ignore[union-attr]
                return asyncio.wrap_future(future)
            except WouldBlock as held:
                await self._wait_for_room(held)

    async def send(self, data: Data, partition_key: str | None, explicit_hash_key: str | int | None = None) -> None:
        """Buffer one record without waiting for it to be written (`Producer.send`: failures go to on_failure)."""
        # Per record, only a count and the threaded send, which never blocks this loop's thread: where it
        # would wait (a full buffer, a shard holding as much as it drains in half the TTL) it raises
        # WouldBlock instead, and the wait is an await here. Every _CHECK_EVERY calls (and before the
        # first) `_admit` looks at the clock and hands the loop back when due.
        self._left -= 1
        if self._left > 0:
            try:
                self._send(data, partition_key, explicit_hash_key)
                return
            except WouldBlock as held:
                await self._wait_for_room(held)
        else:
            await self._admit()
        while True:
            try:
                self._send(data, partition_key, explicit_hash_key)
                return
            except WouldBlock as held:
                await self._wait_for_room(held)

    async def put_json(self, obj: Any, partition_key: str | None, explicit_hash_key: str | int | None = None) -> PutResult:
        return await self.put(orjson.dumps(obj), partition_key, explicit_hash_key)

    async def send_json(self, obj: Any, partition_key: str | None, explicit_hash_key: str | int | None = None) -> None:
        await self.send(orjson.dumps(obj), partition_key, explicit_hash_key)

    async def _admit(self) -> None:
        """Before a record is added: started (and not closed), and the loop handed back when it is due."""
        self._refuse_if_closed()
        if self._producer is None:
            await self.start()
        self._left = _CHECK_EVERY
        if _now() >= self._yield_at:
            await asyncio.sleep(0)
            self._yield_at = _now() + YIELD_AFTER

    async def _wait_for_room(self, held: WouldBlock) -> None:
        """The threaded producer would have blocked: sleep on the loop until it has room, or `put_timeout`."""
        p = self._producer
        assert p is not None
        deadline = p._clock() + float(p.config.put_timeout)  # type: ignore[arg-type]
        pause = _ROOM_POLL
        with p._lock:
            p._note_wait(+1)
        started = p._clock()
        try:
            while not p._room_now(held.item, held.size):
                if p._clock() >= deadline:
                    raise BufferFullError(f"no room for put_timeout={p.config.put_timeout} s (it stayed full): {held}")
                await asyncio.sleep(pause)
                pause = min(pause * 2, _ROOM_POLL_MAX)
        finally:
            with p._lock:
                p._note_wait(-1, p._clock() - started)
        self._left = _CHECK_EVERY
