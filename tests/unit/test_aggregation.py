"""KPL codec: round trips, exact sizing, the byte limit, and the plain-record rules."""

from __future__ import annotations

import hashlib

import pytest

from streamkit.aggregation import (
    AGGREGATE_OVERHEAD,
    MAGIC,
    MAX_RECORD_BYTES,
    AggregateBuilder,
    UserRecord,
    aggregated_size,
    build_all,
    decode,
    decode_parts,
    encode,
    is_aggregated,
)
from streamkit.errors import AggregationFormatError, ValidationError


def test_round_trip_keeps_payloads_keys_and_explicit_hash_keys_in_order() -> None:
    records = [
        UserRecord(b"a", "k1"),
        UserRecord(b"", "k2", "123"),
        UserRecord(b"c" * 300, "k1", "340282366920938463463374607431768211455"),
        UserRecord(b"d", "ключ-✓"),
    ]
    assert decode(encode(records)) == records


def test_encoded_blob_is_magic_body_and_md5_of_body() -> None:
    blob = encode([UserRecord(b"x", "k")])
    assert blob[:4] == MAGIC
    assert blob[-16:] == hashlib.md5(blob[4:-16]).digest()
    assert is_aggregated(blob)


def test_blob_without_magic_decodes_to_one_plain_record_with_callers_key() -> None:
    assert decode(b"plain", "pk", "42") == [UserRecord(b"plain", "pk", "42")]
    assert decode_parts(b"plain") is None


def test_blob_with_magic_but_wrong_digest_is_a_plain_record() -> None:
    blob = bytearray(encode([UserRecord(b"x", "k")]))
    blob[-1] ^= 0xFF
    assert not is_aggregated(bytes(blob))
    assert decode(bytes(blob), "outer") == [UserRecord(bytes(blob), "outer")]


def test_magic_alone_or_magic_plus_digest_only_is_plain() -> None:
    assert not is_aggregated(MAGIC)
    assert not is_aggregated(MAGIC + hashlib.md5(b"").digest())


def test_encoding_no_records_is_refused_since_an_empty_aggregate_reads_as_plain() -> None:
    with pytest.raises(ValidationError, match="at least one record"):
        encode([])


@pytest.mark.parametrize("n", [1, 5, 127, 128, 300, 20_000])
def test_aggregated_size_is_exact(n: int) -> None:
    records = [UserRecord(bytes([i % 256]) * (i % 400), f"key-{i % 150}", str(i) if i % 7 == 0 else None)
               for i in range(n)]
    assert aggregated_size(records) == len(encode(records))


def test_builder_size_tracks_build_exactly_as_records_are_added() -> None:
    b = AggregateBuilder()
    assert b.size == len(b.build()) == AGGREGATE_OVERHEAD
    for i in range(500):
        assert b.try_add(b"v" * (i * 3), f"k{i % 37}", str(i) if i % 5 == 0 else None)
        assert b.size == len(b.build())
        assert b.record_size == b.size + len(b.partition_key.encode()) if b.partition_key else True


@pytest.mark.parametrize("payload", [1, 100, 1024, 10 * 1024])
def test_builder_fills_to_within_one_record_of_the_limit_counting_the_outer_key(payload: int) -> None:
    key = "ü" * 100  # 200 UTF-8 bytes: a limit that ignored the key or counted characters would pass it
    b = AggregateBuilder(MAX_RECORD_BYTES)
    while b.try_add(b"x" * payload, key):
        pass
    assert b.record_size <= MAX_RECORD_BYTES
    assert b.record_size == len(b.build()) + len(key.encode())
    assert MAX_RECORD_BYTES - b.record_size < payload + 10  # the next record would not have fitted


def test_refused_record_leaves_the_builder_unchanged() -> None:
    b = AggregateBuilder(200)
    assert b.try_add(b"x" * 100, "a")
    before = (b.size, b.count, b.build())
    assert not b.try_add(b"y" * 100, "new-key")
    assert (b.size, b.count, b.build()) == before


def test_record_too_big_for_an_empty_aggregate_raises_validation_error() -> None:
    with pytest.raises(ValidationError, match="over the 1048576-byte limit"):
        AggregateBuilder().try_add(b"x" * MAX_RECORD_BYTES, "k")


def test_builder_rejects_a_limit_too_small_for_any_record() -> None:
    with pytest.raises(ValidationError):
        AggregateBuilder(10)


def test_outer_key_is_first_records_key_and_explicit_hash_key() -> None:
    b = AggregateBuilder()
    b.try_add(b"1", "first", "99")
    b.try_add(b"2", "second")
    assert (b.partition_key, b.explicit_hash_key, len(b)) == ("first", "99", 2)


def test_build_all_packs_in_order_and_never_passes_the_limit() -> None:
    records = [UserRecord(b"r" * 1000, f"k{i % 1000}") for i in range(5000)]
    aggs = build_all(records)
    assert all(a.record_size <= MAX_RECORD_BYTES for a in aggs)
    assert [r for a in aggs for r in decode(a.build())] == records


def test_many_distinct_keys_round_trip() -> None:
    records = [UserRecord(i.to_bytes(4, "big"), f"device/{i}/ключ") for i in range(5000)]
    assert decode(encode(records)) == records


def test_malformed_body_with_good_digest_raises_aggregation_format_error() -> None:
    body = b"\x1a\x05\x08\x00\x1a\x09x"  # data length 9 runs past its record
    with pytest.raises(AggregationFormatError, match="malformed KPL aggregate"):
        decode(MAGIC + body + hashlib.md5(body).digest())
