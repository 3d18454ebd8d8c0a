"""Model-based test of the lease protocol between two workers: graceful handoffs, renewals, checkpoints,
releases, expiries, force takes and crashes interleaved in any order (the real LeaseHolder, plan_takes,
request_handoff, adopt_lease and take_lease on MemoryCheckpointStore, with the observer on a fake clock).

A shard holds records 0..N-1. A worker that holds the lease processes records from its lease's
checkpoint on, in order, and checkpoints what it processed; while a handoff is pending it may still
finish its batch, then checkpoints and releases. Checked after every step:

- at most one worker may write the lease (renew or checkpoint) at any time: the fencing;
- a pending handoff always names the worker it goes to;
- the stored checkpoint never passes a record that the worker writing it had not processed;
- **no record is processed twice unless the lease was taken without a handoff** (an owner crashed, or
  stalled past lease_duration and was fenced): a planned move never duplicates;
- and at the end a healthy worker processes every record at least once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from streamkit.checkpoints import TRIM_HORIZON, Checkpoint, Lease, MemoryCheckpointStore
from streamkit.consumer.leases import LeaseHolder, LeaseObserver, adopt_lease, plan_takes, request_handoff, take_lease
from streamkit.errors import LeaseLostError

DEEP = os.environ.get("STREAMKIT_DEEP") == "1"
NS = "app"
N = 12
DURATION = 3.0


@dataclass
class Worker:
    name: str
    observer: LeaseObserver
    holder: LeaseHolder | None = None
    next: int = 0  # the next record it would process
    processed: list[int] = field(default_factory=list)  # since it took the lease
    alive: bool = True


class HandoffMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.store = MemoryCheckpointStore()
        self.store.create_lease(NS, Lease(shard_id="s-0"))
        self.slots = [self._worker("A"), self._worker("B")]  # two processes; a crash restarts one renamed
        self.counts = [0] * N
        self.unplanned = False  # a lease was taken without a handoff: duplicates are then allowed
        first = take_lease(self.store, NS, self.lease, "A")
        assert first is not None
        self._start(self.slots[0], first)

    def _worker(self, name: str) -> Worker:
        return Worker(name, LeaseObserver(lambda: self.now))

    @property
    def lease(self) -> Lease:
        lease = self.store.get_lease(NS, "s-0")
        assert lease is not None
        return lease

    def _start(self, w: Worker, holder: LeaseHolder) -> None:
        cp = holder.lease.checkpoint
        w.holder, w.processed = holder, []
        w.next = 0 if cp == TRIM_HORIZON else int(cp.sequence_number) + 1

    def _holds(self, w: Worker) -> bool:
        return w.alive and w.holder is not None and not w.holder.lost.is_set()

    # -- a holder's work ---------------------------------------------------------------------------
    @rule(slot=st.integers(0, 1), n=st.integers(1, 3))
    def process(self, slot: int, n: int) -> None:
        """Process up to n records (a batch goes on even if the lease was just taken: found out later)."""
        w = self.slots[slot]
        if not (w.alive and w.holder is not None):
            return
        for _ in range(n):
            if w.next >= N:
                return
            self.counts[w.next] += 1
            w.processed.append(w.next)
            w.next += 1

    @rule(slot=st.integers(0, 1))
    def checkpoint(self, slot: int) -> None:
        w = self.slots[slot]
        if not self._holds(w) or not w.processed:
            return
        try:
            w.holder.checkpoint(Checkpoint(str(w.processed[-1])))  # type: ignore[union-attr]
        except LeaseLostError:
            w.holder = None

    @rule(slot=st.integers(0, 1))
    def renew_and_maybe_finish_a_handoff(self, slot: int) -> None:
        """The consumer's cycle for a holder: renew; if asked for the lease, checkpoint and release it."""
        w = self.slots[slot]
        if not self._holds(w):
            return
        assert w.holder is not None
        if not w.holder.renew():
            w.holder = None
            return
        if w.holder.handoff.is_set():
            try:
                if w.processed:
                    w.holder.checkpoint(Checkpoint(str(w.processed[-1])))  # shutdown_requested
                w.holder.release()
            except LeaseLostError:
                pass
            w.holder = None

    @rule(slot=st.integers(0, 1))
    def stop_gracefully(self, slot: int) -> None:
        """SIGTERM: checkpoint what was processed and release, without a renewal first (so the release
        itself may be what finds a pending handoff)."""
        w = self.slots[slot]
        if not self._holds(w):
            return
        assert w.holder is not None
        try:
            if w.processed:
                w.holder.checkpoint(Checkpoint(str(w.processed[-1])))
            w.holder.release()
        except LeaseLostError:
            pass
        w.holder = None

    # -- a worker without the lease ------------------------------------------------------------------
    @rule(slot=st.integers(0, 1), want_it=st.booleans())
    def cycle(self, slot: int, want_it: bool) -> None:
        """The consumer's cycle for a worker not holding the lease: adopt, take if expired, or ask for it."""
        w = self.slots[slot]
        worker = w.name
        if not w.alive or self._holds(w):
            return
        lease = self.lease
        observer = w.observer
        observer.observe([lease])
        plan = plan_takes([lease], worker, lambda x: observer.expired(x, DURATION))
        if plan.adopt:
            holder = adopt_lease(self.store, NS, lease, worker)
            if holder is not None:
                self._start(w, holder)
        elif plan.take:
            before = lease.actual_owner
            holder = take_lease(self.store, NS, lease, worker)
            if holder is not None:
                if before is not None:
                    self.unplanned = True  # taken from an owner that did not hand it over
                self._start(w, holder)
        elif want_it and lease.owner not in (None, worker) and lease.checkpoint_owner is None:
            request_handoff(self.store, NS, lease, worker)

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 4.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule(slot=st.integers(0, 1))
    def crash_and_restart(self, slot: int) -> None:
        """The process dies (no release) and starts again under a new name."""
        old = self.slots[slot]
        old.alive = False
        self.slots[slot] = self._worker(old.name + "'")
        self.unplanned = True

    # -- invariants ----------------------------------------------------------------------------------
    @invariant()
    def one_writer_at_a_time(self) -> None:
        lease = self.lease
        writers = [w.name for w in self.slots
                   if self._holds(w) and w.holder is not None and lease.counter == w.holder.lease.counter
                   and lease.actual_owner == w.name]
        assert len(writers) <= 1, writers

    @invariant()
    def a_pending_handoff_always_names_its_taker(self) -> None:
        lease = self.lease
        if lease.checkpoint_owner is not None:
            assert lease.owner not in (None, lease.checkpoint_owner), lease

    @invariant()
    def checkpoint_is_processed(self) -> None:
        cp = self.lease.checkpoint
        if not cp.is_sentinel:
            assert self.counts[int(cp.sequence_number)] >= 1
            assert all(self.counts[i] >= 1 for i in range(int(cp.sequence_number) + 1))

    @invariant()
    def planned_moves_never_duplicate(self) -> None:
        if not self.unplanned:
            assert max(self.counts) <= 1, self.counts

    def teardown(self) -> None:
        """A healthy worker, long enough, processes everything: at least once overall."""
        self.now += 10 * DURATION
        final = self._worker("final")
        holder = take_lease(self.store, NS, self.lease, "final")  # every other worker has stopped renewing
        assert holder is not None
        self._start(final, holder)
        for i in range(final.next, N):
            self.counts[i] += 1
        assert min(self.counts) >= 1, self.counts


TestHandoffInterleavings = HandoffMachine.TestCase
TestHandoffInterleavings.settings = settings(
    max_examples=2000 if DEEP else 300, stateful_step_count=60 if DEEP else 40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
