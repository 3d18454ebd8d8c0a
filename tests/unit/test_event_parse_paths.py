"""parse_event's two paths: the fast one for events as Lambda sends them, and the careful one it falls back
to at the first surprise. Whatever the event, the records (and which of them are broken) are the same as
the careful path alone gives, so a malformed record fails alone however fast good records go. (~2 s)"""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.aggregation import UserRecord, encode
from streamkit.aws_lambda import events
from streamkit.aws_lambda.events import parse_event
from streamkit.records import BODY_DECODERS

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/s"


def good(i: int, data: bytes) -> dict[str, Any]:
    return {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": f"k{i}", "sequenceNumber": str(1000 + i),
                        "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": 1.5},
            "eventSource": "aws:kinesis", "eventID": f"shardId-000000000001:{1000 + i}", "eventSourceARN": ARN}


AGGREGATE = encode([UserRecord(b"one", "a"), UserRecord(b"two", "b", "7")])
# Text that is not strict base64, including excess padding (which Python 3.11's strict binascii accepts).
BAD_DATA = st.sampled_from(["AAAA====", "AAAAAA===", "YWJj=", "YW Jj", "!!", "YQ", "=YWJj", "YWJj\n", "é", 5, None,
                            "YW=j", "YW\nJ", "!!!!", "YWJ=YWJj", "Y WJ", "YQ==YQ==", "éééé", "YWJj" * 300 + "!!!!"])


def mutate(rec: dict[str, Any], how: str, bad: Any) -> dict[str, Any]:
    if how == "data":
        rec["kinesis"]["data"] = bad
    elif how == "no-event-id":
        del rec["eventID"]
    elif how == "no-key":
        del rec["kinesis"]["partitionKey"]
    elif how == "aggregate":
        rec["kinesis"]["data"] = base64.b64encode(AGGREGATE).decode()
    elif how == "bad-digest":
        rec["kinesis"]["data"] = base64.b64encode(AGGREGATE[:-1] + bytes([AGGREGATE[-1] ^ 1])).decode()
    elif how == "bytes-data":
        rec["kinesis"]["data"] = rec["kinesis"]["data"].encode()
    return rec


def shape(records: list[Any], broken: dict[int, str]) -> list[tuple[Any, ...]]:
    return [(r.data, r.partition_key, r.sequence_number, r.sub_sequence_number, r.shard_id,
             r.approximate_arrival_timestamp, r.explicit_hash_key, r.event_source_arn, id(r) in broken)
            for r in records]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=40),
                          st.sampled_from(["none", "data", "no-event-id", "no-key", "aggregate", "bad-digest",
                                           "bytes-data"]),
                          BAD_DATA), max_size=6))
def test_the_fast_path_gives_what_the_careful_path_gives(spec: list[tuple[bytes, str, Any]]) -> None:
    event = {"Records": [mutate(good(i, data), how, bad) for i, (data, how, bad) in enumerate(spec)]}
    fast_broken: dict[int, str] = {}
    careful_broken: dict[int, str] = {}
    fast = parse_event(event, body="json", broken=fast_broken)
    careful = events._parse_carefully(event, BODY_DECODERS["json"], careful_broken)
    assert shape(fast, fast_broken) == shape(careful, careful_broken)
    assert sorted(fast_broken.values()) == sorted(careful_broken.values())


def test_excess_padding_is_not_base64_on_either_path() -> None:
    ok, bad = good(0, b"abc"), mutate(good(1, b"abc"), "data", "AAAA====")
    broken: dict[int, str] = {}
    records = parse_event({"Records": [ok, bad]}, broken=broken)
    assert [r.data for r in records] == [b"abc", b"AAAA===="]
    assert [id(r) in broken for r in records] == [False, True]


def test_a_well_formed_event_takes_the_fast_path() -> None:
    event = {"Records": [good(0, b"x"), mutate(good(1, b""), "aggregate", None)]}
    records = events._parse_well_formed(event["Records"], BODY_DECODERS["bytes"])
    assert records is not None
    assert [(r.data, r.sub_sequence_number, r.explicit_hash_key) for r in records] == \
        [(b"x", None, None), (b"one", 0, None), (b"two", 1, "7")]
