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
import time
from collections.abc import Callable
from typing import Any

import orjson

from producer.config import ProducerConfig
from producer.producer import INTERRUPT_GRACE, Producer
from producer.results import PutResult
from streamkit.clock import Clock
from streamkit.errors import BufferFullError, ConfigurationError

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
    ) -> None:
        if not stream_name:
            raise ConfigurationError("stream_name must not be empty")
        self.stream_name = stream_name
        self._args: dict[str, Any] = {"client": client, "config": config, "clock": clock, "rng": rng}
        self._producer: Producer | None = None
        self._starting: asyncio.Lock | None = None
        self._yield_at = 0.0  # monotonic time by which the loop is handed back
        self._left = 0  # sends before the next look at the clock; 0 until started
        self._acc: Any = None  # the started producer's accumulator and send, read on the hot path
        self._send: Any = None
        self._full_at = 0  # buffered bytes from which a record may not fit: then look before adding

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> AsyncProducer:
        """Describe the stream and start the sender (in a thread: DescribeStreamSummary is a network call)."""
        if self._producer is None:
            if self._starting is None:
                self._starting = asyncio.Lock()
            async with self._starting:
                if self._producer is None:
                    p = await asyncio.to_thread(Producer, self.stream_name, **self._args)
                    self._full_at = p.config.max_buffered_bytes - p._max_record_size
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
        if self._producer is None:
            return True
        return await asyncio.to_thread(self._producer.flush, timeout)

    async def close(self, timeout: float | None = None) -> None:
        """`Producer.close`, awaited: flush, then stop; what is unwritten after `timeout` fails, reported."""
        if self._producer is not None:
            await asyncio.to_thread(self._producer.close, timeout)

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
        await self._admit(_size(data, partition_key))
        future = self._producer.put(data, partition_key, explicit_hash_key)  # type: ignore[union-attr]
        return asyncio.wrap_future(future)

    async def send(self, data: Data, partition_key: str | None, explicit_hash_key: str | int | None = None) -> None:
        """Buffer one record without waiting for it to be written (`Producer.send`: failures go to on_failure)."""
        # Per record, only a count and a look at the buffer: room for the largest record means the
        # threaded send cannot block. Every _CHECK_EVERY calls (and before the first) `_admit` looks
        # at the clock, hands the loop back when due, and waits for room if the buffer is full.
        self._left -= 1
        if self._left > 0 and self._acc.buffered_bytes <= self._full_at:
            self._send(data, partition_key, explicit_hash_key)
            return
        await self._admit(_size(data, partition_key))
        self._send(data, partition_key, explicit_hash_key)

    async def put_json(self, obj: Any, partition_key: str | None, explicit_hash_key: str | int | None = None) -> PutResult:
        return await self.put(orjson.dumps(obj), partition_key, explicit_hash_key)

    async def send_json(self, obj: Any, partition_key: str | None, explicit_hash_key: str | int | None = None) -> None:
        await self.send(orjson.dumps(obj), partition_key, explicit_hash_key)

    async def _admit(self, size: int) -> None:
        """Before a record is added: started, the loop handed back now and then, and room in the buffer.

        Only this loop's thread adds records and the sender only ever frees room, so once room for the
        record is seen, the threaded `put`/`send` that follows does not block.
        """
        if self._producer is None:
            await self.start()
        p = self._producer
        assert p is not None
        self._left = _CHECK_EVERY
        if _now() >= self._yield_at:
            await asyncio.sleep(0)
            self._yield_at = _now() + YIELD_AFTER
        limit = p.config.max_buffered_bytes
        if p._acc.buffered_bytes + size <= limit or p.config.buffer_full == "raise" or p._closing:
            return  # room; or the threaded call raises at once (BufferFullError, closed)
        deadline = p._clock() + float(p.config.put_timeout)  # type: ignore[arg-type]
        pause = _ROOM_POLL
        while p._acc.buffered_bytes + size > limit and not p._closing:
            if p._clock() >= deadline:
                raise BufferFullError(f"producer buffer stayed full for {p.config.put_timeout} s "
                                      f"({p._acc.buffered_bytes} of {limit} bytes)")
            await asyncio.sleep(pause)
            pause = min(pause * 2, _ROOM_POLL_MAX)


def _size(data: object, key: object) -> int:
    """What a record counts against the buffer (data + key bytes); 0 for what `put` will refuse anyway."""
    try:
        n = len(data.encode("utf-8")) if isinstance(data, str) else len(data)  # type: ignore[arg-type]
        return n + (len(key.encode("utf-8")) if isinstance(key, str) else 0)
    except TypeError:
        return 0
