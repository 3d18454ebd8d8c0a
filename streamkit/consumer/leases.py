"""Leases: who processes which shard. Pure decisions (`plan_takes`) and the holders that write them.

A lease is held by renewing it (a conditional update that bumps its counter) every
`renew_interval`. Other workers watch the counter with their own clock: a lease whose counter has not
moved for `lease_duration` is expired and may be taken. A worker whose lease was taken finds out on its
next renewal or checkpoint (the condition fails) and stops that shard: it cannot checkpoint any more
(fencing).

**Balance.** By count (the default), each worker aims for ceil(unfinished leases / live workers) and
takes, or moves one lease at a time from the busiest worker, to get there. By load, the least loaded
worker moves to itself the busiest worker's lease that brings their two loads nearest
(``throughputKBps`` per lease, as the owners measure and write it), if that brings them more than
`LOAD_TOLERANCE` (20%) of the mean load closer; a worker holding nothing first takes one lease from a
worker holding several. The bound at rest: no single lease of the busiest
worker would bring it and the least loaded worker 20% of the mean closer. With 2 streams of 4 shards,
one 10x hotter, over 4 workers, that leaves one hot lease per worker (a worker with two hot leases and
one with none are 16+ units apart, and moving a hot one closes 12 of them, more than 20% of the mean 11).

**Graceful handoff** (KCL 3's attributes). A planned move does not take the lease: it writes
``leaseOwner`` = the taker and ``checkpointOwner`` = the current owner. The current owner, whose next
renewal fails and finds itself the checkpoint owner, lets that shard finish its batch, calls
`shutdown_requested` (which checkpoints), and releases by clearing ``checkpointOwner``; only then does
the taker start, from that checkpoint: no record is processed twice. If the owner dies meanwhile, the
lease's counter stops and the taker takes it once it has expired (at least once, as after any crash).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from streamkit.checkpoints.base import NO_OWNER_CHECK, CheckpointStore
from streamkit.checkpoints.model import Checkpoint, Lease, lease_key
from streamkit.errors import LeaseLostError

__all__ = ["LOAD_TOLERANCE", "LeaseHolder", "LeaseObserver", "RateMeter", "TakePlan", "plan_takes"]

#: Balancing by load moves a lease only while the gap it closes is more than this share of the mean load.
LOAD_TOLERANCE = 0.2


class LeaseObserver:
    """Remembers when each lease's counter last moved, by this worker's clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._seen: dict[str, tuple[int, float]] = {}
        self._moved: set[str] = set()  # leases whose counter this worker has seen move

    def observe(self, leases: list[Lease]) -> None:
        now = self.clock()
        seen = self._seen
        for lease in leases:
            prev = seen.get(lease.key)
            if prev is None or prev[0] != lease.counter:
                if prev is not None:
                    self._moved.add(lease.key)
                seen[lease.key] = (lease.counter, now)

    def proven_alive(self, lease: Lease, lease_duration: float) -> bool:
        """Its owner renewed it while this worker watched, and not longer ago than `lease_duration`."""
        return lease.key in self._moved and self.quiet_for(lease) < lease_duration

    @property
    def moved(self) -> set[str]:
        """Keys of the leases whose counter this worker has seen move."""
        return self._moved

    def moved_since(self, lease: Lease, since: float) -> bool:
        """Its counter was last seen to move at or after clock time `since`."""
        prev = self._seen.get(lease.key)
        return lease.key in self._moved and prev is not None and prev[0] == lease.counter and prev[1] >= since

    def next_expiry(self, leases: list[Lease], me: str, lease_duration: float) -> float | None:
        """Clock time at which the earliest of others' leases would expire if its counter stays put."""
        times = [self._seen[lease.key][1] + lease_duration for lease in leases
                 if lease.actual_owner not in (None, me) and lease.key in self._seen]
        return min(times) if times else None

    def quiet_for(self, lease: Lease) -> float:
        """Seconds since this lease's counter was last seen to move (0 for one never seen)."""
        prev = self._seen.get(lease.key)
        return 0.0 if prev is None or prev[0] != lease.counter else self.clock() - prev[1]

    def expired(self, lease: Lease, lease_duration: float) -> bool:
        if lease.actual_owner is None:
            return True
        prev = self._seen.get(lease.key)
        return prev is not None and prev[0] == lease.counter and self.clock() - prev[1] >= lease_duration


@dataclass(frozen=True)
class TakePlan:
    take: list[Lease]  # available (unowned or expired) leases to take
    steal: Lease | None  # one lease to move here from an overloaded worker (gracefully)
    target: int
    #: Leases already this worker's (a handoff to it has completed, or it held them before a restart):
    #: to run, after confirming them with one conditional write.
    adopt: list[Lease] = field(default_factory=list)


