"""What Lambda's Kinesis event source mapping does after an invocation: the decisions, no I/O.

Documented semantics (see reference/limits.md): a function error retries the batch (split in two
first when BisectBatchOnFunctionError is on) until MaximumRetryAttempts or MaximumRecordAgeInSeconds
runs out, then the records are discarded, with a metadata-only record to the OnFailure destination.
With ReportBatchItemFailures the function names failed records; Lambda checkpoints before the lowest
one and retries from there; an identifier that is not in the batch fails the whole batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from streamkit.limits import EVENT_RECORD_OVERHEAD, LAMBDA_SYNC_PAYLOAD

__all__ = ["Outcome", "PendingRecord", "ShardProgress", "decide", "expired", "payload_size"]

#: The synchronous invoke payload cap a batch must fit in (streamkit/limits.py).
EVENT_PAYLOAD_LIMIT = LAMBDA_SYNC_PAYLOAD


@dataclass(eq=False)
class PendingRecord:
    """A Kinesis record waiting to be delivered, and how often it has been."""

    raw: dict[str, Any]  # GetRecords shape: SequenceNumber, Data (bytes), PartitionKey, ApproximateArrivalTimestamp
    attempts: int = 0
    finished: bool = False  # succeeded or discarded: the mapping's position may pass it

    @property
    def sequence_number(self) -> str:
        return str(self.raw["SequenceNumber"])

    @property
    def arrival(self) -> float:
        return float(self.raw["ApproximateArrivalTimestamp"])

    @property
    def event_size(self) -> int:
        return (len(self.raw["Data"]) + 2) // 3 * 4 + len(self.raw.get("PartitionKey") or "") + EVENT_RECORD_OVERHEAD


class ShardProgress:
    """A shard's records in stream order, and how far from the start all of them are finished.

    Lanes finish records out of order (each lane holds some keys); the mapping's position is the last
    record before the first unfinished one, as AWS's is. Not thread-safe: the caller holds a lock.
    """

    def __init__(self) -> None:
        self._order: deque[PendingRecord] = deque()

    def read(self, records: Sequence[PendingRecord]) -> None:
        """Records fetched, in stream order."""
        self._order.extend(records)

    def finish(self, records: Sequence[PendingRecord]) -> str | None:
        """Mark `records` finished; the new position (a sequence number) if it moved, else None."""
        for r in records:
            r.finished = True
        last = None
        order = self._order
        while order and order[0].finished:
            last = order.popleft()
        return None if last is None else last.sequence_number


def payload_size(batch: Sequence[PendingRecord]) -> int:
    return sum(r.event_size for r in batch)


@dataclass
class Outcome:
    """What to do with a batch once its invocation is over."""

    done: list[PendingRecord] = field(default_factory=list)  # checkpoint past these
    retry: list[list[PendingRecord]] = field(default_factory=list)  # batches to invoke again, in order
    discard: list[PendingRecord] = field(default_factory=list)  # give up on these (OnFailure)
    condition: Literal["", "RetryAttemptsExhausted", "RecordAgeExceeded"] = ""
    function_error: str = ""
    #: The invocation raised (AWS's OnFailure ``functionError: "Unhandled"``); False for a failure the
    #: function reported in ``batchItemFailures`` (``functionError: null``, as AWS was recorded writing).
    unhandled: bool = False


def _failed_from(batch: Sequence[PendingRecord], response: Any) -> int | None:
    """Index of the lowest reported failure, -1 for "the whole batch", None for success."""
    if not isinstance(response, Mapping) or "batchItemFailures" not in response:
        return None
    failures = response.get("batchItemFailures") or []
    if not failures:
        return None
    index = {r.sequence_number: i for i, r in enumerate(batch)}
    lowest: int | None = None
    for f in failures:
        ident = f.get("itemIdentifier") if isinstance(f, Mapping) else None
        if not isinstance(ident, str) or ident not in index:
            return -1  # unknown or malformed identifier: the whole batch failed
        lowest = index[ident] if lowest is None else min(lowest, index[ident])
    return lowest


def decide(batch: list[PendingRecord], *, error: BaseException | None, response: Any, report_batch_item_failures: bool,
           bisect_on_error: bool, max_retry_attempts: int, max_record_age: float, now: float) -> Outcome:
    """The event source mapping's next step for `batch` (its records' attempts are counted here)."""
    out = Outcome()
    if error is None and report_batch_item_failures:
        first_failed = _failed_from(batch, response)
        if first_failed is None:
            out.done = list(batch)
            return out
        if first_failed == -1:
            failed = list(batch)
            out.function_error = "batchItemFailures named a record that is not in the batch"
        else:
            out.done = batch[:first_failed]
            failed = batch[first_failed:]
            out.function_error = "batchItemFailures"
    elif error is None:
        out.done = list(batch)
        return out
    else:
        failed = list(batch)
        out.function_error = f"{type(error).__name__}: {error}"
        out.unhandled = True
    if bisect_on_error and error is not None and len(failed) > 1:
        # Lambda bisects a failing batch regardless of MaximumRetryAttempts: splits are not retries.
        half = len(failed) // 2
        out.retry = [failed[:half], failed[half:]]
        return out
    if out.done:
        # Lambda checkpointed past the records before the first reported failure and retries from it:
        # a new batch, whose retries count afresh (recorded against AWS: with MaximumRetryAttempts 3 the
        # reported record was delivered 5 times, and its OnFailure record says approximateInvokeCount 4).
        for r in failed:
            r.attempts = 0
        out.retry = [failed]
        return out
    for r in failed:
        r.attempts += 1
    # Give up on records whose retries or age ran out (the first of the failed records decides, as
    # Lambda retries from the batch's start: a later record cannot be past its limits before it).
    head = failed[0]
    retries_used = head.attempts - 1
    if max_record_age >= 0 and now - head.arrival > max_record_age:
        out.discard, out.condition = failed, "RecordAgeExceeded"
        return out
    if max_retry_attempts >= 0 and retries_used >= max_retry_attempts:
        out.discard, out.condition = failed, "RetryAttemptsExhausted"
        return out
    out.retry = [failed]
    return out


def expired(batch: Sequence[PendingRecord], *, max_record_age: float, now: float) -> list[PendingRecord]:
    """Records past MaximumRecordAgeInSeconds: AWS never invokes the function with them (they go to the
    OnFailure destination as RecordAgeExceeded, also when the function would succeed)."""
    if max_record_age < 0:
        return []
    return [r for r in batch if now - r.arrival > max_record_age]

