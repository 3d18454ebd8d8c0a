"""The Producer: thread-safe `put`, a worker that aggregates and batches, a pool that sends PutRecords."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson

from producer.accumulator import Accumulator, Entry, Item, Pending, rec_of
from producer.config import ProducerConfig
from producer.futures import resolve_exception, resolve_results
from producer.metrics import ProducerMetrics
from producer.results import FailedRecord, PutResult
from streamkit.clock import SYSTEM_CLOCK, Clock, as_clock
from streamkit.destinations import parse_destination
from streamkit.errors import (
    BufferFullError,
    ConfigurationError,
    KinesisError,
    ProducerClosedError,
    RecordExpiredError,
    StreamkitError,
    ValidationError,
)
from streamkit.hashing import ShardMap, validate_explicit_hash_key, validate_partition_key
from streamkit.retry import RetryPolicy
from streamkit.transport import PutEntryResult, as_kinesis

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
# handlers run too late for both. (Hooks run last-registered first; concurrent.futures registered its
# hook when it was imported above.)
threading._register_atexit(flush_open_producers)  # type: ignore[attr-defined]


class WouldBlock(BufferFullError):
    """Raised instead of waiting for room, in the one thread that must not block (an AsyncProducer's loop)."""

    def __init__(self, message: str, item: Item, size: int) -> None:
        super().__init__(message)
        self.item, self.size = item, size


class _Outcomes:
    """Resolutions decided under the lock and applied after it (user callbacks may call put())."""

    __slots__ = ("failed", "ok", "on_failure", "wall_offset")

    def __init__(self, on_failure: Callable[[list[FailedRecord]], None] | None, wall_offset: float) -> None:
        self.on_failure = on_failure
        self.wall_offset = wall_offset  # wall clock minus the producer's monotonic clock
        self.ok: list[tuple[list[Item], Callable[[Any, int], PutResult]]] = []
        # (records, error, error code, attempts of the entry that carried them)
        self.failed: list[tuple[list[Item], StreamkitError, str, int]] = []

    def __bool__(self) -> bool:
        return bool(self.ok or self.failed)

    def apply(self) -> None:
        for records, factory in self.ok:
            resolve_results(records, factory)
        deliver = self.on_failure
        for records, error, code, attempts in self.failed:
            if deliver is not None:
                failed = []
                for item in records:
                    data, key, ehk, put_mono, _size, before = rec_of(item)
                    failed.append(FailedRecord(data=data, partition_key=key, explicit_hash_key=ehk, error=str(error),
                                               error_code=code, attempts=before + attempts,
                                               put_time=put_mono + self.wall_offset))
                try:
                    deliver(failed)
                except Exception:
                    log.exception("on_failure raised for %d failed record(s); they are lost to it", len(failed))
            else:
                untracked = sum(1 for item in records if type(item) is tuple)
                if untracked:
                    log.error("%d record(s) sent without a future failed for good and no on_failure is set: %s",
                              untracked, error)
            resolve_exception(records, error)


def _failure_handler(on_failure: Any) -> Callable[[list[FailedRecord]], None] | None:
    """`ProducerConfig.on_failure` as one call per failed Kinesis record's user records."""
    if on_failure is None:
        return None
    if isinstance(on_failure, str):
        on_failure = parse_destination(on_failure)
    if hasattr(on_failure, "send_json"):  # a destination: one batch per failed entry
        def to_destination(records: list[FailedRecord]) -> None:
            on_failure.send_json([r.to_json() for r in records])
        return to_destination

    def each(records: list[FailedRecord]) -> None:
        for r in records:
            try:
                on_failure(r)
            except Exception:
                log.exception("on_failure callback raised for a record with key %r", r.partition_key)
    return each


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
        self._on_failure = _failure_handler(self.config.on_failure)
        self._retry = RetryPolicy(base=float(self.config.backoff_base), maximum=float(self.config.backoff_max))  # type: ignore[arg-type]
        self._backoff = self._retry.backoff(rng)
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
        self._calls_in_flight = 0
        self._waiting = 0  # callers held back in put/send (buffer bound or admission by drain time)
        self._no_block_thread: int | None = None  # an AsyncProducer's loop thread: WouldBlock instead of a wait
        self._reshard_pending = False
        self._auto = False
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
                self._auto = summary.auto_distribution
                self.config = self._user_config.for_stream(summary.max_record_bytes, auto=self._auto)
                self._acc = Accumulator(self.config, shards, placed_by_service=self._auto)
                self._acc.warm_mibps = summary.warm_throughput_mibps
                self._max_buffered = self.config.max_buffered_bytes
                self._recorder, self._own_recorder = as_metrics(self.config.metrics)
                self._m = self._recorder.scope(self.stream_name, "PutRecords")
                self._trace = self.config.trace_context is not False and self.config.aggregation and tracing_enabled()
                self._note_distribution(summary.record_distribution)
                self._pool = ThreadPoolExecutor(self.config.max_connections, thread_name_prefix="streamkit-put")
                self._worker = threading.Thread(target=self._run, name="streamkit-producer", daemon=True)
                self._worker.start()
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
                and 0 < len(partition_key) <= 256 and partition_key.isascii():
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
                and 0 < len(partition_key) <= 256 and partition_key.isascii():
            size, ehk = len(data) + len(partition_key), None
        else:
            data, ehk, size = self._validate(data, partition_key, explicit_hash_key)
        if size > self._max_record_size:
            self._check_size(data, size)
        now = self._clock()
        if self._trace:
            self._enqueue((data, partition_key, ehk, now, size, 0), data, partition_key, ehk, now, size,
                          self._trace_tags())
        else:
            self._enqueue((data, partition_key, ehk, now, size, 0), data, partition_key, ehk, now, size)

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
            if not self._auto:
                raise ValidationError(f"partition_key=None needs a stream that places records itself "
                                      f"(RecordDistributionStrategy AUTO); {self.stream_name!r} places them by key")
            return data, None, len(data)
        if type(partition_key) is not str or not 0 < len(partition_key) <= 256:
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
        if self._reshard_pending:
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
                    if not self._worker.is_alive():
                        raise StreamkitError("the producer's worker thread has stopped; see the log")
                    left = 1.0 if deadline is None else min(1.0, deadline - self._clock())
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._flushing -= 1

    def _drained(self) -> bool:
        return not self._held and self._acc.idle and self._calls_in_flight == 0

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
        self._worker.join(timeout=None if timeout is None else 5)
        self._pool.shutdown(wait=True)
        self._fail_leftovers(RecordExpiredError("the producer was closed before this record was written"), "Expired")
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

    def _fail_leftovers(self, error: StreamkitError, code: str, *, why: str = "") -> None:
        """Fail every record still buffered: futures fail, and each record goes to on_failure.

        Without an on_failure, `why` (when given) makes one ERROR line naming how many were lost.
        """
        with self._cond:
            leftovers = self._held + self._acc.drain()
            self._held = []
            self._metrics.user_records_failed += len(leftovers)
            self._m.count("UserRecordsFailed", len(leftovers))
        if why and leftovers and self._on_failure is None:
            log.error("%d record(s) for stream %r were not written %s and no on_failure is set: they are lost",
                      len(leftovers), self.stream_name, why)
            resolve_exception(leftovers, error)
            return
        outcomes = _Outcomes(self._on_failure, self._wall_offset)
        outcomes.failed.append((leftovers, error, code, 0))
        outcomes.apply()

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
        self._worker.join(timeout=5)
        self._pool.shutdown(wait=True)
        self._fail_leftovers(RecordExpiredError(f"not written within exit_flush_timeout={timeout} s at interpreter "
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
        if self._reshard_pending:
            return True  # held until the new shard map is in; admission looks again then
        _data, key, ehk, _t, _size, _n = rec_of(item)
        return self._acc.has_room(self._acc.queue_for(key, ehk), size)

    def _why_full(self, item: Item, size: int) -> str:
        if self._buffered() + size > self.config.max_buffered_bytes:
            return f"producer buffer full ({self._buffered()} of {self.config.max_buffered_bytes} bytes)"
        _data, key, ehk, _t, _size, _n = rec_of(item)
        q = self._acc.queue_for(key, ehk)
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

    # -- worker --------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                batches, outcomes, refresh = self._plan()
                outcomes.apply()
                if refresh:
                    self._refresh_shard_map()
                    continue
                if batches is None:
                    return
                for batch in batches:
                    self._pool.submit(self._send, batch)
        except BaseException:  # pragma: no cover - a bug here must not strand futures silently
            log.exception("producer worker crashed; failing outstanding records")
            self._fail_leftovers(StreamkitError("the producer's worker thread crashed; see the log"), "Crashed")
            raise

    def _plan(self) -> tuple[Any, _Outcomes, bool]:
        """Under the lock: expire, seal, and pick batches; wait when there is nothing to do."""
        with self._cond:
            while True:
                now = self._clock()
                outcomes = _Outcomes(self._on_failure, self._wall_offset)
                if self._reshard_pending and self._calls_in_flight == 0:
                    return [], outcomes, True
                for e in self._acc.expire(now, self.config.ttl):
                    self._fail(outcomes, e, RecordExpiredError(
                        f"record not written within record_ttl={self.config.ttl} s after {e.attempts} attempts"
                        + (f"; last error: {e.last_error}" if e.last_error else "")), e.last_code or "Expired")
                flushing = bool(self._flushing) or self._closing
                if flushing:
                    self._acc.seal_all()
                else:
                    self._acc.seal_due(now)
                batches: list[list[Entry]] = []
                while self._calls_in_flight < self.config.max_connections and not self._reshard_pending:
                    batch = self._acc.take_batch(now, flush=flushing,
                                                 free_connections=self.config.max_connections - self._calls_in_flight)
                    if not batch:
                        break
                    batches.append(batch)
                    self._calls_in_flight += 1
                if outcomes:
                    self._cond.notify_all()
                if batches or outcomes:
                    return batches, outcomes, False
                if self._closed and (self._drained() or self._closed_abandon()):
                    return None, outcomes, False
                wake = self._acc.next_wakeup(now)
                timeout = None if wake is None else max(0.0005, wake - now)
                if self._closed:
                    timeout = 0.05 if timeout is None else min(timeout, 0.05)
                self._cond.wait(timeout)

    def _closed_abandon(self) -> bool:
        # close(timeout) ran out: stop once nothing is in flight; close() fails what is left.
        return self._calls_in_flight == 0 and self._flushing == 0

    def _refresh_shard_map(self) -> None:
        """Read the stream's shards and settings again (a reshard, or a switch of record distribution)."""
        try:
            summary = self._transport.describe_stream_summary(self.stream_name)
            new_map = ShardMap(self._transport.list_shards(self.stream_name))
        except StreamkitError as exc:
            log.warning("could not refresh the shard map (%s); retrying", exc)
            self._time.sleep(0.2)
            return
        outcomes = _Outcomes(self._on_failure, self._wall_offset)
        with self._cond:
            switched = summary.auto_distribution != self._auto
            if switched:
                self._auto = summary.auto_distribution
                self.config = self._user_config.for_stream(summary.max_record_bytes, auto=self._auto)
                self._max_record_size = self.config.record_limit
                self._acc.config = self.config
                self._acc.placed_by_service = self._auto
                self._acc.warm_mibps = summary.warm_throughput_mibps
                self._note_distribution(summary.record_distribution)
            moved, unroutable = self._acc.reroute(new_map, everything=switched)
            held, self._held = self._held, []
            self._acc.buffered_bytes -= sum(rec_of(item)[4] for item in held)
            for item in held:
                if rec_of(item)[1] is None and not self._auto:
                    unroutable.append(item)
                else:
                    self._acc.add(item)
            for item in unroutable:  # keyless records, and the stream places records by key again
                self._fail(outcomes, self._acc.lone_entry(item), ValidationError(
                    f"stream {self.stream_name!r} no longer places records itself (RecordDistributionStrategy is "
                    "USER_PARTITION_KEY again): a record without a partition key cannot be written"),
                    "ValidationException")
            self._reshard_pending = False
            self._detour = self._closing
            self._metrics.reshards_detected += 1
            log.info("shard map refreshed: %d open shards, %d buffered records re-routed",
                     len(new_map.open_shards), moved)
            self._cond.notify_all()
        outcomes.apply()

    def _note_distribution(self, strategy: str) -> None:
        self._metrics.record_distribution = strategy
        self._metrics.aggregating = self.config.aggregation
        if self._auto:
            log.warning("stream %r places records itself (RecordDistributionStrategy AUTO): partition keys are "
                        "ignored, records are not aggregated (readers such as the KCL drop aggregates there) and "
                        "their order is not kept", self.stream_name)

    # -- sending -------------------------------------------------------------------------------
    def _send(self, batch: list[Entry]) -> None:
        outcomes = _Outcomes(self._on_failure, self._wall_offset)
        counted = False
        try:
            try:
                entries = [e.to_api() for e in batch]  # (an aggregate's bytes are built here)
                sent = self._clock()
                for e in batch:
                    e.sent_at = sent
                out: list[PutEntryResult] | None = self._transport.put_records(self.stream_name, entries)
                error: StreamkitError | None = None
            except StreamkitError as exc:
                out, error = None, exc
            except Exception as exc:  # a transport that broke its contract: fail the records, keep going
                log.exception("the transport raised %s (not a StreamkitError) for PutRecords", type(exc).__name__)
                out, error = None, KinesisError(f"unexpected error from the transport: {exc!r}",
                                                code=type(exc).__name__, retryable=False)
            with self._cond:
                self._calls_in_flight -= 1
                counted = True
                self._metrics.put_calls += 1
                now = self._clock()
                if out is None:
                    assert error is not None
                    self._metrics.put_call_errors += 1
                    code = error.code if isinstance(error, KinesisError) else type(error).__name__
                    if self._auto and code == "ValidationException" and not self._reshard_pending:
                        # The stream may have stopped placing records itself (keys required again):
                        # read its settings again before trying these records once more.
                        self._reshard_pending = self._detour = True
                        error = KinesisError(str(error), code=code, retryable=True)
                    # Reversed: failed entries go back to the head of their queues one by one, so
                    # putting the last first leaves them in their original order.
                    for e in reversed(batch):
                        self._after_failure(outcomes, e, now, str(error), code, error.retryable)
                else:
                    for e, r in reversed(list(zip(batch, out, strict=True))):
                        if "ErrorCode" in r:
                            code = r["ErrorCode"]
                            throttled = code == "ProvisionedThroughputExceededException"
                            if throttled:
                                self._metrics.throttles += 1
                            self._acc.observe(e, now, accepted=False, throttled=throttled)
                            self._after_failure(outcomes, e, now, f"{code}: {r.get('ErrorMessage', '')}", code,
                                                self._retry.retryable_code(code))
                        else:
                            self._succeed(outcomes, e, r, now)
                self._cond.notify_all()
        except BaseException as exc:  # pragma: no cover - never leave a batch unaccounted for
            log.exception("unexpected error sending a batch")
            with self._cond:
                if not counted:
                    self._calls_in_flight -= 1  # or no batch would ever be sent again
                for e in batch:
                    self._fail(outcomes, e, StreamkitError(f"unexpected error: {exc!r}"), "Unexpected")
                self._cond.notify_all()
        outcomes.apply()

    def _succeed(self, outcomes: _Outcomes, e: Entry, r: PutEntryResult, now: float) -> None:
        shard_id = r["ShardId"]
        if shard_id != e.shard_id and not self._reshard_pending and not self._auto:
            log.info("record predicted for %s landed in %s: refreshing the shard map", e.shard_id, shard_id)
            self._reshard_pending = self._detour = True
        self._acc.observe(e, now, accepted=True, throttled=False)
        self._acc.finished(e)
        m = self._metrics
        recs = e.records
        m.kinesis_records_written += 1
        m.aggregates_written += e.aggregated
        m.user_records_written += len(recs)
        m.bytes_written += e.size
        if self._m.enabled:
            sig = self._m
            sig.count("KinesisRecordsPut", shard=shard_id)
            sig.count("UserRecordsPut", len(recs), shard=shard_id)
            sig.timing("BufferingTime", (now - e.oldest) * 1000, shard=shard_id)
            sig.timing("RetriesPerRecord", e.attempts - 1, shard=shard_id, unit="Count")
        step = max(1, len(recs) // 32)  # latency sample: up to ~32 records per Kinesis record
        m.latencies.extend(now - rec_of(recs[i])[3] for i in range(0, len(recs), step))
        seq = r["SequenceNumber"]
        aggregated = e.aggregated
        attempts = e.attempts

        def result(p: Pending, i: int) -> PutResult:
            return PutResult(shard_id=shard_id, sequence_number=seq, sub_sequence_number=i if aggregated else None,
                             attempts=p.attempts + attempts)

        outcomes.ok.append((recs, result))

    def _after_failure(self, outcomes: _Outcomes, e: Entry, now: float, error: str, code: str, retryable: bool) -> None:
        if self._m.enabled:
            self._m.count("ErrorsByCode", ErrorCode=code)
            if code == "ProvisionedThroughputExceededException":
                self._m.count("Throttles", shard=e.shard_id)
        if retryable:
            delay = self._backoff.delay(e.attempts)
            throttled = code == "ProvisionedThroughputExceededException"
            if throttled:
                # Throttled by this producer's own writes: go again when the shard's second has room for
                # it (a few ms late), not a random backoff later; else (another writer?) the backoff.
                fits = self._acc.throttled_retry_at(e, now)
                if fits is not None:
                    delay = min(max(0.0, fits - now), float(self.config.backoff_max))  # type: ignore[arg-type]
            # Past its TTL a throttled record still goes again while its shard accepts records: it was
            # admitted on a rate the shard did not keep, and is written late rather than given up.
            if self._retry.within_ttl(now, delay, e.oldest, self.config.ttl) or \
                    (throttled and self._acc.making_progress(e, now)):
                self._metrics.retries += 1
                self._acc.retry_later(e, now + delay, error, code)
                return
            self._acc.finished(e)
            self._fail(outcomes, e, RecordExpiredError(
                f"record not written within record_ttl={self.config.ttl} s after {e.attempts} attempts; "
                f"last error: {error}"), code)
            return
        self._acc.finished(e)
        self._fail(outcomes, e, KinesisError(f"record rejected by Kinesis: {error}", code=code, retryable=False), code)

    def _fail(self, outcomes: _Outcomes, e: Entry, error: StreamkitError, code: str) -> None:
        self._metrics.user_records_failed += len(e.records)
        self._m.count("UserRecordsFailed", len(e.records))
        outcomes.failed.append((e.records, error, code, e.attempts))
