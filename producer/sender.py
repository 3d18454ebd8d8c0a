"""The sender: the I/O half of the producer, beside the accumulator (aiokafka's split).

`Producer` is the API: it validates records and adds them to the `Accumulator` (the batching
decisions, no I/O) under one lock. The `Sender` owns everything that talks to Kinesis: one worker
thread that expires, seals and picks batches from the accumulator (`_plan`), a pool that sends
PutRecords calls (`_send`), the outcome of each entry (written, retried, failed for good: `_succeed`,
`_after_failure`, `_fail`), and resharding (`_refresh_shard_map`). What the two share is named by
`SenderHost`: the lock, the accumulator, the records held during a reshard, and the closing flags.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from producer.accumulator import Accumulator, Entry, Item, Pending, Rec
from producer.config import ProducerConfig
from producer.futures import resolve_exception, resolve_results
from producer.metrics import ProducerMetrics
from producer.results import FailedRecord, PutResult
from streamkit.clock import Clock
from streamkit.destinations import parse_destination
from streamkit.errors import KinesisError, RecordExpiredError, StreamkitError, ValidationError
from streamkit.hashing import ShardMap, hash_key
from streamkit.retry import RetryPolicy

if TYPE_CHECKING:
    from streamkit.transport import KinesisTransport, PutEntryResult

__all__ = ["Sender", "SenderHost"]

log = logging.getLogger("streamkit.producer")


class SenderHost(Protocol):
    """What the sender reads and changes on the producer (the API side), all under the shared lock."""

    config: ProducerConfig  # the configuration in force (the stream's limits filled in)
    _user_config: ProducerConfig  # as the user gave it (read again when the stream's settings change)
    _held: list[Item]  # records put while the shard map is refreshed
    _flushing: int  # callers in flush()
    _closing: bool  # no more records accepted
    _closed: bool  # close() is past its flush: the worker ends once nothing is in flight
    _detour: bool  # put takes its slow path (closing, or a reshard pending)
    _max_record_size: int  # the record limit put checks


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
                    failed.append(FailedRecord(data=item.data, partition_key=item.partition_key,
                                               explicit_hash_key=item.explicit_hash_key, error=str(error),
                                               error_code=code, attempts=item.attempts + attempts,
                                               put_time=item.put_mono + self.wall_offset))
                try:
                    deliver(failed)
                except Exception:
                    log.exception("on_failure raised for %d failed record(s); they are lost to it", len(failed))
            else:
                untracked = sum(1 for item in records if type(item) is Rec)
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


class Sender:
    """One worker thread and a pool of PutRecords calls, working from the producer's accumulator."""

    def __init__(self, host: SenderHost, *, stream_name: str, transport: KinesisTransport, acc: Accumulator,
                 cond: threading.Condition, auto: bool, clock: Callable[[], float], time: Clock,
                 wall_offset: float, metrics: ProducerMetrics, signals: Any, rng: random.Random | None) -> None:
        self.host = host
        self.stream_name = stream_name
        self._transport = transport
        self._acc = acc
        self._cond = cond
        self._auto = auto
        self._clock = clock
        self._time = time
        self._wall_offset = wall_offset
        self._metrics = metrics
        self._m = signals
        config = host.config
        self._on_failure = _failure_handler(config.on_failure)
        self._retry = RetryPolicy(base=float(config.backoff_base), maximum=float(config.backoff_max))  # type: ignore[arg-type]
        self._backoff = self._retry.backoff(rng)
        self._calls_in_flight = 0
        # Threads between deciding outcomes (under the lock) and applying them (after it: futures,
        # on_failure): a flush is not done until they are, nor for a thread that is one of them.
        self._applying: list[int] = []
        self._reshard_pending = False
        # Aggregates that landed in another shard than predicted (a split the map did not know): resolved when
        # the map is refreshed, their user records outside the shard they landed in put again (`_sort_misplaced`).
        self._misplaced: list[tuple[Entry, PutEntryResult, float]] = []
        self._pool = ThreadPoolExecutor(config.max_connections, thread_name_prefix="streamkit-put")
        self._worker = threading.Thread(target=self._run, name="streamkit-producer", daemon=True)

    def start(self) -> None:
        self._worker.start()

    @property
    def auto(self) -> bool:
        """The stream places records itself (RecordDistributionStrategy AUTO), as last read."""
        return self._auto

    @property
    def reshard_pending(self) -> bool:
        return self._reshard_pending

    @property
    def alive(self) -> bool:
        return self._worker.is_alive()

    def drained(self) -> bool:
        """Under the lock: nothing buffered, held, in flight, or resolved but not yet handed to its future or
        on_failure (by a thread other than this one: a callback that flushes must not wait for itself)."""
        if self.host._held or not self._acc.idle or self._calls_in_flight or self._misplaced:
            return False
        me = threading.get_ident()
        return all(t == me for t in self._applying)

    def _will_apply(self, outcomes: _Outcomes) -> bool:
        """Under the lock: this thread will apply `outcomes` (if there are any) after releasing it."""
        if outcomes:
            self._applying.append(threading.get_ident())
            return True
        return False

    def _apply(self, outcomes: _Outcomes) -> None:
        """Resolve futures and call on_failure (outside the lock), then say so to flush()."""
        if not outcomes:
            return
        try:
            outcomes.apply()
        finally:
            with self._cond:
                self._applying.remove(threading.get_ident())
                self._cond.notify_all()

    def stop(self, timeout: float | None) -> None:
        """After the host set `_closed`: wait for the worker and every call in flight to end."""
        self._worker.join(timeout=None if timeout is None else 5)
        self._pool.shutdown(wait=True)

    def fail_leftovers(self, error: StreamkitError, code: str, *, why: str = "") -> None:
        """Fail every record still buffered: futures fail, and each record goes to on_failure.

        Without an on_failure, `why` (when given) makes one ERROR line naming how many were lost.
        """
        h = self.host
        with self._cond:
            leftovers = h._held + self._acc.drain() + [item for e, _r, _t in self._misplaced for item in e.records]
            h._held, self._misplaced = [], []
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

    # -- worker --------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                batches, outcomes, refresh = self._plan()
                self._apply(outcomes)
                if refresh:
                    self._refresh_shard_map()
                    continue
                if batches is None:
                    return
                for batch in batches:
                    self._pool.submit(self._send, batch)
        except BaseException:  # pragma: no cover - a bug here must not strand futures silently
            log.exception("producer worker crashed; failing outstanding records")
            self.fail_leftovers(StreamkitError("the producer's worker thread crashed; see the log"), "Crashed")
            raise

    def _plan(self) -> tuple[Any, _Outcomes, bool]:
        """Under the lock: expire, seal, and pick batches; wait when there is nothing to do."""
        h = self.host
        with self._cond:
            while True:
                now = self._clock()
                outcomes = _Outcomes(self._on_failure, self._wall_offset)
                if self._reshard_pending and self._calls_in_flight == 0:
                    return [], outcomes, True
                for e in self._acc.expire(now, h.config.ttl):
                    self._fail(outcomes, e, RecordExpiredError(
                        f"record not written within record_ttl={h.config.ttl} s after {e.attempts} attempts"
                        + (f"; last error: {e.last_error}" if e.last_error else "")), e.last_code or "Expired")
                flushing = bool(h._flushing) or h._closing
                if flushing:
                    self._acc.seal_all()
                else:
                    self._acc.seal_due(now)
                batches: list[list[Entry]] = []
                while self._calls_in_flight < h.config.max_connections and not self._reshard_pending:
                    batch = self._acc.take_batch(now, flush=flushing,
                                                 free_connections=h.config.max_connections - self._calls_in_flight)
                    if not batch:
                        break
                    batches.append(batch)
                    self._calls_in_flight += 1
                if self._will_apply(outcomes):
                    self._cond.notify_all()
                if batches or outcomes:
                    return batches, outcomes, False
                if h._closed and (self.drained() or self._closed_abandon()):
                    return None, outcomes, False
                wake = self._acc.next_wakeup(now)
                timeout = None if wake is None else max(0.0005, wake - now)
                if h._closed:
                    timeout = 0.05 if timeout is None else min(timeout, 0.05)
                self._cond.wait(timeout)

    def _closed_abandon(self) -> bool:
        h = self.host
        # close(timeout) ran out: stop once nothing is in flight; close() fails what is left.
        return self._calls_in_flight == 0 and h._flushing == 0

    def _refresh_shard_map(self) -> None:
        """Read the stream's shards and settings again (a reshard, or a switch of record distribution)."""
        h = self.host
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
                h.config = h._user_config.for_stream(summary.max_record_bytes, auto=self._auto)
                h._max_record_size = h.config.record_limit
                self._acc.config = h.config
                self._acc.placed_by_service = self._auto
                self._acc.warm_mibps = summary.warm_throughput_mibps
                self.note_distribution(summary.record_distribution)
            again = self._sort_misplaced(outcomes, new_map)
            moved, unroutable = self._acc.reroute(new_map, everything=switched, first=again)
            held, h._held = h._held, []
            self._acc.buffered_bytes -= sum(item.size for item in held)
            for item in held:
                if item.partition_key is None and not self._auto:
                    unroutable.append(item)
                else:
                    self._acc.add(item)
            for item in unroutable:  # keyless records, and the stream places records by key again
                self._fail(outcomes, self._acc.lone_entry(item), ValidationError(
                    f"stream {self.stream_name!r} no longer places records itself (RecordDistributionStrategy is "
                    "USER_PARTITION_KEY again): a record without a partition key cannot be written"),
                    "ValidationException")
            self._reshard_pending = False
            h._detour = h._closing
            self._metrics.reshards_detected += 1
            log.info("shard map refreshed: %d open shards, %d buffered records re-routed",
                     len(new_map.open_shards), moved)
            self._will_apply(outcomes)
            self._cond.notify_all()
        self._apply(outcomes)

    def note_distribution(self, strategy: str) -> None:
        h = self.host
        self._metrics.record_distribution = strategy
        self._metrics.aggregating = h.config.aggregation
        if self._auto:
            log.warning("stream %r places records itself (RecordDistributionStrategy AUTO): partition keys are "
                        "ignored, records are not aggregated (readers such as the KCL drop aggregates there) and "
                        "their order is not kept", self.stream_name)

    # -- sending -------------------------------------------------------------------------------
    def _send(self, batch: list[Entry]) -> None:
        h = self.host
        outcomes = _Outcomes(self._on_failure, self._wall_offset)
        counted = will_apply = False
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
                        self._reshard_pending = h._detour = True
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
                will_apply = self._will_apply(outcomes)
                self._cond.notify_all()
        except BaseException as exc:  # pragma: no cover - never leave a batch unaccounted for
            log.exception("unexpected error sending a batch")
            with self._cond:
                if not counted:
                    self._calls_in_flight -= 1  # or no batch would ever be sent again
                for e in batch:
                    self._fail(outcomes, e, StreamkitError(f"unexpected error: {exc!r}"), "Unexpected")
                if not will_apply:
                    self._will_apply(outcomes)
                self._cond.notify_all()
        self._apply(outcomes)

    def _succeed(self, outcomes: _Outcomes, e: Entry, r: PutEntryResult, now: float) -> None:
        h = self.host
        shard_id = r["ShardId"]
        misplaced = shard_id != e.shard_id and not self._auto
        if misplaced and not self._reshard_pending:
            log.info("record predicted for %s landed in %s: refreshing the shard map", e.shard_id, shard_id)
            self._reshard_pending = h._detour = True
        self._acc.observe(e, now, accepted=True, throttled=False)
        self._acc.finished(e)
        if misplaced and e.aggregated:
            # Its user records were routed by a stale map: those whose hash the landed shard does not cover
            # (the sibling's, after a split) are in the wrong shard. Known once the map is read again.
            self._misplaced.append((e, r, now))
            return
        self._written(outcomes, e, r, now, e.records)

    def _sort_misplaced(self, outcomes: _Outcomes, new_map: ShardMap) -> list[Item]:
        """Under the lock, with the new map: the misplaced aggregates' records that landed in a shard covering
        their hash are written; the others are returned to be put again ahead of everything buffered, so each
        key keeps its order (readers drop a sub-record outside its shard's range, as the KCL does)."""
        again: list[Item] = []
        for e, r, now in self._misplaced:
            landed = new_map.shards.get(r["ShardId"])
            kept: list[Item] = []
            for item in e.records:
                h = int(item.explicit_hash_key) if item.explicit_hash_key is not None else \
                    hash_key(item.partition_key)  # type: ignore[arg-type]  # aggregated records have a key
                if landed is None or landed.contains(h):
                    kept.append(item)
                else:
                    item.attempts += e.attempts
                    again.append(item)
            self._written(outcomes, e, r, now, kept)  # the Kinesis record was written, whatever it carried
        if again:
            log.info("%d user record(s) landed in a shard that does not hold their key (a split the shard map "
                     "did not know): put again", len(again))
        self._misplaced = []
        return again

    def _written(self, outcomes: _Outcomes, e: Entry, r: PutEntryResult, now: float, recs: list[Item]) -> None:
        """`recs` (all of `e`'s user records, or those that landed where their key belongs) are written."""
        shard_id = r["ShardId"]
        m = self._metrics
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
        m.latencies.extend(now - recs[i].put_mono for i in range(0, len(recs), step))
        seq = r["SequenceNumber"]
        aggregated = e.aggregated
        attempts = e.attempts
        index = None if recs is e.records else {id(item): i for i, item in enumerate(e.records)}

        def result(p: Pending, i: int) -> PutResult:
            sub = (i if index is None else index[id(p)]) if aggregated else None
            return PutResult(shard_id=shard_id, sequence_number=seq, sub_sequence_number=sub,
                             attempts=p.attempts + attempts)

        outcomes.ok.append((recs, result))

    def _after_failure(self, outcomes: _Outcomes, e: Entry, now: float, error: str, code: str, retryable: bool) -> None:
        h = self.host
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
                    delay = min(max(0.0, fits - now), float(h.config.backoff_max))  # type: ignore[arg-type]
            # Past its TTL a throttled record still goes again while its shard accepts records: it was
            # admitted on a rate the shard did not keep, and is written late rather than given up.
            if self._retry.within_ttl(now, delay, e.oldest, h.config.ttl) or \
                    (throttled and self._acc.making_progress(e, now)):
                self._metrics.retries += 1
                self._acc.retry_later(e, now + delay, error, code)
                return
            self._acc.finished(e)
            self._fail(outcomes, e, RecordExpiredError(
                f"record not written within record_ttl={h.config.ttl} s after {e.attempts} attempts; "
                f"last error: {error}"), code)
            return
        self._acc.finished(e)
        self._fail(outcomes, e, KinesisError(f"record rejected by Kinesis: {error}", code=code, retryable=False), code)

    def _fail(self, outcomes: _Outcomes, e: Entry, error: StreamkitError, code: str) -> None:
        self._metrics.user_records_failed += len(e.records)
        self._m.count("UserRecordsFailed", len(e.records))
        outcomes.failed.append((e.records, error, code, e.attempts))
