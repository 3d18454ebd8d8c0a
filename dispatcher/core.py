"""The Dispatcher: spreads one shard's records over many workers, with an explicit ordering choice.

Modes:

* ``unordered``: records are spread over every lane the target can run; all of them run at once.
  Maximum throughput; **no ordering at all**, not even per partition key.
* ``per-key``: each partition key always maps to the same lane (MD5 of the key, modulo `lanes`), and a
  lane delivers its records in stream order, a run of distinct keys per call (a key's next record
  waits for the run before it, retries included). **Records of one key are handled in order**;
  different keys run in parallel, at most `lanes` at a time.

Failures: a lane's failed records are retried (exponential backoff, full jitter) up to `max_attempts`;
what still fails goes to the dead-letter destination with its payload, or, with none, is reported so
the caller returns ``batchItemFailures`` at the lowest failed sequence number. Records that went to
other lanes are never failed for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from dispatcher.targets import InvalidBody, Target
from streamkit.checkpoints.model import Checkpoint
from streamkit.destinations import DeadLetter, Destination, as_destination
from streamkit.errors import ConfigurationError
from streamkit.hashing import lane_of
from streamkit.records import StreamRecord
from streamkit.retry import Backoff
from streamkit.transport import stream_name_of

__all__ = ["DispatchResult", "Dispatcher", "Mode"]

log = logging.getLogger("streamkit.dispatcher")
Mode = Literal["unordered", "per-key"]


@dataclass
class DispatchResult:
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    #: Records whose body did not validate into the target's model (never retried; dead-lettered or failed).
    invalid: int = 0
    failed: list[StreamRecord] = field(default_factory=list)  # not delivered and not dead-lettered

    def batch_item_failures(self) -> list[dict[str, str]]:
        """Lambda's partial-batch response: the lowest failed position (Lambda retries from it)."""
        if not self.failed:
            return []
        first = min(self.failed, key=lambda r: Checkpoint(r.sequence_number, r.sub_sequence_number).position())
        return [{"itemIdentifier": first.sequence_number}]


