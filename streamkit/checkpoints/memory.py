"""MemoryCheckpointStore: leases in a dict, for tests and single-process runs that need no persistence."""

from __future__ import annotations

import threading

from streamkit.checkpoints.base import KEEP_OWNER, NO_OWNER_CHECK
from streamkit.checkpoints.model import Checkpoint, Lease

__all__ = ["MemoryCheckpointStore"]


class MemoryCheckpointStore:
    def __init__(self) -> None:
        self._leases: dict[tuple[str, str], Lease] = {}
        self._lock = threading.Lock()

    def create_lease(self, namespace: str, lease: Lease) -> bool:
        with self._lock:
            key = (namespace, lease.key)
            if key in self._leases:
                return False
            self._leases[key] = lease
            return True

    def get_lease(self, namespace: str, key: str) -> Lease | None:
        with self._lock:
            return self._leases.get((namespace, key))

    def list_leases(self, namespace: str) -> list[Lease]:
        with self._lock:
            return [lease for (ns, _key), lease in self._leases.items() if ns == namespace]

    def update_lease(self, namespace: str, key: str, *, expected_counter: int, expected_owner: str | None,
                     owner: str | None = KEEP_OWNER, checkpoint: Checkpoint | None = None,
                     owner_switches: int | None = None, checkpoint_owner: str | None = KEEP_OWNER,
                     throughput_kbps: float | None = None) -> Lease | None:
        with self._lock:
            cur = self._leases.get((namespace, key))
            if cur is None or cur.counter != expected_counter:
                return None
            if expected_owner != NO_OWNER_CHECK and cur.actual_owner != expected_owner:
                return None
            new = cur.with_changes(
                counter=cur.counter + 1,
                owner=cur.owner if owner is KEEP_OWNER else owner,
                checkpoint=checkpoint if checkpoint is not None else cur.checkpoint,
                pending_checkpoint=None if checkpoint is not None else cur.pending_checkpoint,
                owner_switches=cur.owner_switches if owner_switches is None else owner_switches,
                checkpoint_owner=cur.checkpoint_owner if checkpoint_owner is KEEP_OWNER else checkpoint_owner,
                throughput_kbps=cur.throughput_kbps if throughput_kbps is None else throughput_kbps,
            )
            self._leases[(namespace, key)] = new
            return new

    def delete_lease(self, namespace: str, key: str) -> None:
        with self._lock:
            self._leases.pop((namespace, key), None)
