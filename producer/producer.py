"""The Producer: thread-safe `put`, a worker that aggregates and batches, a pool that sends PutRecords."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from producer.accumulator import Accumulator, Entry, Pending
from producer.config import ProducerConfig
from producer.metrics import ProducerMetrics
from producer.results import FailedRecord, PutResult
from producer.retry import RetryPolicy
from streamkit import kinesis
from streamkit.clients import aws_client
from streamkit.errors import (
    BufferFullError,
    ConfigurationError,
    KinesisError,
    RecordExpiredError,
    StreamkitError,
    ValidationError,
)
from streamkit.hashing import ShardMap, validate_explicit_hash_key, validate_partition_key

__all__ = ["Producer"]

log = logging.getLogger("streamkit.producer")
_Resolution = tuple[Future[Any], PutResult | BaseException]


class Producer:
    """Aggregating, shard-aware, batching Kinesis producer.

    ``put`` returns a `Future` that resolves to a `PutResult` once the record is durably in Kinesis,
    or fails (after retries, at the latest `record_ttl` after the put) with a `StreamkitError`; the
    record, payload included, then also goes to ``config.on_failure``. Nothing is dropped silently.
    """

    def __init__(
        self,
        stream_name: str,
        *,
        client: Any = None,
        config: ProducerConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if not stream_name:
            raise ConfigurationError("stream_name must not be empty")
        self.stream_name = stream_name
        self.config = config or ProducerConfig()
        self._client = client or aws_client("kinesis", retries=0, max_pool_connections=self.config.max_connections)
        self._clock = clock
        self._retry = RetryPolicy(base=float(self.config.backoff_base), maximum=float(self.config.backoff_max),  # type: ignore[arg-type]
                                  rng=rng)
        self._acc = Accumulator(self.config, kinesis.shard_map(self._client, stream_name))
        self._cond = threading.Condition(threading.Lock())
        self._put_lock = threading.Lock()
        self._inbox: deque[Pending] = deque()
        self._inbox_bytes = 0
        self._puts = 0
        self._flushing = 0
        self._closing = False
        self._closed = False
        self._calls_in_flight = 0
        self._reshard_pending = False
        self._metrics = ProducerMetrics()
        self._pool = ThreadPoolExecutor(self.config.max_connections, thread_name_prefix="streamkit-put")
        self._worker = threading.Thread(target=self._run, name="streamkit-producer", daemon=True)
        self._worker.start()

    # -- public API ----------------------------------------------------------------------------
    def put(self, data: bytes | bytearray | memoryview | str, partition_key: str,
            explicit_hash_key: str | int | None = None) -> Future[PutResult]:
        """Queue one record; the future resolves to where it landed. Raises before buffering on bad input."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif isinstance(data, bytearray | memoryview):
            data = bytes(data)
        elif not isinstance(data, bytes):
            raise ValidationError(f"data must be bytes or str, got {type(data).__name__}")
        validate_partition_key(partition_key)
        ehk = validate_explicit_hash_key(explicit_hash_key) if explicit_hash_key is not None else None
        size = len(data) + len(partition_key.encode("utf-8"))
        if size > self.config.max_record_size:
            raise ValidationError(f"record of {len(data)} bytes plus its {size - len(data)}-byte partition key is "
                                  f"{size} bytes, over the {self.config.max_record_size}-byte Kinesis record limit")
        pending = Pending(data, partition_key, ehk, self._clock(), time.time(), size)
        # Puts touch only the inbox lock; the worker swaps the whole inbox out under it.
        with self._put_lock:
            if self._closing:
                raise StreamkitError("the producer is closed")
            room = self._has_room(size)
            if room:
                wake = not self._inbox
                self._inbox.append(pending)
                self._inbox_bytes += size
                self._puts += 1
        if not room:
            with self._cond:
                self._wait_for_room(size)
            with self._put_lock:
                wake = not self._inbox
                self._inbox.append(pending)
                self._inbox_bytes += size
                self._puts += 1
        if wake:
            with self._cond:
                self._cond.notify_all()
        return pending

    def put_json(self, obj: Any, partition_key: str, explicit_hash_key: str | int | None = None) -> Future[PutResult]:
        """`put` of ``orjson.dumps(obj)``."""
        return self.put(orjson.dumps(obj), partition_key, explicit_hash_key)

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything buffered now; True once every record put so far has resolved (False on timeout).

        Like the KPL's flushSync, it waits for records put by other threads meanwhile too.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while not self._drained():
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._flushing -= 1

    def _drained(self) -> bool:
        with self._put_lock:
            empty = not self._inbox
        return empty and self._acc.idle and self._calls_in_flight == 0

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop. Records still unresolved after `timeout` fail with RecordExpiredError."""
        with self._cond, self._put_lock:
            if self._closed:
                return
            self._closing = True
            self._cond.notify_all()
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout=None if timeout is None else 5)
        self._pool.shutdown(wait=True)
        with self._cond, self._put_lock:
            leftovers = list(self._inbox) + self._acc.drain()
            self._inbox.clear()
            self._inbox_bytes = 0
        for p in leftovers:
            if not p.future.done():
                p.future.set_exception(RecordExpiredError("the producer was closed before this record was written"))

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def metrics(self) -> dict[str, Any]:
        """A snapshot of counters, buffered bytes and put-to-result latency percentiles."""
        with self._cond, self._put_lock:
            self._metrics.user_records_put = self._puts
            return self._metrics.snapshot(buffered_bytes=self._acc.buffered_bytes + self._inbox_bytes,
                                          buffered_records=self._acc.buffered_records + len(self._inbox))

    @property
    def shard_map(self) -> ShardMap:
        return self._acc.shard_map

    # -- buffering -----------------------------------------------------------------------------
    def _buffered(self) -> int:
        return self._acc.buffered_bytes + self._inbox_bytes

    def _has_room(self, size: int) -> bool:
        return self._buffered() + size <= self.config.max_buffered_bytes

    def _wait_for_room(self, size: int) -> None:
        if self.config.buffer_full == "raise":
            raise BufferFullError(f"producer buffer full ({self._buffered()} of {self.config.max_buffered_bytes} bytes)")
        deadline = time.monotonic() + float(self.config.put_timeout)  # type: ignore[arg-type]
        while not self._has_room(size):
            left = deadline - time.monotonic()
            if left <= 0 or self._closing:
                raise BufferFullError(f"producer buffer stayed full for {self.config.put_timeout} s "
                                      f"({self._buffered()} of {self.config.max_buffered_bytes} bytes)")
            self._cond.wait(left)

    # -- worker --------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                batches, resolutions, refresh = self._plan()
                self._resolve(resolutions)
                if refresh:
                    self._refresh_shard_map()
                    continue
                if batches is None:
                    return
                for batch in batches:
                    self._pool.submit(self._send, batch)
        except BaseException:  # pragma: no cover - a bug here must not strand futures silently
            log.exception("producer worker crashed; failing outstanding records")
            with self._cond:
                leftovers = list(self._inbox) + self._acc.drain()
            for p in leftovers:
                if not p.future.done():
                    p.future.set_exception(StreamkitError("the producer's worker thread crashed; see the log"))
            raise

    def _plan(self) -> tuple[Any, list[_Resolution], bool]:
        """Under the lock: take input, expire, seal, and pick batches; wait when there is nothing to do."""
        with self._cond:
            while True:
                now = self._clock()
                resolutions: list[_Resolution] = []
                if self._reshard_pending:
                    if self._calls_in_flight == 0:
                        return [], resolutions, True
                else:
                    with self._put_lock:
                        taken, self._inbox = self._inbox, deque()
                        self._inbox_bytes = 0
                    add = self._acc.add
                    for p in taken:
                        add(p, now)
                for e in self._acc.expire(now, self.config.ttl):
                    resolutions += self._fail(e, RecordExpiredError(
                        f"record not written within record_ttl={self.config.ttl} s after {e.attempts} attempts"
                        + (f"; last error: {e.last_error}" if e.last_error else "")), e.last_code or "Expired")
                flushing = bool(self._flushing) or self._closing
                if flushing:
                    self._acc.seal_all()
                else:
                    self._acc.seal_due(now)
                batches: list[list[Entry]] = []
                while self._calls_in_flight < self.config.max_connections and not self._reshard_pending:
                    batch = self._acc.take_batch(now, flush=flushing)
                    if not batch:
                        break
                    batches.append(batch)
                    self._calls_in_flight += 1
                if resolutions:
                    self._cond.notify_all()
                if batches or resolutions:
                    return batches, resolutions, False
                if self._closed and (self._drained() or self._closed_abandon()):
                    return None, resolutions, False
                wake = self._acc.next_wakeup(now)
                timeout = None if wake is None else max(0.0005, wake - now)
                if self._closed:
                    timeout = 0.05 if timeout is None else min(timeout, 0.05)
                self._cond.wait(timeout)

    def _closed_abandon(self) -> bool:
        # close(timeout) ran out: stop once nothing is in flight; close() fails what is left.
        return self._calls_in_flight == 0 and self._flushing == 0

    def _refresh_shard_map(self) -> None:
        try:
            new_map = kinesis.shard_map(self._client, self.stream_name)
        except StreamkitError as exc:
            log.warning("could not refresh the shard map (%s); retrying", exc)
            time.sleep(0.2)
            return
        with self._cond:
            moved = self._acc.reroute(new_map, self._clock())
            self._reshard_pending = False
            self._metrics.reshards_detected += 1
            log.info("shard map refreshed: %d open shards, %d buffered records re-routed",
                     len(new_map.open_shards), moved)
            self._cond.notify_all()

    # -- sending -------------------------------------------------------------------------------
    def _send(self, batch: list[Entry]) -> None:
        resolutions: list[_Resolution] = []
        try:
            try:
                out = self._client.put_records(StreamName=self.stream_name, Records=[e.to_api() for e in batch])
                error: StreamkitError | None = None
            except (ClientError, BotoCoreError) as exc:
                out, error = None, kinesis.translate_error(exc, stream_name=self.stream_name)
            with self._cond:
                self._calls_in_flight -= 1
                self._metrics.put_calls += 1
                now = self._clock()
                if out is None:
                    assert error is not None
                    self._metrics.put_call_errors += 1
                    code = error.code if isinstance(error, KinesisError) else type(error).__name__
                    for e in batch:
                        resolutions += self._after_failure(e, now, str(error), code, error.retryable)
                else:
                    for e, r in zip(batch, out["Records"], strict=True):
                        if "ErrorCode" in r:
                            code = r["ErrorCode"]
                            if code == "ProvisionedThroughputExceededException":
                                self._metrics.throttles += 1
                            resolutions += self._after_failure(e, now, f"{code}: {r.get('ErrorMessage', '')}", code,
                                                               self._retry.retryable(code))
                        else:
                            resolutions += self._succeed(e, r, now)
                self._cond.notify_all()
        except BaseException as exc:  # pragma: no cover - never leave a batch unaccounted for
            log.exception("unexpected error sending a batch")
            with self._cond:
                for e in batch:
                    resolutions += self._fail(e, StreamkitError(f"unexpected error: {exc!r}"), "Unexpected")
                self._cond.notify_all()
        self._resolve(resolutions)

    def _succeed(self, e: Entry, r: dict[str, Any], now: float) -> list[_Resolution]:
        shard_id = r["ShardId"]
        if shard_id != e.shard_id and not self._reshard_pending:
            log.info("record predicted for %s landed in %s: refreshing the shard map", e.shard_id, shard_id)
            self._reshard_pending = True
        self._acc.finished(e)
        m = self._metrics
        m.kinesis_records_written += 1
        m.aggregates_written += e.aggregated
        m.user_records_written += len(e.records)
        m.bytes_written += e.size
        seq = r["SequenceNumber"]
        out: list[_Resolution] = []
        for i, p in enumerate(e.records):
            m.latencies.append(now - p.put_mono)
            out.append((p.future, PutResult(shard_id=shard_id, sequence_number=seq,
                                            sub_sequence_number=i if e.aggregated else None, attempts=p.attempts)))
        return out

    def _after_failure(self, e: Entry, now: float, error: str, code: str, retryable: bool) -> list[_Resolution]:
        if retryable:
            delay = self._retry.backoff(e.attempts)
            if self._retry.within_ttl(now, delay, e.oldest, self.config.ttl):
                self._metrics.retries += 1
                self._acc.retry_later(e, now + delay, error, code)
                return []
            self._acc.finished(e)
            return self._fail(e, RecordExpiredError(
                f"record not written within record_ttl={self.config.ttl} s after {e.attempts} attempts; "
                f"last error: {error}"), code)
        self._acc.finished(e)
        return self._fail(e, KinesisError(f"record rejected by Kinesis: {error}", code=code, retryable=False), code)

    def _fail(self, e: Entry, error: StreamkitError, code: str) -> list[_Resolution]:
        self._metrics.user_records_failed += len(e.records)
        cb = self.config.on_failure
        out: list[_Resolution] = []
        for p in e.records:
            if cb is not None:
                try:
                    cb(FailedRecord(data=p.data, partition_key=p.partition_key, explicit_hash_key=p.explicit_hash_key,
                                    error=str(error), error_code=code, attempts=p.attempts, put_time=p.put_wall))
                except Exception:  # noqa: BLE001 - a broken callback must not lose the other records
                    log.exception("on_failure callback raised for a record with key %r", p.partition_key)
            out.append((p.future, error))
        return out

    @staticmethod
    def _resolve(resolutions: list[_Resolution]) -> None:
        # Outside the lock: user callbacks on the futures may call put().
        for fut, outcome in resolutions:
            if fut.done():
                continue
            if isinstance(outcome, BaseException):
                fut.set_exception(outcome)
            else:
                fut.set_result(outcome)
