"""The shard reader: one shard, in order, from a position — for the consumer and the Lambda emulator alike.

`ShardReader.batches()` yields one `Batch` per GetRecords call and does everything between them:

- position -> iterator (`start_of`), retried by the retry engine; a sequence number Kinesis refuses for
  this shard (a checkpoint from a deleted and re-created stream of the same name) is a `ShardFailedError`;
- an expired iterator is replaced by one after the last record read (or the start, if none was);
- a retryable failure (throttling, a server that does not answer) waits with backoff and tries again,
  telling `on_error` each time so the caller can say so; others are raised;
- pacing: at least `min_poll_interval` between calls (5 calls/s per shard), `idle_poll_interval` after a
  read that found the shard caught up;
- bounded memory: what a call returns is held until the caller asks for the next batch, so the reader
  sizes each call's ``Limit`` to keep it near `max_fetch_bytes` (`FetchLimit`): it starts small, grows
  while responses stay under the cap, and is cut in proportion when one comes back larger (a server
  that ignores AWS's 10 MiB per call, or a stream of 10 MiB records);
- `stop` (an Event) ends the generator at the next pause.

A `Batch` says whether it was a *confirmed-empty* read (`caught_up`: no records and nothing behind):
"idle" counts only those, never failures. `unanswered_for()` is how long calls have been getting no
answer at all (a refused connection, a reset, a timeout; a throttling error is an answer), for callers
that give up after a time without one (`NoProgressError`); it counts only once `UNANSWERED_CALLS` calls
in a row went unanswered, so one dropped connection among thousands of calls never ends a run.

Enhanced fan-out has the same shape in `streamkit.consumer.efo.EfoReader`. Parents-before-children
discovery is `startable` below, shared by the consumer's lease creation and the emulator.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from streamkit.checkpoints.model import Checkpoint
from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.errors import (
    ExpiredIteratorError,
    KinesisError,
    ServerUnreachableError,
    ShardFailedError,
    StreamkitError,
    ThrottledError,
)
from streamkit.hashing import ShardInfo
from streamkit.limits import GET_RECORDS_MAX_RECORDS, MIB, RECORD_MAX_BYTES
from streamkit.retry import Interrupted, RetryPolicy, call_with_retry
from streamkit.transport import Fetched, IteratorStart, KinesisTransport

__all__ = ["MAX_FETCH_BYTES", "Batch", "FetchLimit", "ReaderBase", "ReaderSettings", "ShardReader", "fetched_bytes",
           "foreign_checkpoint_error", "start_of", "startable"]

log = logging.getLogger("streamkit.reader")

#: Back off GetRecords/GetShardIterator failures from 0.1 s up to 5 s, for as long as it takes.
FETCH_RETRY = RetryPolicy(base=0.1, maximum=5.0)
#: Calls in a row without an answer before the endpoint counts as unreachable.
UNANSWERED_CALLS = 5


#: Bytes (data + partition keys) one shard's reader holds fetched but not yet processed, by default:
#: two seconds of a shard's read limit (2 MiB/s). A reader polls up to 5 times a second, so calls of
#: this size can read 10 MiB/s, five times what a shard serves: the cap never slows a reader on AWS,
#: and it keeps a 4-shard consumer's fetched-but-unprocessed records to ~120 MiB of RSS
#: (bench/consumer_memory.py), against a server that returns a whole stream per call if asked.
MAX_FETCH_BYTES = 4 * MIB


@dataclass(frozen=True, kw_only=True)
class ReaderSettings:
    max_records: int = GET_RECORDS_MAX_RECORDS
    min_poll_interval: float = 0.2
    idle_poll_interval: float = 1.0
    retry: RetryPolicy = FETCH_RETRY
    max_fetch_bytes: int = MAX_FETCH_BYTES
    #: Limit of the first call (None: what `max_fetch_bytes` holds of records of the default 1 MiB maximum).
    first_limit: int | None = None


def fetched_bytes(records: list[dict[str, Any]]) -> int:
    """What GetRecords records weigh as Kinesis counts them: data + partition key."""
    return sum(len(r["Data"]) + len(r.get("PartitionKey") or "") for r in records)


class FetchLimit:
    """The ``Limit`` of a shard's next GetRecords call, sized so that a response stays near `cap` bytes.

    The first call asks for `first` records (default: as many of the default maximum size, 1 MiB, as
    the cap holds); after a full response under half the cap the limit grows towards what the cap
    holds of records that size (at most 10x a call, up to `max_records`: records may not all be the
    size of the first ones); a response over the cap cuts it to the count that would have fitted.
    """

    def __init__(self, cap: int, max_records: int, first: int | None = None) -> None:
        self.cap = cap
        self.max_records = max_records
        self.limit = max(1, min(max_records, first if first is not None else cap // RECORD_MAX_BYTES))

    def after(self, count: int, nbytes: int) -> None:
        if count == 0:
            return
        fits = max(1, int(self.cap * count / max(1, nbytes)))
        if nbytes > self.cap:
            self.limit = min(self.limit, fits)
        elif count >= self.limit and nbytes <= self.cap // 2:
            self.limit = max(self.limit, min(self.max_records, fits, self.limit * 10))


@dataclass(slots=True)
class Batch:
    """What one read returned. ``after``: skip sub-records up to and including this (sequence, sub-sequence)
    of the first aggregate (a resume inside an aggregate)."""

    records: list[dict[str, Any]]
    millis_behind_latest: int | None
    caught_up: bool
    ended: bool
    children: list[ShardInfo] = field(default_factory=list)
    after: tuple[str, int] | None = None


def start_of(cp: Checkpoint) -> tuple[IteratorStart, tuple[str, int] | None]:
    """The iterator for a checkpoint, and the sub-records to skip when it sits inside an aggregate."""
    if cp.sequence_number in ("TRIM_HORIZON", "LATEST"):
        return IteratorStart(type=cp.sequence_number), None  # type: ignore[arg-type]
    if cp.sequence_number == "AT_TIMESTAMP":
        return IteratorStart(type="AT_TIMESTAMP", timestamp=cp.timestamp), None
    if cp.is_shard_end:
        raise ShardFailedError("the shard is already finished (SHARD_END)")
    if cp.sub_sequence_number is None:
        return IteratorStart(type="AFTER_SEQUENCE_NUMBER", sequence_number=cp.sequence_number), None
    # Inside an aggregate: read it again and skip the sub-records already processed.
    return (IteratorStart(type="AT_SEQUENCE_NUMBER", sequence_number=cp.sequence_number),
            (cp.sequence_number, cp.sub_sequence_number))


def foreign_checkpoint_error(stream: str, shard_id: str, cp: Checkpoint, err: BaseException) -> ShardFailedError:
    """Kinesis refused a sequence number of ours: it came from another stream of the same name."""
    return ShardFailedError(
        f"the checkpoint of {shard_id} ({cp.sequence_number}) does not belong to stream {stream!r}; was the stream "
        "deleted and created again under the same name? Its old checkpoints must go: use a new application_name, "
        f"or delete this application's checkpoints for the stream ({err})")


def _refused_sequence(err: BaseException, cp: Checkpoint) -> bool:
    return isinstance(err, KinesisError) and err.code == "InvalidArgumentException" and not cp.is_sentinel


def startable(shards: Iterable[ShardInfo], finished: Callable[[str], bool]) -> list[ShardInfo]:
    """Shards not finished whose parents (those still listed) are all finished: the ones to read now.

    A parent no longer listed has expired from the stream: it counts as finished.
    """
    shards = list(shards)
    listed = {s.shard_id for s in shards}
    out = []
    for s in shards:
        if finished(s.shard_id):
            continue
        if all(p not in listed or finished(p) for p in s.parents):
            out.append(s)
    return out


class ReaderBase:
    """What every reader of one shard keeps: where it started, what it read last, how its calls fail."""

    #: A caught-up poller keeps asking (GetRecords every `idle_poll_interval`); a subscription need not hear
    #: anything while nothing arrives, so `IdleConfirmation` waits for no further answer from it.
    answers_while_idle = True

    def __init__(self, transport: KinesisTransport, stream: str, shard_id: str, start: Checkpoint, *,
                 stop: threading.Event, clock: Clock = SYSTEM_CLOCK,
                 on_error: Callable[[StreamkitError, int, float], None] | None = None) -> None:
        self.transport = transport
        self.stream = stream
        self.shard_id = shard_id
        self.start = start
        self.stop = stop
        self.clock = clock
        self.on_error = on_error
        self.last_read: str | None = None  # sequence number of the last raw record returned
        self.failures = 0  # consecutive failed calls
        #: Consecutive failures other than throttling. Throttling is an answer ("not so fast"), and says
        #: nothing about what the shard holds: it neither blocks nor counts toward "caught up".
        self.troubled = 0
        self._unanswered = 0  # consecutive calls with no answer at all
        self.answers = 0  # calls that got an answer, ever
        self._unanswered_since = 0.0
        self._backoff = FETCH_RETRY.backoff()

    def _resume_point(self) -> Checkpoint:
        return self.start if self.last_read is None else Checkpoint(self.last_read)

    def _failed(self, attempt: int, err: BaseException, delay: float) -> None:
        self.failures += 1
        if not isinstance(err, ThrottledError):
            self.troubled += 1
        if isinstance(err, ServerUnreachableError):
            if self._unanswered == 0:
                self._unanswered_since = self.clock.monotonic()
            self._unanswered += 1
        else:
            self._unanswered = 0  # throttled, or a 5xx: the server is there
        if self.on_error is not None and isinstance(err, StreamkitError):
            self.on_error(err, self.failures, delay)
        log.debug("shard %s: %s (failure %d); retrying in %.2f s", self.shard_id, err, self.failures, delay)

    def _succeeded(self) -> None:
        self.failures = self.troubled = 0
        self._unanswered = 0
        self.answers += 1

    def unanswered_for(self) -> float:
        """Seconds since the first of `UNANSWERED_CALLS` or more calls in a row that got no answer; else 0."""
        if self._unanswered < UNANSWERED_CALLS:
            return 0.0
        return self.clock.monotonic() - self._unanswered_since

    def _retry_after(self, err: StreamkitError, policy: RetryPolicy = FETCH_RETRY) -> bool:
        """A failed call in a loop that cannot be wrapped in `call_with_retry` (a subscription streams):
        `err` is raised if `policy` gives up on it, else said and waited out; True if stopping."""
        delay = policy.next_delay(self._backoff, self.failures + 1, 0.0, err)
        if delay is None:
            raise err
        self._failed(self.failures + 1, err, delay)
        return self._pause(delay)

    def _pause(self, seconds: float) -> bool:
        """Wait; True if stopping."""
        if seconds <= 0:
            return self.stop.is_set()
        return self.clock.wait(self.stop, seconds)

    def batches(self) -> Iterator[Batch]:
        raise NotImplementedError


class IdleConfirmation:
    """"Caught up everywhere", confirmed by one more answered call from every polling reader.

    A shard's last read came back empty and no call has failed since: that is caught up only if the reader
    is still being answered. Its next call may simply not have happened yet (a fake clock moved on while
    the reader's thread waited for the CPU; a call hangs), and a server that died after that empty read
    must end as NoProgressError, not as an idle run. So the first time an engine finds everything caught
    up, `confirmed` notes each reader's answer count and says no; it says yes once every reader has been
    answered again and everything is still caught up. On a real clock that costs at most one idle poll.
    """

    def __init__(self) -> None:
        self._marks: dict[str, tuple[ReaderBase | None, int]] | None = None

    def reset(self) -> None:
        """Something is not caught up: the next confirmation starts again."""
        self._marks = None

    def confirmed(self, readers: Mapping[str, ReaderBase | None]) -> bool:
        marks = {sid: (r, -1 if r is None else r.answers)
                 for sid, r in readers.items() if r is None or r.answers_while_idle}
        before = self._marks
        if before is None or before.keys() != marks.keys():
            self._marks = marks
            return False
        replaced = {sid: mark for sid, mark in marks.items() if mark[0] is not before[sid][0]}
        if replaced:  # a new reader on a shard: its count starts again
            self._marks = {**before, **replaced}
            return False
        return all(r is not None and n > before[sid][1] for sid, (r, n) in marks.items())


class ShardReader(ReaderBase):
    """Reads one shard from `start` with GetRecords; see the module docstring."""

    def __init__(self, transport: KinesisTransport, stream: str, shard_id: str, start: Checkpoint, *,
                 stop: threading.Event, clock: Clock = SYSTEM_CLOCK, settings: ReaderSettings | None = None,
                 on_error: Callable[[StreamkitError, int, float], None] | None = None) -> None:
        super().__init__(transport, stream, shard_id, start, stop=stop, clock=clock, on_error=on_error)
        self.settings = settings or ReaderSettings()
        policy = self.settings.retry
        # An expired iterator is retried with a new iterator (below), never with the same one.
        self._fetch_retry = replace(policy, retryable=lambda e: not isinstance(e, ExpiredIteratorError) and policy.retryable(e))
        self.fetch_limit = FetchLimit(self.settings.max_fetch_bytes, self.settings.max_records, self.settings.first_limit)

    def _derived_lag(self, records: list[dict[str, Any]]) -> int | None:
        """MillisBehindLatest where the server says 0 although the call came back full (kinesalite always
        says 0): more is waiting, at least as far behind as the last record read arrived. A call that
        came back short read to the tip: its 0 stands."""
        arrival = records[-1].get("ApproximateArrivalTimestamp")
        if not isinstance(arrival, int | float):
            return None
        return int(max(0.0, self.clock.time() - float(arrival)) * 1000)

    def _iterator(self, cp: Checkpoint) -> tuple[str, tuple[str, int] | None]:
        start, after = start_of(cp)

        def call() -> str:
            try:
                return self.transport.get_shard_iterator(self.stream, self.shard_id, start)
            except KinesisError as err:
                if _refused_sequence(err, cp):
                    raise foreign_checkpoint_error(self.stream, self.shard_id, cp, err) from err
                raise

        it = call_with_retry(call, self.settings.retry, clock=self.clock, stop=self.stop, on_retry=self._failed)
        self._succeeded()
        return it, after

    def batches(self) -> Iterator[Batch]:
        """One Batch per GetRecords call, until the shard ends (the last has ``ended``) or `stop`."""
        s = self.settings
        try:
            iterator, after = self._iterator(self.start)
        except Interrupted:
            return
        last_call: float | None = None

        def get_records() -> Fetched:
            nonlocal last_call
            if last_call is not None and self._pause(s.min_poll_interval - (self.clock.monotonic() - last_call)):
                raise Interrupted("stopped between calls")
            last_call = self.clock.monotonic()
            return self.transport.get_records(iterator, self.fetch_limit.limit)

        while not self.stop.is_set():
            try:
                fetched = call_with_retry(get_records, self._fetch_retry, clock=self.clock, stop=self.stop, on_retry=self._failed)
            except ExpiredIteratorError:
                log.info("iterator for %s expired; resuming after the last record read", self.shard_id)
                try:
                    iterator, after = self._iterator(self._resume_point())
                except Interrupted:
                    return
                continue
            except Interrupted:
                return
            self._succeeded()
            behind = fetched.millis_behind_latest
            if fetched.records:
                self.last_read = str(fetched.records[-1]["SequenceNumber"])
                limit, nbytes = self.fetch_limit.limit, fetched_bytes(fetched.records)
                self.fetch_limit.after(len(fetched.records), nbytes)
                if not behind and (len(fetched.records) >= limit or nbytes >= self.fetch_limit.cap // 2):
                    behind = self._derived_lag(fetched.records)
            ended = fetched.next_iterator is None
            caught_up = not fetched.records and not ended and (fetched.millis_behind_latest or 0) == 0
            yield Batch(records=fetched.records, millis_behind_latest=behind, caught_up=caught_up,
                        ended=ended, children=fetched.child_shards, after=after)
            after = None
            if ended:
                return
            iterator = fetched.next_iterator  # type: ignore[assignment]
            if caught_up and self._pause(s.idle_poll_interval):
                return
