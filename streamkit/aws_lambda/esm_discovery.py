"""Which shards the mapping reads: as AWS does, a parent's records are all handled before its children's.

Shards of the first listing start from the mapping's starting position; shards that appear later
(children of a split or merge) from TRIM_HORIZON. A shard handled to its end by an earlier run (its
stored position is SHARD_END) is done; with LATEST, a shard closed before the mapping started is too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from streamkit.aws_lambda.esm_positions import Positions
from streamkit.checkpoints.model import SHARD_END
from streamkit.hashing import ShardInfo
from streamkit.shard_reader import startable

__all__ = ["ShardDiscovery"]


class ShardDiscovery:
    """The shards listed so far, those done, and those of the first listing. The caller holds the shard lock."""

    def __init__(self, positions: Positions, starting_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]) -> None:
        self.positions = positions
        self.starting_position = starting_position
        self.known: dict[str, ShardInfo] = {}
        self.done: set[str] = set()
        self.initial: set[str] = set()

    def learn(self, shards: Iterable[ShardInfo], *, initial: bool = False, ended: str | None = None) -> list[ShardInfo]:
        """Take a listing (and a shard `ended`: read to its end and handled); the shards ready to read."""
        if ended is not None:
            self.positions.save(ended, SHARD_END)
            self.done.add(ended)
        for shard in shards:
            sid = shard.shard_id
            if sid in self.known:
                continue
            self.known[sid] = shard
            if self.positions.load(sid).checkpoint.is_shard_end:
                self.done.add(sid)  # handled to its end by an earlier run
                continue
            if initial:
                self.initial.add(sid)
                if self.starting_position == "LATEST" and not shard.is_open:
                    self.done.add(sid)  # closed before the mapping started: nothing to read from it
        return startable(list(self.known.values()), lambda sid: sid in self.done)

    def is_open(self, shard_id: str) -> bool:
        return self.known[shard_id].is_open
