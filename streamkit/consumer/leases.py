"""Leases: who processes which shard. Pure decisions (`plan_takes`) and the holders that write them.

A lease is held by renewing it (a conditional update that bumps its counter) every
`renew_interval`. Other workers watch the counter with their own clock: a lease whose counter has not
moved for `lease_duration` is expired and may be taken. Balance: each worker aims for
ceil(unfinished leases / live workers) and takes, or steals one at a time from the busiest worker, to
get there. A worker whose lease was taken finds out on its next renewal or checkpoint (the condition
fails) and stops that shard: it cannot checkpoint any more (fencing).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from streamkit.checkpoints.base import NO_OWNER_CHECK, CheckpointStore
from streamkit.checkpoints.model import Checkpoint, Lease
from streamkit.errors import LeaseLostError

__all__ = ["LeaseHolder", "LeaseObserver", "TakePlan", "plan_takes"]


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
            prev = seen.get(lease.shard_id)
            if prev is None or prev[0] != lease.counter:
                if prev is not None:
                    self._moved.add(lease.shard_id)
                seen[lease.shard_id] = (lease.counter, now)

    def proven_alive(self, lease: Lease, lease_duration: float) -> bool:
        """Its owner renewed it while this worker watched, and not longer ago than `lease_duration`."""
        return lease.shard_id in self._moved and self.quiet_for(lease) < lease_duration

    def next_expiry(self, leases: list[Lease], me: str, lease_duration: float) -> float | None:
        """Clock time at which the earliest of others' leases would expire if its counter stays put."""
        times = [self._seen[lease.shard_id][1] + lease_duration for lease in leases
                 if lease.owner not in (None, me) and lease.shard_id in self._seen]
        return min(times) if times else None

    def quiet_for(self, lease: Lease) -> float:
        """Seconds since this lease's counter was last seen to move (0 for one never seen)."""
        prev = self._seen.get(lease.shard_id)
        return 0.0 if prev is None or prev[0] != lease.counter else self.clock() - prev[1]

    def expired(self, lease: Lease, lease_duration: float) -> bool:
        if lease.owner is None:
            return True
        prev = self._seen.get(lease.shard_id)
        return prev is not None and prev[0] == lease.counter and self.clock() - prev[1] >= lease_duration


@dataclass(frozen=True)
class TakePlan:
    take: list[Lease]  # available (unowned or expired) leases to take
    steal: Lease | None  # one lease to take from an overloaded worker
    target: int


def plan_takes(leases: list[Lease], me: str, expired: Callable[[Lease], bool], *,
               max_leases: int | None = None) -> TakePlan:
    """Which leases this worker should take now."""
    by_id = {lease.shard_id: lease for lease in leases}

    def finished(lease: Lease) -> bool:
        return lease.checkpoint.is_shard_end

    def ready(lease: Lease) -> bool:
        # Children wait until every parent we know of has been read to its end.
        return all(p not in by_id or finished(by_id[p]) for p in lease.parent_shard_ids)

    live = [lease for lease in leases if not finished(lease)]
    workers: dict[str, list[Lease]] = {me: []}
    for lease in live:
        if lease.owner is not None and not expired(lease):
            workers.setdefault(lease.owner, []).append(lease)
    target = math.ceil(len(live) / len(workers)) if live else 0
    if max_leases is not None:
        target = min(target, max_leases)
    mine = len(workers[me])
    need = target - mine
    if need <= 0:
        return TakePlan([], None, target)
    available = [lease for lease in live if lease.owner != me and (lease.owner is None or expired(lease)) and ready(lease)]
    available.sort(key=lambda lease: lease.shard_id)
    take = available[:need]
    steal = None
    if not take:
        busiest = max((w for w in workers if w != me), key=lambda w: len(workers[w]), default=None)
        if busiest is not None and len(workers[busiest]) > target:
            candidates = sorted((lease for lease in workers[busiest] if ready(lease)), key=lambda lease: lease.shard_id)
            steal = candidates[-1] if candidates else None
    return TakePlan(take, steal, target)


class LeaseHolder:
    """This worker's hold on one shard: renew, checkpoint (fenced) and release, one at a time."""

    def __init__(self, store: CheckpointStore, namespace: str, lease: Lease, worker_id: str) -> None:
        self.store = store
        self.namespace = namespace
        self.worker_id = worker_id
        self._lease = lease
        self._lock = threading.Lock()
        self.lost = threading.Event()

    @property
    def lease(self) -> Lease:
        return self._lease

    @property
    def shard_id(self) -> str:
        return self._lease.shard_id

    def _update(self, **changes: object) -> Lease:
        with self._lock:
            if self.lost.is_set():
                raise LeaseLostError(f"lease on {self.shard_id} was lost by {self.worker_id}")
            new = self.store.update_lease(self.namespace, self.shard_id, expected_counter=self._lease.counter,
                                          expected_owner=self.worker_id, **changes)  # type: ignore[arg-type]
            if new is None:
                self.lost.set()
                raise LeaseLostError(f"lease on {self.shard_id} is no longer held by {self.worker_id}")
            self._lease = new
            return new

    def renew(self) -> bool:
        try:
            self._update()
            return True
        except LeaseLostError:
            return False

    def checkpoint(self, checkpoint: Checkpoint) -> Lease:
        """Store `checkpoint` if this worker still holds the lease; else `LeaseLostError`."""
        return self._update(checkpoint=checkpoint, owner_switches=0)

    def release(self) -> None:
        """Give the lease up (owner cleared) so another worker can take it at once."""
        try:
            self._update(owner=None)
        except LeaseLostError:
            pass
        self.lost.set()


def take_lease(store: CheckpointStore, namespace: str, lease: Lease, worker_id: str, *,
               steal: bool = False) -> LeaseHolder | None:
    """Take `lease` as observed (its counter must not have moved since); None if someone was faster."""
    new = store.update_lease(namespace, lease.shard_id, expected_counter=lease.counter,
                             expected_owner=NO_OWNER_CHECK if steal or lease.owner is not None else None,
                             owner=worker_id, owner_switches=lease.owner_switches + 1)
    return None if new is None else LeaseHolder(store, namespace, new, worker_id)
