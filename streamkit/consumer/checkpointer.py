"""The Checkpointer a processor receives: records progress for its shard, fenced by the lease."""

from __future__ import annotations

from streamkit.checkpoints.model import SHARD_END, Checkpoint
from streamkit.consumer.leases import LeaseHolder
from streamkit.errors import CheckpointError
from streamkit.records import StreamRecord

__all__ = ["Checkpointer"]


class Checkpointer:
    """``checkpoint()`` stores the position after the last record delivered so far; in `shard_ended`
    (the shard read to its end) it stores SHARD_END, as the KCL's checkpointer does there.

    ``checkpoint(record)`` stores the position after `record` (its sub-sequence number included, so
    a restart resumes inside the aggregate). Raises `LeaseLostError` when this worker no longer
    holds the shard, and `CheckpointError` for a position not yet delivered.
    """

    def __init__(self, holder: LeaseHolder) -> None:
        self._holder = holder
        self.last_delivered: StreamRecord | None = None
        self.last_checkpoint: Checkpoint = holder.lease.checkpoint
        self.shard_ended = False

    @property
    def shard_id(self) -> str:
        return self._holder.shard_id

    def checkpoint(self, record: StreamRecord | None = None) -> None:
        if record is None and self.shard_ended:
            self._store(SHARD_END)  # the KCL's checkpoint() after the shard's end: children may start
            return
        target = record if record is not None else self.last_delivered
        if target is None:
            return  # nothing delivered yet: nothing to record
        self.checkpoint_at(target.sequence_number, target.sub_sequence_number)

    def checkpoint_at(self, sequence_number: str, sub_sequence_number: int | None = None) -> None:
        """Store an explicit position (which must have been delivered)."""
        cp = Checkpoint(sequence_number, sub_sequence_number)
        last = self.last_delivered
        if last is None or cp.position() > Checkpoint(last.sequence_number, last.sub_sequence_number).position():
            raise CheckpointError(f"cannot checkpoint {cp} on {self.shard_id}: not delivered yet")
        self._store(cp)

    def checkpoint_shard_end(self) -> None:
        """Record that the shard is finished (only once it has been read to its end); in `shard_ended`
        ``checkpoint()`` does the same."""
        if not self.shard_ended:
            raise CheckpointError(f"{self.shard_id} has not ended; checkpoint records instead")
        self._store(SHARD_END)

    def _store(self, cp: Checkpoint) -> None:
        self._holder.checkpoint(cp)
        self.last_checkpoint = cp
