"""A shard's parallel lanes: each holds some partition keys' records in order, batches and retries them.

With ParallelizationFactor P a shard's records are spread over P lanes by partition key, so each key
stays in order while the shard's batches overlap. A lane forms batches as AWS does (BatchSize, the
batching window, the 6 MB payload cap, one tumbling window per batch), invokes through its owner, and
puts batches to retry back at its head.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

from streamkit.aws_lambda.esm_config import EsmConfig, EsmStats
from streamkit.aws_lambda.esm_core import EVENT_PAYLOAD_LIMIT, Outcome, PendingRecord, decide, expired
from streamkit.aws_lambda.esm_invoke import WindowView
from streamkit.aws_lambda.esm_windows import final_gives_up, terminates_early
from streamkit.clock import Clock
from streamkit.errors import StreamkitError
from streamkit.hashing import lane_of
from streamkit.retry import Backoff

log = logging.getLogger("streamkit.esm")

__all__ = ["Lane", "LaneOwner", "MissingStateError", "retry_pause", "split_by_lane", "take_batch"]


class MissingStateError(StreamkitError):
    """A tumbling-window invocation returned no ``state``: AWS counts the invocation as failed."""


def retry_pause(attempts: int, *, base: float, maximum: float) -> float:
    """The pause before invoking a failed batch again, after its `attempts`-th failed invocation: doubling
    from `base` up to `maximum`. AWS was recorded invoking a failing batch 8 times in about 60 s; doubling
    from 0.25 s gives 8 invocations in the first 60 s (at 0, 0.25, 0.75, 1.75, 3.75, 7.75, 15.75, 31.75)."""
    return Backoff(base=base, maximum=maximum).ceiling(attempts)  # the shared formula, without jitter


class LaneOwner(Protocol):
    """What a lane needs from its mapping."""

    config: EsmConfig
    clock: Clock
    stopping: threading.Event
    stats: EsmStats

    def caught_up(self, shard_id: str) -> bool: ...

    def invoke_lane(self, lane: Lane, batch: list[PendingRecord], window: WindowView | None
                    ) -> tuple[Any, BaseException | None]: ...

    def account(self, lane: Lane, batch: list[PendingRecord], outcome: Outcome, error: BaseException | None, *,
                invoked: bool = True) -> None: ...


def split_by_lane(records: list[PendingRecord], lanes: int) -> dict[int, list[PendingRecord]]:
    """Records by lane, each lane's in stream order: a partition key always goes to the same lane."""
    by_lane: dict[int, list[PendingRecord]] = {}
    for record in records:
        key = record.raw.get("PartitionKey")
        # A keyless record (AUTO streams) has no order to keep: its sequence number spreads it.
        lane = 0 if lanes == 1 else lane_of(key if key is not None else record.raw["SequenceNumber"], lanes)
        by_lane.setdefault(lane, []).append(record)
    return by_lane


def take_batch(pending: deque[PendingRecord], *, batch_size: int, tumbling_window: float,
               window_start: float | None) -> tuple[list[PendingRecord], float | None]:
    """Take the next batch off `pending`: at most `batch_size` records, within the payload cap, all of one
    tumbling window. Returns the batch and the window it belongs to (None without windows)."""
    batch: list[PendingRecord] = []
    size = 0
    while pending and len(batch) < batch_size:
        r = pending[0]
        if tumbling_window:
            start = r.arrival - r.arrival % tumbling_window
            if window_start is None:
                window_start = start
            elif start != window_start:
                break
        if batch and size + r.event_size > EVENT_PAYLOAD_LIMIT:
            break  # the 6 MB synchronous payload cap
        batch.append(pending.popleft())
        size += r.event_size
    return batch, window_start


