"""Bad input to `decode`: a plain record or AggregationFormatError, nothing else, quickly, bounded memory."""

from __future__ import annotations

import hashlib
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamkit.aggregation import (
    MAGIC,
    UserRecord,
    _decode_canonical,
    _decode_general,
    decode,
    encode,
)
from streamkit.errors import AggregationFormatError


def wrap(body: bytes) -> bytes:
    """A blob with the magic and a correct digest around an arbitrary body."""
    return MAGIC + body + hashlib.md5(body).digest()


def decode_or_format_error(blob: bytes) -> list[UserRecord] | None:
    try:
        return decode(blob, "outer")
    except AggregationFormatError:
        return None


VALID = encode([UserRecord(b"alpha", "k1"), UserRecord(b"", "k2", "17"), UserRecord(b"g" * 200, "k1")])
VALID_BODY = VALID[4:-16]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x1a\x80", "truncated varint"),
        (b"\x1a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "varint longer than 10 bytes"),
        (b"\x1a\x02\x08\x00", "without data"),
        (b"\x1a\x03\x1a\x01x", "without partition_key_index"),
        (b"\x0a\x01k\x1a\x05\x08\x05\x1a\x01x", "partition_key_index 5 outside a table of 1"),
        (b"\x0a\x01k\x1a\x07\x08\x00\x10\x03\x1a\x01x", "explicit_hash_key_index 3 outside a table of 0"),
        (b"\x08\x01", "wire type 0, expected length-delimited"),
        (b"\x0a\x01k\x1a\x05\x0a\x00\x1a\x01x", "record field 1 has wire type 2"),
        (b"\x0a\x01k\x1a\x04\x08\x00\x18\x01", "record data has wire type 0"),
        (b"\x0a\x02\xff\xfe\x1a\x05\x08\x00\x1a\x01x", "not valid text"),
        (b"\x0b", "field 1 has wire type 3"),
        (b"\x2b", "unsupported wire type 3"),
        (b"\x00", "field number 0"),
        (b"\x1a\x80\x80\x80\x80\x80\x80\x80\x80\x10", "runs past the end"),
        (b"\x0a\x01k\x1a\x0c\x08\x00\x1a\x80\x80\x80\x80\x80\x80\x80\x01", "runs past the end"),
    ],
)
def test_malformed_bodies_raise_aggregation_format_error(body: bytes, reason: str) -> None:
    with pytest.raises(AggregationFormatError, match=reason):
        decode(wrap(body))


def test_unknown_fields_are_skipped_as_protobuf_requires() -> None:
    tag_field = b"\x22\x03\x0a\x01t"  # Record.tags (field 4): a Tag message, ignored
    body = b"\x0a\x01k" + b"\x1a\x0a\x08\x00" + tag_field + b"\x1a\x01x" + b"\x28\x07"  # + unknown varint field 5
    assert decode(wrap(body)) == [UserRecord(b"x", "k")]


def test_absurd_length_prefix_allocates_nothing_near_its_claim() -> None:
    body = b"\x1a\xff\xff\xff\xff\xff\xff\xff\x7f" + b"x" * 16  # claims ~2**63 bytes
    tracemalloc.start()
    try:
        with pytest.raises(AggregationFormatError):
            decode(wrap(body))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_after_the_magic_never_raise_anything_else(tail: bytes) -> None:
    # Without a matching digest the blob is a plain record, whole.
    assert decode_or_format_error(MAGIC + tail) == [UserRecord(MAGIC + tail, "outer")]
    # With one, the body is parsed: records, or AggregationFormatError, never another exception.
    out = decode_or_format_error(wrap(tail))
    assert out is None or all(isinstance(r, UserRecord) for r in out)


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID_BODY) * 8 - 1), st.integers(min_value=0, max_value=len(VALID_BODY)))
def test_bit_flips_and_truncations_of_valid_blobs(bit: int, cut: int) -> None:
    flipped = bytearray(VALID_BODY)
    flipped[bit // 8] ^= 1 << (bit % 8)
    for body in (bytes(flipped), VALID_BODY[:cut]):
        decode_or_format_error(wrap(body))  # with a recomputed digest: the parser sees the damage
        assert decode(MAGIC + body + VALID[-16:], "outer") in ([UserRecord(MAGIC + body + VALID[-16:], "outer")],
                                                                decode(VALID))


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID_BODY) * 8 - 1))
def test_fast_path_never_accepts_what_the_general_parser_rejects(bit: int) -> None:
    flipped = bytearray(VALID_BODY)
    flipped[bit // 8] ^= 1 << (bit % 8)
    fast = _decode_canonical(bytes(flipped))
    if fast is not None:
        assert fast == _decode_general(bytes(flipped))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=20000), st.text(min_size=1, max_size=5),
                          st.none() | st.integers(0, 2**128 - 1).map(str)), min_size=1, max_size=20))
def test_fast_and_general_parsers_agree_on_valid_aggregates(recs: list[tuple[bytes, str, str | None]]) -> None:
    body = encode([UserRecord(*r) for r in recs])[4:-16]
    assert _decode_general(body) == recs
    assert _decode_canonical(body) in (None, recs)