def plan_takes(leases: list[Lease], me: str, expired: Callable[[Lease], bool], *,
               max_leases: int | None = None, load: Callable[[Lease], float] | None = None) -> TakePlan:
    """Which leases this worker should take now (`load`: balance by it instead of by count)."""
    by_key = {lease.key: lease for lease in leases}

    def finished(lease: Lease) -> bool:
        return lease.checkpoint.is_shard_end

    def parent(lease: Lease, pid: str) -> Lease | None:
        return by_key.get(lease_key(lease.stream, pid))  # parents are named by shard id, in the same stream

    def ready(lease: Lease) -> bool:
        # Children wait until every parent we know of has been read to its end.
        return all((p := parent(lease, pid)) is None or finished(p) for pid in lease.parent_shard_ids)

    live = [lease for lease in leases if not finished(lease)]
    adopt = [lease for lease in live if lease.owner == me and lease.checkpoint_owner is None and ready(lease)]
    workers: dict[str, list[Lease]] = {me: []}
    for lease in live:
        if lease.owner is not None and not expired(lease):
            workers.setdefault(lease.owner, []).append(lease)
    incoming = any(lease.owner == me and lease.checkpoint_owner is not None for lease in workers[me])
    target = math.ceil(len(live) / len(workers)) if live else 0
    if max_leases is not None:
        target = min(target, max_leases)
    mine = len(workers[me])
    available = [lease for lease in live if lease.actual_owner != me and ready(lease)
                 and (lease.actual_owner is None or expired(lease))]
    available.sort(key=lambda lease: lease.key)
    need = target - mine
    take = available[:max(0, need)]
    steal = None
    if not take and not incoming and (max_leases is None or mine < max_leases):
        if load is None:
            if need > 0:
                steal = _steal_by_count(workers, me, target, ready)
        else:
            steal = _steal_by_load(workers, me, load, ready)
    return TakePlan(take, steal, target, adopt)


def _movable(lease: Lease, ready: Callable[[Lease], bool]) -> bool:
    return ready(lease) and lease.checkpoint_owner is None


def _steal_by_count(workers: dict[str, list[Lease]], me: str, target: int,
                    ready: Callable[[Lease], bool]) -> Lease | None:
    busiest = max((w for w in workers if w != me), key=lambda w: len(workers[w]), default=None)
    if busiest is None:
        return None
    # As the KCL's LeaseTaker: from a worker above the target, or from one at it when this worker is two or
    # more short (else 100 leases over 6 workers settle at 15 here and 17 everywhere else).
    most, short = len(workers[busiest]), target - len(workers[me])
    if most < target or (most == target and short < 2):
        return None
    candidates = sorted((lease for lease in workers[busiest] if _movable(lease, ready)), key=lambda lease: lease.key)
    return candidates[-1] if candidates else None


def _steal_by_load(workers: dict[str, list[Lease]], me: str, load: Callable[[Lease], float],
                   ready: Callable[[Lease], bool]) -> Lease | None:
    """The least loaded worker (only it, so two do not move leases at once) takes the busiest worker's
    lease that best halves the gap between them, if that closes more than LOAD_TOLERANCE of the mean.
    A worker holding nothing takes one lease from a worker holding several, whatever their loads: idle
    capacity is used while there are enough leases."""
    loads = {w: sum(load(lease) for lease in held) for w, held in workers.items()}
    least = min(loads, key=lambda w: (loads[w], w))
    if least != me or len(workers) < 2:
        return None
    if not workers[me]:
        crowded = max((w for w in workers if w != me), key=lambda w: (len(workers[w]), loads[w], w))
        if len(workers[crowded]) >= 2:
            return _nearest(workers[crowded], loads[crowded], 0.0, load, ready, gain=-1.0, positive=False)
    busiest = max((w for w in workers if w != me), key=lambda w: (loads[w], w))
    mean = sum(loads.values()) / len(loads)
    return _nearest(workers[busiest], loads[busiest], loads[me], load, ready, gain=LOAD_TOLERANCE * mean)


def _nearest(held: list[Lease], theirs: float, mine: float, load: Callable[[Lease], float],
             ready: Callable[[Lease], bool], *, gain: float, positive: bool = True) -> Lease | None:
    """Of `held`, the lease whose move brings the two loads nearest, if that closes more than `gain`."""
    gap = theirs - mine
    best = None
    for lease in sorted(held, key=lambda lease: lease.key):
        amount = load(lease)
        closed = gap - abs(gap - 2 * amount)  # how much nearer the two loads get
        if (amount > 0 or not positive) and _movable(lease, ready) and closed > gain:
            best, gain = lease, closed
    return best