class Dispatcher:
    def __init__(self, target: Target, *, mode: Mode = "unordered", lanes: int | None = None, max_attempts: int = 3,
                 backoff_base: float = 0.05, backoff_max: float = 2.0, dead_letter: Any = None,
                 sleep: Callable[[float], None] = time.sleep, metrics: Any = None) -> None:
        """`metrics`: a `streamkit.metrics.Metrics` or a spec: RecordsDelivered and DeliveryFailures per
        target (dimension Target), RecordsDeadLettered."""
        if mode not in ("unordered", "per-key"):
            raise ConfigurationError(f"mode must be 'unordered' or 'per-key', got {mode!r}")
        if mode == "per-key" and not getattr(target, "preserves_order", False):
            raise ConfigurationError(
                f"mode 'per-key' needs a target that keeps order, and {type(target).__name__} does not: use "
                "LambdaTarget(..., synchronous=True), an SQS FIFO queue or a LocalTarget (or mode 'unordered')")
        self.target = target
        self.mode = mode
        self.lanes = lanes or target.capacity
        if self.lanes < 1:
            raise ConfigurationError(f"lanes must be at least 1, got {self.lanes}")
        if max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = max_attempts
        self._sleep = sleep  # between retries (injected for tests)
        self._backoff = Backoff(base=backoff_base, maximum=backoff_max)
        self.dead_letter: Destination | None = None if dead_letter is None else as_destination(dead_letter)
        self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="dispatch-lane")
        from streamkit.metrics import as_metrics

        self._recorder, self._own_recorder = as_metrics(metrics)
        self._target_name = type(target).__name__
        from streamkit.bodies import body_name, is_model

        body = getattr(target, "body", None)
        if body is not None and is_model(body) and self.dead_letter is None:
            log.warning("body=%s without a dead-letter destination: a record that does not validate is reported "
                        "as failed, and Lambda retries its batch until the record expires, blocking the shard",
                        body_name(body))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.target.close()
        if self._own_recorder:
            self._recorder.close()
        else:
            self._recorder.flush()

    def split(self, records: Sequence[StreamRecord]) -> list[list[StreamRecord]]:
        """Records per task. per-key: one task per lane, by key hash, in stream order. unordered: small
        consecutive chunks, about four per lane, so lanes stay evenly busy and remote targets can batch."""
        if self.mode == "per-key":
            n = self.lanes
            lanes: list[list[StreamRecord]] = [[] for _ in range(n)]
            for r in records:
                key = r.partition_key  # _order_key inlined: a call per record was a tenth of the row's time
                lanes[lane_of(key if key is not None else _order_key(r), n)].append(r)
            return [lane for lane in lanes if lane]
        size = max(1, -(-len(records) // (self.lanes * 4)))
        return [list(records[i:i + size]) for i in range(0, len(records), size)]

    def _run_lane(self, lane: int, records: list[StreamRecord]) -> tuple[int, int, list[tuple[StreamRecord, str]]]:
        if self.mode == "per-key":
            return self._run_ordered_lane(lane, records)
        return self._deliver(lane, records)

    def _deliver(self, lane: int, records: list[StreamRecord]) -> tuple[int, int, list[tuple[StreamRecord, str]]]:
        """Deliver `records` in one call, then only the failed ones again, up to `max_attempts`; an
        `InvalidBody` failure is final at once (retrying cannot fix it).

        Returns (delivered, retried, failures after the last attempt).
        """
        pending = records
        retried = 0
        failures: list[tuple[StreamRecord, str]] = []
        invalid: list[tuple[StreamRecord, str]] = []
        for attempt in range(1, self.max_attempts + 1):
            failures = self.target.deliver(lane, pending) if pending else []
            if any(isinstance(e, InvalidBody) for _r, e in failures):
                invalid += [f for f in failures if isinstance(f[1], InvalidBody)]
                failures = [f for f in failures if not isinstance(f[1], InvalidBody)]
            if not failures or attempt == self.max_attempts:
                break
            failed_ids = {id(r) for r, _e in failures}
            pending = [r for r in pending if id(r) in failed_ids]
            retried += len(pending)
            self._sleep(self._backoff.delay(attempt))
        failures = invalid + failures
        return len(records) - len(failures), retried, failures

    def _run_ordered_lane(self, lane: int, records: list[StreamRecord]) -> tuple[int, int, list[tuple[StreamRecord, str]]]:
        """A lane's records go out in runs in which no key repeats, one call per run (a remote target
        batches it): a run's failed records are retried before the next run, which may hold their keys'
        later records, goes out. Once a key has given up (no dead-letter destination), its later
        records are held back, not delivered."""
        delivered = retried = 0
        failures: list[tuple[StreamRecord, str]] = []
        blocked: set[str] = set()
        for run in _distinct_key_runs(records):
            if not blocked:  # the common case: no key has given up, no record to look at
                sendable = run
            else:
                sendable = []
                for r in run:
                    if _order_key(r) in blocked:
                        failures.append((r, "held back: an earlier record of its key could not be delivered"))
                    else:
                        sendable.append(r)
            ok, again, failed = self._deliver(lane, sendable)
            delivered += ok
            retried += again
            failures += failed
            if self.dead_letter is None:
                blocked.update(_order_key(r) for r, _e in failed)
        return delivered, retried, failures

    def dispatch(self, records: Sequence[StreamRecord]) -> DispatchResult:
        """Deliver `records`; blocks until every lane is done (delivered, dead-lettered or failed)."""
        result = DispatchResult()
        lanes = self.split(records)
        futures = [self._pool.submit(self._run_lane, i, lane) for i, lane in enumerate(lanes)]
        undelivered: list[tuple[StreamRecord, str]] = []
        for f in futures:
            delivered, retried, failures = f.result()
            result.delivered += delivered
            result.retried += retried
            undelivered += failures
        result.invalid = sum(isinstance(e, InvalidBody) for _r, e in undelivered)
        if undelivered:
            if self.dead_letter is not None:
                self.dead_letter.send([_letter(r, e, self.max_attempts) for r, e in undelivered])
                result.dead_lettered = len(undelivered)
                log.error("dispatcher: %d record(s) dead-lettered to %r", len(undelivered), self.dead_letter)
            else:
                result.failed = [r for r, _e in undelivered]
                first = min(result.failed, key=lambda r: Checkpoint(r.sequence_number, r.sub_sequence_number).position())
                log.warning("dispatcher: %d record(s) not delivered after %d attempt(s) each (first %s/%s: %s); "
                            "reported for Lambda to retry from there", len(undelivered), self.max_attempts,
                            first.sequence_number, first.sub_sequence_number, undelivered[0][1])
        if self._recorder.enabled and records:
            arn = records[0].event_source_arn or ""
            m = self._recorder.scope(stream_name_of(arn) if arn else "", "Dispatch")
            m.count("RecordsDelivered", result.delivered, Target=self._target_name)
            m.count("DeliveryFailures", len(undelivered), Target=self._target_name)
            m.count("RecordsDeadLettered", result.dead_lettered)
            m.count("RecordsInvalid", result.invalid)
        return result


def _letter(record: StreamRecord, error: str, max_attempts: int) -> DeadLetter:
    if isinstance(error, InvalidBody):  # sent on at its first attempt, with its validation errors
        return DeadLetter(record=record, error=str(error), attempts=1, stream_arn=record.event_source_arn,
                          validation_errors=error.errors)
    return DeadLetter(record=record, error=error, attempts=max_attempts, stream_arn=record.event_source_arn)


def _order_key(r: StreamRecord) -> str:
    """What per-key order is kept by: the partition key; a keyless record (AUTO streams) has no order to
    keep, so it is its own key (spread over the lanes by its position, never held back for another)."""
    if r.partition_key is not None:
        return r.partition_key
    return f"\x00{r.sequence_number}/{r.sub_sequence_number}"


def _distinct_key_runs(records: Sequence[StreamRecord]) -> Iterator[list[StreamRecord]]:
    """Consecutive runs of `records`, in order, each holding at most one record per partition key."""
    run: list[StreamRecord] = []
    keys: set[str] = set()
    for r in records:
        key = r.partition_key
        if key is None:
            key = _order_key(r)
        if key in keys:
            yield run
            run, keys = [], set()
        run.append(r)
        keys.add(key)
    if run:
        yield run
