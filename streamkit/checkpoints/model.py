"""Checkpoints and leases: what the stores keep per shard. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["AT_TIMESTAMP", "LATEST", "SHARD_END", "TRIM_HORIZON", "Checkpoint", "Lease", "lease_key", "split_lease_key"]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A position in a shard: after `sequence_number` (and, inside an aggregate, `sub_sequence_number`).

    Sentinels (`TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`, `SHARD_END`) stand where no record has been
    processed yet, or where a shard has been read to its end.
    """

    sequence_number: str
    sub_sequence_number: int | None = None
    timestamp: float | None = None  # for AT_TIMESTAMP only

    @property
    def is_sentinel(self) -> bool:
        return not self.sequence_number.isdigit()

    @property
    def is_shard_end(self) -> bool:
        return self.sequence_number == "SHARD_END"

    def position(self) -> tuple[int, int]:
        """Sortable (sequence, sub-sequence); a plain record counts as past all of its sub-records."""
        if self.is_sentinel:
            raise ValueError(f"{self.sequence_number} has no position")
        sub = self.sub_sequence_number
        return int(self.sequence_number), (1 << 62) if sub is None else sub

    def __str__(self) -> str:
        if self.sub_sequence_number is None:
            return self.sequence_number
        return f"{self.sequence_number}/{self.sub_sequence_number}"


TRIM_HORIZON = Checkpoint("TRIM_HORIZON")
LATEST = Checkpoint("LATEST")
SHARD_END = Checkpoint("SHARD_END")


def AT_TIMESTAMP(timestamp: float) -> Checkpoint:
    return Checkpoint("AT_TIMESTAMP", timestamp=timestamp)


def lease_key(stream: str | None, shard_id: str) -> str:
    """A lease's key: the shard id, or ``stream:shard_id`` when one table holds several streams (the
    KCL's multi-stream key, `MultiStreamLease.getLeaseKey`, with `stream` = ``account:name:epoch``)."""
    return shard_id if stream is None else f"{stream}:{shard_id}"


def split_lease_key(key: str) -> tuple[str | None, str]:
    """(stream, shard id) of a lease key; shard ids never contain a colon, stream identifiers do."""
    stream, sep, shard_id = key.rpartition(":")
    return (stream, shard_id) if sep else (None, key)


@dataclass(frozen=True, kw_only=True, slots=True)
class Lease:
    """Who holds a shard, how recently they proved it (`counter`), and how far it has been processed.

    `stream` is set when the application reads several streams (the KCL's stream identifier,
    ``account:name:creation-epoch``); the lease's `key` then names both. `checkpoint_owner` is set
    while a lease is handed over gracefully: `owner` is the worker it goes to, `checkpoint_owner` the one
    still finishing its batch and checkpointing (KCL 3's handoff attributes). `throughput_kbps` is what
    the owner last measured (KB/s), which balancing by load reads.
    """

    shard_id: str
    owner: str | None = None
    counter: int = 0
    checkpoint: Checkpoint = TRIM_HORIZON
    parent_shard_ids: tuple[str, ...] = field(default_factory=tuple)
    owner_switches: int = 0
    stream: str | None = None
    checkpoint_owner: str | None = None
    throughput_kbps: float | None = None
    child_shard_ids: tuple[str, ...] = field(default_factory=tuple)
    hash_key_range: tuple[int, int] | None = None
    pending_checkpoint: Checkpoint | None = None

    @property
    def key(self) -> str:
        return lease_key(self.stream, self.shard_id)

    @property
    def actual_owner(self) -> str | None:
        """Who may renew and checkpoint it now: the handing-over worker while a handoff is pending."""
        return self.checkpoint_owner if self.checkpoint_owner is not None else self.owner

    def with_changes(self, **changes: Any) -> Lease:
        return replace(self, **changes)
