"""The Producer, the API: validates records and adds them to the accumulator, thread-safe; lifecycle.

The batching decisions are `producer.accumulator`'s (no I/O); everything that talks to Kinesis (the
worker loop, PutRecords calls, outcomes, resharding) is `producer.sender`'s, started by `start()`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import orjson

from producer.accumulator import Accumulator, Item, Pending, Rec
from producer.config import ProducerConfig
from producer.metrics import ProducerMetrics
from producer.results import PutResult
from producer.sender import Sender  # (imports concurrent.futures.thread: its exit hook is then registered first)
from streamkit.clock import SYSTEM_CLOCK, Clock, as_clock
from streamkit.errors import (
    BufferFullError,
    ConfigurationError,
    ProducerClosedError,
    RecordExpiredError,
    StreamkitError,
    ValidationError,
)
from streamkit.hashing import ShardMap, validate_explicit_hash_key, validate_partition_key
from streamkit.limits import PARTITION_KEY_MAX_CHARS
from streamkit.transport import as_kinesis

#: Seconds `with Producer(...)` gives buffered records to be written when the block ends on a
#: KeyboardInterrupt or other BaseException; what is still unwritten then fails, reported, not dropped.
INTERRUPT_GRACE = 2.0

__all__ = ["Producer", "WouldBlock"]

log = logging.getLogger("streamkit.producer")

#: Started producers not yet closed: interpreter exit closes each (`Producer._close_at_exit`).
_open_producers: set[Producer] = set()


def flush_open_producers() -> None:
    """What interpreter exit runs: every producer never closed flushes for at most its
    `ProducerConfig.exit_flush_timeout`, then hands what is unwritten to on_failure (or, with none,
    says in one ERROR line how many records were lost)."""
    for p in list(_open_producers):
        try:
            p._close_at_exit()
        except Exception:  # one producer's failure must not keep the others from flushing
            log.exception("closing the producer for stream %r at interpreter exit failed", p.stream_name)


# Registered with threading's exit hooks, which run before concurrent.futures shuts its pools down
# (the sender's PutRecords calls need them) and before the interpreter stops daemon threads; atexit
# handlers run too late for both. (Hooks run last-registered first; concurrent.futures.thread registered
# its hook when producer.sender imported it above.)
threading._register_atexit(flush_open_producers)  # type: ignore[attr-defined]


class WouldBlock(BufferFullError):
    """Raised instead of waiting for room, in the one thread that must not block (an AsyncProducer's loop)."""

    def __init__(self, message: str, item: Item, size: int) -> None:
        super().__init__(message)
        self.item, self.size = item, size


class Producer:
    """Aggregating, shard-aware, batching Kinesis producer.

    ``put`` returns a `Future` that resolves to a `PutResult` once the record is durably in Kinesis,
    or fails (after retries, at the latest `record_ttl` after the put) with a `StreamkitError`; the
    record, payload included, then also goes to ``config.on_failure``. ``send`` does the same without
    the future. Nothing is dropped silently.
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
        self.config = config or ProducerConfig()
        if metrics is not None:  # (the same as ProducerConfig.metrics; this one wins)
            from dataclasses import replace

            self.config = replace(self.config, metrics=metrics)
        # A boto3 client (its PutRecords bodies then written directly: streamkit/aws/wire.py) or any transport.
        self._transport = as_kinesis(client, stream=stream_name, retries=0, max_pool_connections=self.config.max_connections)
        self._time = as_clock(clock)  # waits and deadlines
        # The hot path reads it as a plain call: the C builtin itself for the system clock.
        self._clock = time.monotonic if self._time is SYSTEM_CLOCK else self._time.monotonic
        self._user_config = self.config
        self._rng = rng
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._start_lock = threading.Lock()  # start()'s network calls happen under this one, not _lock
        self._started = False
        # A record's wall-clock put time, without a second clock read per put.
        self._wall_offset = self._time.time() - self._clock()
        self._held: list[Item] = []  # puts that arrive while the shard map is being refreshed
        # 0 until started: every put then takes `_check_size`, which starts the producer (first use).
        self._max_record_size = 0
        self._max_buffered = self.config.max_buffered_bytes
        self._flushing = 0
        self._closing = False
        self._detour = False  # closing or resharding: put takes its slow path
        self._closed = False
        self._waiting = 0  # callers held back in put/send (buffer bound or admission by drain time)
        self._no_block_thread: int | None = None  # an AsyncProducer's loop thread: WouldBlock instead of a wait
        self._metrics = ProducerMetrics()
        self._recorder: Any = None
        self._own_recorder = False
        self._trace = False

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Producer:
        """Describe the stream, read its shards and start the sender; called by the first put/send/flush.

        Construction makes no network call; this does. Raises `StreamNotFoundError` for a missing stream
        (and `ProducerClosedError` once closed). Calling it again does nothing.
        """
        if self._started:
            if self._closing:
                raise ProducerClosedError(f"the producer for stream {self.stream_name!r} is closed")
            return self
        with self._start_lock:
            if self._closing:
                raise ProducerClosedError(f"the producer for stream {self.stream_name!r} is closed")
            if self._started:
                return self
            summary = self._transport.describe_stream_summary(self.stream_name)
            shards = ShardMap(self._transport.list_shards(self.stream_name))
            from streamkit.metrics import as_metrics

            # Trace context per record, when OpenTelemetry has a tracer provider now (streamkit.tracing).
            from streamkit.tracing import enabled as tracing_enabled

            with self._cond:
                auto = summary.auto_distribution
                self.config = self._user_config.for_stream(summary.max_record_bytes, auto=auto)
                self._acc = Accumulator(self.config, shards, placed_by_service=auto)
                self._acc.warm_mibps = summary.warm_throughput_mibps
                self._max_buffered = self.config.max_buffered_bytes
                self._recorder, self._own_recorder = as_metrics(self.config.metrics)
                self._m = self._recorder.scope(self.stream_name, "PutRecords")
                self._trace = self.config.trace_context is not False and self.config.aggregation and tracing_enabled()
                self._sender = Sender(self, stream_name=self.stream_name, transport=self._transport, acc=self._acc,
                                      cond=self._cond, auto=auto, clock=self._clock, time=self._time,
                                      wall_offset=self._wall_offset, metrics=self._metrics, signals=self._m,
                                      rng=self._rng)
                self._sender.note_distribution(summary.record_distribution)
                self._sender.start()
                _open_producers.add(self)
                self._max_record_size = self.config.record_limit
                self._started = True
        return self

    def stop_accepting(self) -> None:
        """Refuse every later put/send with `ProducerClosedError`, and end a put waiting for room.

        Safe to call from a signal handler (two plain stores, no lock); `close()` then flushes what
        was accepted. What the CLI calls on SIGTERM, SIGINT or SIGHUP.
        """
        self._closing = True
        self._detour = True

    # -- public API ----------------------------------------------------------------------------
    def put(self, data: bytes | bytearray | memoryview | str, partition_key: str | None,
            explicit_hash_key: str | int | None = None) -> Future[PutResult]:
        """Queue one record; the future resolves to where it landed. Raises before buffering on bad input."""
        # The fast check below is written out again in `send`, on purpose: it runs for every record,
        # and a shared helper would cost a Python call each time. Anything off it goes to `_validate`.
        if type(data) is bytes and type(partition_key) is str and explicit_hash_key is None \
                and 0 < len(partition_key) <= PARTITION_KEY_MAX_CHARS and partition_key.isascii():
            size, ehk = len(data) + len(partition_key), None
        else:
            data, ehk, size = self._validate(data, partition_key, explicit_hash_key)
        if size > self._max_record_size:
            self._check_size(data, size)
        now = self._clock()
        pending = Pending(data, partition_key, ehk, now, size)
        if self._trace:
            self._enqueue(pending, data, partition_key, ehk, now, size, self._trace_tags())
        else:
            self._enqueue(pending, data, partition_key, ehk, now, size)
        return pending

    def send(self, data: bytes | bytearray | memoryview | str, partition_key: str | None,
             explicit_hash_key: str | int | None = None) -> None:
        """`put` without a future, for fire-and-forget publishers.

        The record is validated, buffered, aggregated, retried and counted exactly as with `put`; only
        no `Future` is made for it. That saves the future's cost, most of it the garbage collector's
        work on hundreds of thousands of live objects (`bench/producer.py` has both rows). A record that fails for good goes,
        payload included, to ``config.on_failure`` (and is logged and counted as failed in `metrics()`).
        """
        if type(data) is bytes and type(partition_key) is str and explicit_hash_key is None \
                and 0 < len(partition_key) <= PARTITION_KEY_MAX_CHARS and partition_key.isascii():
            size, ehk = len(data) + len(partition_key), None
        else:
            data, ehk, size = self._validate(data, partition_key, explicit_hash_key)
        if size > self._max_record_size:
            self._check_size(data, size)
        now = self._clock()
        if self._trace:
            self._enqueue(Rec(data, partition_key, ehk, now, size), data, partition_key, ehk, now, size,
                          self._trace_tags())
        else:
            self._enqueue(Rec(data, partition_key, ehk, now, size), data, partition_key, ehk, now, size)

    def _trace_tags(self) -> tuple[tuple[str, str], ...]:
        """The current span's traceparent as a sub-record tag (`streamkit.tracing`), or none."""
        from streamkit.tracing import TRACEPARENT, current_traceparent

        tp = current_traceparent()
        return ((TRACEPARENT, tp),) if tp else ()

    def _validate(self, data: bytes | bytearray | memoryview | str, partition_key: str | None,
                  explicit_hash_key: str | int | None) -> tuple[bytes, str | None, int]:
        """(data as bytes, explicit hash key, size) of a record off the fast path; raises `ValidationError`."""
        if type(data) is not bytes:
            if isinstance(data, str):
                data = data.encode("utf-8")
            elif isinstance(data, bytes | bytearray | memoryview):
                data = bytes(data)
            else:
                raise ValidationError(f"data must be bytes or str, got {type(data).__name__}")
        if partition_key is None:
            if not self._started:
                self.start()  # whether the stream places records itself is read there
            if not self._sender.auto:
                raise ValidationError(f"partition_key=None needs a stream that places records itself "
                                      f"(RecordDistributionStrategy AUTO); {self.stream_name!r} places them by key")
            return data, None, len(data)
        if type(partition_key) is not str or not 0 < len(partition_key) <= PARTITION_KEY_MAX_CHARS:
            validate_partition_key(partition_key)
        ehk = validate_explicit_hash_key(explicit_hash_key) if explicit_hash_key is not None else None
        return data, ehk, len(data) + len(partition_key.encode("utf-8"))

    def _check_size(self, data: bytes, size: int) -> None:
        """Off the fast path: start on first use (or refuse when closed), then the record limit."""
        if not self._started or self._closing:
            self.start()
            if size <= self._max_record_size:
                return
        raise self._too_big(data, size)

    def _too_big(self, data: bytes, size: int) -> ValidationError:
        return ValidationError(f"record of {len(data)} bytes plus its {size - len(data)}-byte partition key is "
                               f"{size} bytes, over the {self._max_record_size}-byte record limit of stream "
                               f"{self.stream_name!r}")

    def _enqueue(self, item: Item, data: bytes, key: str | None, ehk: str | None, now: float, size: int,
                 tags: tuple[tuple[str, str], ...] = ()) -> None:
        # The record goes straight into its shard's aggregate, in the caller's thread. `with`, not
        # acquire() then try: a Ctrl-C landing right after acquire() would leave the lock held forever.
        with self._lock:
            if self._detour or self._acc.buffered_bytes + size > self._max_buffered:
                self._enqueue_slow(item, size, tags)
            else:
                added = self._acc.add_fields(item, data, key, ehk, now, size, False, tags)
                if added:
                    self._cond.notify_all()
                elif added is None:  # its shard holds as much as it drains in a share of record_ttl
                    self._enqueue_slow(item, size, tags)

    def _enqueue_slow(self, item: Item, size: int, tags: tuple[tuple[str, str], ...] = ()) -> None:
        """`_enqueue` under the lock when closing, resharding, or the buffer or the record's shard is full."""
        if self._closing:
            raise ProducerClosedError(f"the producer for stream {self.stream_name!r} is closed: record not accepted")
        if not self._has_room(item, size):
            self._wait_for_room(item, size)
        if self._sender.reshard_pending:
            self._held.append(item)  # routed once the new shard map is in (its trace tag is not kept)
            self._acc.buffered_bytes += size
        elif self._acc.add(item, tags):
            self._cond.notify_all()

    def put_json(self, obj: Any, partition_key: str, explicit_hash_key: str | int | None = None) -> Future[PutResult]:
        """`put` of ``orjson.dumps(obj)``."""
        return self.put(orjson.dumps(obj), partition_key, explicit_hash_key)

    def send_json(self, obj: Any, partition_key: str, explicit_hash_key: str | int | None = None) -> None:
        """`send` of ``orjson.dumps(obj)``."""
        self.send(orjson.dumps(obj), partition_key, explicit_hash_key)

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered now; True once every record put so far has resolved (False on timeout).

        Like the KPL's flushSync, it waits for records put by other threads meanwhile too.
        """
        if self._closed:
            raise ProducerClosedError(f"the producer for stream {self.stream_name!r} is closed")
        if not self._started:
            self.start()
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while not self._drained():
                    if not self._sender.alive:
                        raise StreamkitError("the producer's worker thread has stopped; see the log")
                    left = 1.0 if deadline is None else min(1.0, deadline - self._clock())
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._flushing -= 1

    def _drained(self) -> bool:
        return self._sender.drained()

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop. Records still unresolved after `timeout` fail with RecordExpiredError.

        Every later call but `close` and `metrics` raises `ProducerClosedError`.
        """
        with self._start_lock:  # not started, it never will be; started, the sender is complete
            with self._cond:
                if self._closed:
                    return
                self._closing = self._detour = True
                self._cond.notify_all()
                started = self._started
            if not started:
                self._closed = True
                return
        self._flush_for(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._sender.stop(timeout)
        self._sender.fail_leftovers(RecordExpiredError("the producer was closed before this record was written"), "Expired")
        _open_producers.discard(self)
        if self._own_recorder:
            self._recorder.close()
        else:
            self._recorder.flush()

    def _flush_for(self, timeout: float | None) -> None:
        try:
            self.flush(timeout)
        except StreamkitError as exc:  # the worker died: what it held fails below, reported
            log.error("%s", exc)

    def _close_at_exit(self) -> None:
        """Interpreter exit found this producer open: flush for `exit_flush_timeout`, then hand the rest over."""
        timeout = float(self._user_config.exit_flush_timeout)  # type: ignore[arg-type]
        with self._start_lock, self._cond:
            if self._closed or not self._started:
                return
            self._closing = self._detour = True
            self._cond.notify_all()
        self._flush_for(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._sender.stop(timeout)
        self._sender.fail_leftovers(RecordExpiredError(f"not written within exit_flush_timeout={timeout} s at interpreter "
                                                "exit (the producer was never closed)"), "Expired",
                             why=f"within exit_flush_timeout={timeout} s at interpreter exit (the producer was "
                                 "never closed)")
        _open_producers.discard(self)
        if self._recorder is not None:
            self._recorder.flush()

    def __enter__(self) -> Producer:
        if self._closing:
            raise ProducerClosedError(f"the producer for stream {self.stream_name!r} is closed")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            # Ctrl-C (or another BaseException) ends the block: give what is buffered a short grace,
            # then fail the rest (RecordExpiredError, to futures and on_failure) rather than hang on.
            self.close(timeout=INTERRUPT_GRACE)
        else:
            self.close()

    def metrics(self) -> dict[str, Any]:
        """A snapshot of counters, buffered bytes and put-to-result latency percentiles."""
        with self._cond:
            m = self._metrics
            if not self._started:
                return m.snapshot(buffered_bytes=0, buffered_records=0, held_back=False, drain_seconds={})
            # Every record put is written, failed, or still buffered.
            m.user_records_put = m.user_records_written + m.user_records_failed + self._acc.buffered_records + len(self._held)
            return self._metrics.snapshot(buffered_bytes=self._acc.buffered_bytes,
                                          buffered_records=self._acc.buffered_records + len(self._held),
                                          held_back=self._waiting > 0,
                                          drain_seconds=self._acc.drain_seconds(self._clock()))

    @property
    def held_back_seconds(self) -> float:
        """Seconds callers have waited in `put`/`send` for room (the buffer bound, or admission by drain time)."""
        return self._metrics.admission_wait_s

    @property
    def shard_map(self) -> ShardMap:
        return self.start()._acc.shard_map

    # -- buffering -----------------------------------------------------------------------------
    def _buffered(self) -> int:
        return self._acc.buffered_bytes

    def _has_room(self, item: Item, size: int) -> bool:
        """Under the lock: the buffer bound, and admission by drain time (`producer.admission`), admit it."""
        if self._buffered() + size > self.config.max_buffered_bytes:
            return False
        if self._sender.reshard_pending:
            return True  # held until the new shard map is in; admission looks again then
        return self._acc.has_room(self._acc.queue_for(item.partition_key, item.explicit_hash_key), size)

    def _why_full(self, item: Item, size: int) -> str:
        if self._buffered() + size > self.config.max_buffered_bytes:
            return f"producer buffer full ({self._buffered()} of {self.config.max_buffered_bytes} bytes)"
        q = self._acc.queue_for(item.partition_key, item.explicit_hash_key)
        seconds = self._acc.drain_seconds(self._clock()).get(q.shard_id, 0.0)
        return (f"shard {q.shard_id} holds {q.held_bytes} bytes, ~{seconds:.1f} s of what it accepts: a record put now "
                f"could wait past half its record_ttl ({self.config.ttl} s) before its first attempt")

    def _wait_for_room(self, item: Item, size: int) -> None:
        if self.config.buffer_full == "raise":
            raise BufferFullError(self._why_full(item, size))
        if self._no_block_thread == threading.get_ident():
            raise WouldBlock(self._why_full(item, size), item, size)
        start = self._clock()
        deadline = start + float(self.config.put_timeout)  # type: ignore[arg-type]
        self._note_wait(+1)
        try:
            while not self._has_room(item, size):
                left = deadline - self._clock()
                if self._closing:
                    raise ProducerClosedError(f"the producer for stream {self.stream_name!r} was closed while a "
                                              "record waited for room: record not accepted")
                if left <= 0:
                    raise BufferFullError(f"no room for put_timeout={self.config.put_timeout} s (it stayed full): "
                                          f"{self._why_full(item, size)}")
                # In slices: `stop_accepting` (a signal handler in this very thread) cannot notify.
                self._cond.wait(min(left, 0.1))
        finally:
            self._note_wait(-1, self._clock() - start)

    def _note_wait(self, change: int, seconds: float = 0.0) -> None:
        """A caller starts (+1) or stops (-1, after `seconds`) being held back. Under the lock."""
        self._waiting += change
        if change > 0:
            self._metrics.admission_waits += 1
        self._metrics.admission_wait_s += seconds

    def _room_now(self, item: Item, size: int) -> bool:
        """`_has_room`, taking the lock (for an AsyncProducer polling from its loop); True when closing
        (the put then raises at once)."""
        with self._lock:
            return self._closing or self._has_room(item, size)
