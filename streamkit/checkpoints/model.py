"""Checkpoints and leases: what the stores keep per shard. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["AT_TIMESTAMP", "LATEST", "SHARD_END", "TRIM_HORIZON", "Checkpoint", "Lease"]


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


@dataclass(frozen=True, kw_only=True, slots=True)
class Lease:
    """Who holds a shard, how recently they proved it (`counter`), and how far it has been processed."""

    shard_id: str
    owner: str | None = None
    counter: int = 0
    checkpoint: Checkpoint = TRIM_HORIZON
    parent_shard_ids: tuple[str, ...] = field(default_factory=tuple)
    owner_switches: int = 0

    def with_changes(self, **changes: Any) -> Lease:
        return replace(self, **changes)