class RateMeter:
    """A lease's throughput in KB/s (1 KB = 1,024 bytes, the KCL's throughputKBps), smoothed over renewals.

    As KCL 3 computes it (amazon-kinesis-client ``docs/kcl_3x_deep-dive.md``, "How KCL 3.x captures
    throughput per shard"): bytes delivered in the last renewal interval over its length, then an
    exponential moving average with alpha 0.5."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._last: tuple[float, int] | None = None
        self.kbps: float | None = None

    def sample(self, total_bytes: int) -> float | None:
        """Feed the bytes processed so far; the smoothed rate (None until two samples)."""
        now = self.clock()
        last, self._last = self._last, (now, total_bytes)
        if last is None or now <= last[0]:
            return self.kbps
        rate = (total_bytes - last[1]) / (now - last[0]) / 1024
        self.kbps = rate if self.kbps is None else 0.5 * self.kbps + 0.5 * rate
        return self.kbps


class LeaseHolder:
    """This worker's hold on one shard: renew, checkpoint (fenced) and release, one at a time.

    `handoff` is set once another worker has asked for the lease (graceful handoff): renewals and
    checkpoints still succeed, and `release` hands the lease to that worker."""

    def __init__(self, store: CheckpointStore, namespace: str, lease: Lease, worker_id: str) -> None:
        self.store = store
        self.namespace = namespace
        self.worker_id = worker_id
        self._lease = lease
        self._lock = threading.Lock()
        self.lost = threading.Event()
        self.handoff = threading.Event()

    @property
    def lease(self) -> Lease:
        return self._lease

    @property
    def shard_id(self) -> str:
        return self._lease.shard_id

    @property
    def key(self) -> str:
        return self._lease.key

    def _write(self, changes: dict[str, object]) -> Lease | None:
        return self.store.update_lease(self.namespace, self.key, expected_counter=self._lease.counter,
                                       expected_owner=self.worker_id, **changes)  # type: ignore[arg-type]

    def _update(self, **changes: object) -> Lease:
        with self._lock:
            if self.lost.is_set():
                raise LeaseLostError(f"lease on {self.key} was lost by {self.worker_id}")
            new = self._write(changes)
            if new is None and not self.handoff.is_set():
                # Asked for by another worker? Then this worker is the checkpoint owner, and keeps the lease
                # (renewing and checkpointing) until it releases it.
                cur = self.store.get_lease(self.namespace, self.key)
                if cur is not None and cur.checkpoint_owner == self.worker_id:
                    self._lease = cur
                    self.handoff.set()
                    if "owner" in changes and changes["owner"] is None:
                        changes = {"checkpoint_owner": None}  # a release: to the worker that asked
                    new = self._write(changes)
                elif cur is not None and cur.owner == self.worker_id and cur.checkpoint_owner is None:
                    # Still ours, its counter moved by a write of ours whose answer was lost (the store died
                    # after applying it): nobody else took it (a take names its taker), so carry on from it.
                    # Giving it up instead re-read the shard from its last checkpoint: the soak's duplicates.
                    self._lease = cur
                    new = self._write(changes)
            if new is None:
                self.lost.set()
                raise LeaseLostError(f"lease on {self.key} is no longer held by {self.worker_id}")
            self._lease = new
            return new

    @property
    def handing_to(self) -> str | None:
        """The worker the lease goes to once released, while a handoff is pending."""
        return self._lease.owner if self.handoff.is_set() else None

    def renew(self, throughput_kbps: float | None = None) -> bool:
        try:
            self._update(throughput_kbps=throughput_kbps)
            return True
        except LeaseLostError:
            return False

    def checkpoint(self, checkpoint: Checkpoint) -> Lease:
        """Store `checkpoint` if this worker still holds the lease; else `LeaseLostError`."""
        return self._update(checkpoint=checkpoint, owner_switches=0)

    def release(self) -> None:
        """Give the lease up: to the worker that asked for it (checkpoint owner cleared), or to anyone
        (owner cleared), so it is taken at once."""
        try:
            if self.handoff.is_set():
                self._update(checkpoint_owner=None)
            else:
                self._update(owner=None)
        except LeaseLostError:
            pass
        self.lost.set()


def take_lease(store: CheckpointStore, namespace: str, lease: Lease, worker_id: str) -> LeaseHolder | None:
    """Take `lease` as observed (unowned, or expired: its counter must not have moved since); None if
    someone was faster. An expired handoff (its checkpoint owner died) is taken the same way."""
    new = store.update_lease(namespace, lease.key, expected_counter=lease.counter,
                             expected_owner=None if lease.actual_owner is None else NO_OWNER_CHECK,
                             owner=worker_id, checkpoint_owner=None, owner_switches=lease.owner_switches + 1)
    return None if new is None else LeaseHolder(store, namespace, new, worker_id)


def adopt_lease(store: CheckpointStore, namespace: str, lease: Lease, worker_id: str) -> LeaseHolder | None:
    """Run a lease already this worker's (a completed handoff), after one conditional write proves it."""
    new = store.update_lease(namespace, lease.key, expected_counter=lease.counter, expected_owner=worker_id)
    return None if new is None else LeaseHolder(store, namespace, new, worker_id)


def request_handoff(store: CheckpointStore, namespace: str, lease: Lease, worker_id: str) -> bool:
    """Ask `lease`'s owner to hand it over: ``leaseOwner`` = this worker, ``checkpointOwner`` = the owner.

    Unlike the KCL 3 (whose single leader writes this without bumping the counter), the counter is
    incremented: with every worker planning for itself, the counter condition is what lets only one of
    two workers asking at once succeed."""
    if lease.owner is None or lease.checkpoint_owner is not None:
        return False
    new = store.update_lease(namespace, lease.key, expected_counter=lease.counter, expected_owner=lease.owner,
                             owner=worker_id, checkpoint_owner=lease.owner)
    return new is not None
