"""Partition key -> MD5 -> 128-bit hash key -> shard, and the validation Kinesis applies to keys.

Pure: a `ShardMap` is built from ListShards results (plain dicts) by the caller.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streamkit.errors import ValidationError
from streamkit.limits import PARTITION_KEY_MAX_CHARS

__all__ = [
    "MAX_HASH_KEY",
    "MAX_PARTITION_KEY_LENGTH",
    "ShardInfo",
    "ShardMap",
    "hash_key",
    "lane_of",
    "validate_explicit_hash_key",
    "validate_partition_key",
]

MAX_HASH_KEY = (1 << 128) - 1
MAX_PARTITION_KEY_LENGTH = PARTITION_KEY_MAX_CHARS
_md5 = hashlib.md5
_ROUTE_CACHE_LIMIT = 100_000


def validate_partition_key(partition_key: object) -> str:
    """Return `partition_key` if Kinesis would accept it (a str of 1 to 256 characters)."""
    if not isinstance(partition_key, str):
        raise ValidationError(f"partition key must be a str, got {type(partition_key).__name__}")
    n = len(partition_key)
    if n == 0 or n > MAX_PARTITION_KEY_LENGTH:
        shown = partition_key if n <= 40 else partition_key[:40] + "..."
        raise ValidationError(f"partition key must be 1 to 256 characters, got {n}: {shown!r}")
    return partition_key


def validate_explicit_hash_key(explicit_hash_key: object) -> str:
    """Return the canonical decimal string of a hash key in [0, 2**128), or raise `ValidationError`."""
    if isinstance(explicit_hash_key, bool):
        raise ValidationError("explicit hash key must be a decimal string or int, got bool")
    if isinstance(explicit_hash_key, int):
        value = explicit_hash_key
    elif isinstance(explicit_hash_key, str):
        text = explicit_hash_key.strip()
        if not text.isascii() or not text.isdigit():
            raise ValidationError(f"explicit hash key must be a decimal integer, got {explicit_hash_key!r}")
        value = int(text)
    else:
        raise ValidationError(f"explicit hash key must be a decimal string or int, got {type(explicit_hash_key).__name__}")
    if not 0 <= value <= MAX_HASH_KEY:
        raise ValidationError(f"explicit hash key must be in [0, 2**128), got {value}")
    return str(value)


def hash_key(partition_key: str) -> int:
    """The 128-bit hash key Kinesis derives from a partition key (MD5 of its UTF-8 bytes)."""
    return int.from_bytes(_md5(partition_key.encode("utf-8")).digest(), "big")


def lane_of(key: str, lanes: int) -> int:
    """Which of `lanes` parallel lanes a partition key goes to (the emulator's and the dispatcher's rule)."""
    return int.from_bytes(_md5(key.encode("utf-8")).digest()[:8], "big") % lanes


@dataclass(frozen=True, kw_only=True, slots=True)
class ShardInfo:
    """One shard as ListShards describes it."""

    shard_id: str
    starting_hash_key: int
    ending_hash_key: int
    parent_shard_id: str | None = None
    adjacent_parent_shard_id: str | None = None
    starting_sequence_number: str | None = None
    ending_sequence_number: str | None = None

    @property
    def is_open(self) -> bool:
        return self.ending_sequence_number is None

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(p for p in (self.parent_shard_id, self.adjacent_parent_shard_id) if p)

    def contains(self, hash_value: int) -> bool:
        return self.starting_hash_key <= hash_value <= self.ending_hash_key

    @classmethod
    def from_api(cls, shard: Mapping[str, Any]) -> ShardInfo:
        rng = shard["HashKeyRange"]
        seq = shard.get("SequenceNumberRange") or {}
        return cls(
            shard_id=shard["ShardId"],
            starting_hash_key=int(rng["StartingHashKey"]),
            ending_hash_key=int(rng["EndingHashKey"]),
            parent_shard_id=shard.get("ParentShardId"),
            adjacent_parent_shard_id=shard.get("AdjacentParentShardId"),
            starting_sequence_number=seq.get("StartingSequenceNumber"),
            ending_sequence_number=seq.get("EndingSequenceNumber"),
        )


class ShardMap:
    """All shards of a stream; routes hash keys to the open shard whose range holds them."""

    def __init__(self, shards: Iterable[ShardInfo]) -> None:
        self.shards: dict[str, ShardInfo] = {s.shard_id: s for s in shards}
        self.open_shards: list[ShardInfo] = sorted(
            (s for s in self.shards.values() if s.is_open), key=lambda s: s.starting_hash_key
        )
        self._starts = [s.starting_hash_key for s in self.open_shards]
        self._by_key: dict[str, ShardInfo] = {}  # routing cache: producers see the same keys again and again

    @classmethod
    def from_api(cls, shards: Iterable[Mapping[str, Any]]) -> ShardMap:
        return cls(ShardInfo.from_api(s) for s in shards)

    def __len__(self) -> int:
        return len(self.shards)

    def __contains__(self, shard_id: object) -> bool:
        return shard_id in self.shards

    def __getitem__(self, shard_id: str) -> ShardInfo:
        return self.shards[shard_id]

    @property
    def closed_shards(self) -> list[ShardInfo]:
        return [s for s in self.shards.values() if not s.is_open]

    def shard_for_hash(self, hash_value: int) -> ShardInfo:
        """The open shard whose hash-key range holds `hash_value`."""
        i = bisect.bisect_right(self._starts, hash_value) - 1
        if i >= 0:
            shard = self.open_shards[i]
            if shard.contains(hash_value):
                return shard
        raise ValidationError(f"no open shard covers hash key {hash_value} (stream has {len(self.open_shards)} open shards)")

    def shard_for_key(self, partition_key: str, explicit_hash_key: str | None = None) -> ShardInfo:
        """The open shard a record with this key (and optional explicit hash key) is written to."""
        if explicit_hash_key is not None:
            return self.shard_for_hash(int(explicit_hash_key))
        shard = self._by_key.get(partition_key)
        if shard is None:
            shard = self.shard_for_hash(hash_key(partition_key))
            if len(self._by_key) >= _ROUTE_CACHE_LIMIT:
                self._by_key.clear()
            self._by_key[partition_key] = shard
        return shard

    def children_of(self, shard_id: str) -> list[ShardInfo]:
        return [s for s in self.shards.values() if shard_id in s.parents]

    def covers_hash_space(self) -> bool:
        """True when the open shards tile [0, 2**128) with no gap or overlap."""
        expected = 0
        for s in self.open_shards:
            if s.starting_hash_key != expected:
                return False
            expected = s.ending_hash_key + 1
        return expected == MAX_HASH_KEY + 1