class Lane:
    """One of a shard's parallel lanes: its records in order, batches, retries and window state."""

    def __init__(self, owner: LaneOwner, shard_id: str, index: int) -> None:
        self.owner = owner
        self.shard_id = shard_id
        self.index = index
        self.pending: deque[PendingRecord] = deque()
        self.retry: deque[list[PendingRecord]] = deque()
        self.cond = threading.Condition()
        self.first_wait: float | None = None
        self.window_start: float | None = None
        self.window_state: dict[str, Any] = {}
        self.busy = False
        self.ended = False  # the shard is read to its end: nothing more will arrive

    def pending_bytes(self) -> int:
        """The data bytes waiting in this lane, read under its lock (its worker pops while the poller counts)."""
        with self.cond:
            return sum(len(r.raw["Data"]) for r in self.pending)

    def offer(self, records: list[PendingRecord]) -> None:
        with self.cond:
            self.pending.extend(records)
            self.cond.notify_all()

    def idle(self) -> bool:
        """Nothing to deliver, nothing in flight, and no tumbling window still open (its final call is due)."""
        with self.cond:
            return not self.pending and not self.retry and not self.busy and self.window_start is None

    def head(self) -> list[PendingRecord]:
        """The first record waiting for a retry, if any (for messages)."""
        with self.cond:
            return [self.retry[0][0]] if self.retry and self.retry[0] else []

    def shard_ended(self) -> None:
        with self.cond:
            self.ended = True
            self.cond.notify_all()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify_all()

    # -- batching --------------------------------------------------------------------------------
    def _window_closed(self, first_arrival: float | None) -> bool:
        """The open tumbling window is over: the next record is past it, or (none waiting) the clock is."""
        window = self.owner.config.tumbling_window
        if not window or self.window_start is None:
            return False
        if first_arrival is not None:
            return first_arrival >= self.window_start + window
        if self.ended:
            return True  # the shard ended (split or merge): its windows close now, the children start afresh
        # Nothing waiting: the window is over once the clock passed its end and the shard is caught up (a
        # backlog read from the past may still hold records of it).
        return self.owner.clock.time() >= self.window_start + window and self.owner.caught_up(self.shard_id)

    def _ready_batch(self) -> list[PendingRecord] | float:
        """A batch from `pending` if one is due (full, or the batching window passed), else how long to wait."""
        cfg = self.owner.config
        now = self.owner.clock.monotonic()
        first_wait = self.first_wait if self.first_wait is not None else now
        if len(self.pending) < cfg.batch_size and now - first_wait < cfg.batching_window:
            return max(0.001, cfg.batching_window - (now - first_wait))
        batch, self.window_start = take_batch(self.pending, batch_size=cfg.batch_size,
                                              tumbling_window=cfg.tumbling_window, window_start=self.window_start)
        self.first_wait = None if not self.pending else self.owner.clock.monotonic()
        return batch

    def _next_batch(self) -> list[PendingRecord] | None:
        """The next batch to invoke: a retry first, then new records; [] for a window's final invocation;
        None once the mapping stops."""
        with self.cond:
            while not self.owner.stopping.is_set():
                if self.retry:
                    self.busy = True
                    return self.retry.popleft()
                if self.pending and self.first_wait is None:
                    self.first_wait = self.owner.clock.monotonic()  # the batching window starts
                if self._window_closed(self.pending[0].arrival if self.pending else None):
                    self.busy = True
                    return []  # the window closed: a final invocation for it first
                if self.pending:
                    ready = self._ready_batch()
                    if isinstance(ready, list):
                        self.busy = True
                        return ready
                    self.cond.wait(ready)
                    continue
                self.cond.wait(0.05)
            return None

    def run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                if not batch and self.owner.config.tumbling_window:
                    self._close_window()
                else:
                    self._deliver(batch)
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()

    # -- invoking --------------------------------------------------------------------------------
    def window_view(self, *, final: bool, early: bool = False) -> WindowView | None:
        if not self.owner.config.tumbling_window:
            return None
        start = self.window_start if self.window_start is not None else self.owner.clock.time()
        return WindowView(start=start, state=self.window_state, final=final, terminated_early=early)

    def _deliver(self, batch: list[PendingRecord]) -> None:
        owner, cfg = self.owner, self.owner.config
        stale = expired(batch, max_record_age=cfg.max_record_age, now=owner.clock.time())
        if stale:
            # Past MaximumRecordAgeInSeconds: never invoked, straight to OnFailure (AWS's behaviour).
            owner.account(self, stale, Outcome(discard=stale, condition="RecordAgeExceeded"), None, invoked=False)
            gone = {id(r) for r in stale}
            batch = [r for r in batch if id(r) not in gone]
            if not batch:
                return
        response, error = owner.invoke_lane(self, batch, self.window_view(final=False))
        if cfg.tumbling_window and error is None and not (isinstance(response, Mapping) and "state" in response):
            error = MissingStateError("the function's response has no state (a tumbling-window invocation)")
        outcome = decide(batch, error=error, response=response, report_batch_item_failures=cfg.report_batch_item_failures,
                         bisect_on_error=cfg.bisect_on_error, max_retry_attempts=cfg.max_retry_attempts,
                         max_record_age=cfg.max_record_age, now=owner.clock.time())
        early = False
        if cfg.tumbling_window and error is None:
            self.window_state = response["state"] or {}
            early = terminates_early(self.window_state)
        owner.account(self, batch, outcome, error)
        if early:
            self._close_window(early=True)  # the state outgrew 1 MB: the window ends now
        if outcome.retry:
            with self.cond:
                self.retry.extendleft(reversed(outcome.retry))
            if len(outcome.retry) == 1 and outcome.retry[0][0].attempts:  # splits are not retries: no pause
                owner.clock.wait(owner.stopping, retry_pause(outcome.retry[0][0].attempts, base=cfg.retry_delay,
                                                             maximum=cfg.retry_delay_max))

    def _close_window(self, *, early: bool = False) -> None:
        """The window's final invocation, retried while it fails (`esm_windows`); then a fresh state."""
        owner, cfg = self.owner, self.owner.config
        failures = 0
        while not owner.stopping.is_set():
            _response, error = owner.invoke_lane(self, [], self.window_view(final=True, early=early))
            if error is None:
                break
            failures += 1
            if final_gives_up(failures, cfg.max_retry_attempts):
                log.error("the final invocation of %s's window failed %d time(s) (%s); its state is given up",
                          self.shard_id, failures, error)
                break
            log.warning("the final invocation of %s's window failed (attempt %d): %s; retrying", self.shard_id,
                        failures, error)
            owner.clock.wait(owner.stopping, retry_pause(failures, base=cfg.retry_delay, maximum=cfg.retry_delay_max))
        else:
            return  # stopped: the window stays open (a restart reads its records again)
        with owner.stats.lock:
            owner.stats.windows_closed += 1
            owner.stats.windows_terminated_early += early
        self.window_state = {}
        self.window_start = None
