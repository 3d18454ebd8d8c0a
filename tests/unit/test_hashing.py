"""Partition keys to hash keys to shards, and key validation."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamkit.errors import ValidationError
from streamkit.hashing import (
    MAX_HASH_KEY,
    ShardInfo,
    ShardMap,
    hash_key,
    validate_explicit_hash_key,
    validate_partition_key,
)


def even_shards(n: int) -> list[dict[str, object]]:
    step = (MAX_HASH_KEY + 1) // n
    out = []
    for i in range(n):
        end = MAX_HASH_KEY if i == n - 1 else (i + 1) * step - 1
        out.append({"ShardId": f"shardId-{i:012d}",
                    "HashKeyRange": {"StartingHashKey": str(i * step), "EndingHashKey": str(end)},
                    "SequenceNumberRange": {"StartingSequenceNumber": "1"}})
    return out


def test_hash_key_is_md5_of_utf8_as_big_endian_128_bit_integer() -> None:
    assert hash_key("ключ") == int(hashlib.md5("ключ".encode()).hexdigest(), 16)


@pytest.mark.parametrize("key", ["a", "k" * 256, "ж" * 256, "🙂"])
def test_valid_partition_keys_pass(key: str) -> None:
    assert validate_partition_key(key) == key


@pytest.mark.parametrize(("key", "message"), [("", "1 to 256 characters, got 0"),
                                               ("k" * 257, "got 257"),
                                               (b"bytes", "must be a str"),
                                               (None, "must be a str")])
def test_invalid_partition_keys_raise_a_clear_error(key: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_partition_key(key)


@pytest.mark.parametrize(("value", "expected"), [("0", "0"), (str(MAX_HASH_KEY), str(MAX_HASH_KEY)), (42, "42"),
                                                  (" 7 ", "7")])
def test_valid_explicit_hash_keys_are_normalised(value: object, expected: str) -> None:
    assert validate_explicit_hash_key(value) == expected


@pytest.mark.parametrize("value", [str(MAX_HASH_KEY + 1), "-1", -1, "1e5", "0x10", "", True, 1.5, "١٢"])
def test_invalid_explicit_hash_keys_raise(value: object) -> None:
    with pytest.raises(ValidationError):
        validate_explicit_hash_key(value)


@given(st.text(min_size=1, max_size=256))
def test_every_key_maps_to_exactly_the_shard_whose_range_holds_its_hash(key: str) -> None:
    try:
        key.encode()
    except UnicodeEncodeError:
        return
    shards = ShardMap.from_api(even_shards(7))
    shard = shards.shard_for_key(key)
    assert shard.contains(hash_key(key))
    assert sum(s.contains(hash_key(key)) for s in shards.open_shards) == 1


def test_explicit_hash_key_overrides_the_partition_key() -> None:
    shards = ShardMap.from_api(even_shards(4))
    assert shards.shard_for_key("anything", "0").shard_id == "shardId-000000000000"
    assert shards.shard_for_key("anything", str(MAX_HASH_KEY)).shard_id == "shardId-000000000003"


def test_closed_shards_are_kept_but_never_routed_to() -> None:
    raw = even_shards(2)
    parent = {"ShardId": "shardId-000000000009", "HashKeyRange": {"StartingHashKey": "0",
              "EndingHashKey": str(MAX_HASH_KEY)},
              "SequenceNumberRange": {"StartingSequenceNumber": "1", "EndingSequenceNumber": "5"}}
    for r in raw:
        r["ParentShardId"] = "shardId-000000000009"
    shards = ShardMap.from_api([parent, *raw])
    assert [s.shard_id for s in shards.closed_shards] == ["shardId-000000000009"]
    assert shards.shard_for_hash(0).shard_id == "shardId-000000000000"
    assert [c.shard_id for c in shards.children_of("shardId-000000000009")] == [
        "shardId-000000000000", "shardId-000000000001"]
    assert shards.covers_hash_space()


def test_a_gap_in_the_open_ranges_is_reported() -> None:
    shards = ShardMap([ShardInfo(shard_id="s", starting_hash_key=10, ending_hash_key=MAX_HASH_KEY)])
    assert not shards.covers_hash_space()
    with pytest.raises(ValidationError, match="no open shard covers hash key 3"):
        shards.shard_for_hash(3)
