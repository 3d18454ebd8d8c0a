"""The CheckpointStore protocol: leases with a conditional update, which every store implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from streamkit.checkpoints.model import Checkpoint, Lease

__all__ = ["KEEP_OWNER", "NO_OWNER_CHECK", "CheckpointStore", "write_position"]

#: Pass as `expected_owner` to skip the owner condition (only `expected_counter` is checked).
NO_OWNER_CHECK = "\x00any"
#: The default of `update_lease(owner=...)`: leave the owner as it is.
KEEP_OWNER: Any = object()


@runtime_checkable
class CheckpointStore(Protocol):
    """Leases and checkpoints per shard, under a namespace (application and stream).

    Leases are named by their `Lease.key` (the shard id, or ``stream:shard`` for several streams).
    `update_lease` is the only write that can race: it applies `changes` and increments the counter
    only if the lease still has `expected_counter` and `expected_owner` (its `Lease.actual_owner`: the
    checkpoint owner while a handoff is pending, else the owner), and returns the new lease, or None
    when the condition failed (someone else changed it). That one primitive gives renewals, takeovers,
    graceful handoffs, releases and fenced checkpoints.
    """

    def create_lease(self, namespace: str, lease: Lease) -> bool:
        """Create `lease` unless one exists for its shard; True if created."""
        ...

    def get_lease(self, namespace: str, key: str) -> Lease | None: ...

    def list_leases(self, namespace: str) -> list[Lease]: ...

    def update_lease(self, namespace: str, key: str, *, expected_counter: int, expected_owner: str | None,
                     owner: str | None = KEEP_OWNER, checkpoint: Checkpoint | None = None,
                     owner_switches: int | None = None, checkpoint_owner: str | None = KEEP_OWNER,
                     throughput_kbps: float | None = None) -> Lease | None:
        """`checkpoint_owner`: set or clear (None) the handing-over worker; `throughput_kbps`: record it."""
        ...

    def delete_lease(self, namespace: str, key: str) -> None: ...


def write_position(store: CheckpointStore, namespace: str, key: str, checkpoint: Checkpoint, *,
                   known: Lease | None = None, attempts: int = 5) -> Lease | None:
    """Set `key`'s checkpoint whoever owns the lease (positions, not work: the Lambda wrapper's progress,
    the emulator's mapping): created if missing, else one conditional update on the counter last read
    (`known`, or read now); a lost race reads again, `attempts` times in all. The lease written, or None
    when every attempt lost (with ``attempts=1``: another writer's position stands)."""
    lease = known
    for _ in range(attempts):
        if lease is None:
            lease = store.get_lease(namespace, key)
        if lease is None:
            created = Lease(shard_id=key, checkpoint=checkpoint)
            if store.create_lease(namespace, created):
                return created
            continue
        new = store.update_lease(namespace, key, expected_counter=lease.counter, expected_owner=NO_OWNER_CHECK,
                                 checkpoint=checkpoint)
        if new is not None:
            return new
        lease = None
    return None
