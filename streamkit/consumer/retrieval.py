"""Fetching records from a shard: GetRecords with a fast response path, and conversion to StreamRecords.

botocore parses a GetRecords response field by field (about 15 us a record); streamkit parses the same
JSON with orjson and decodes the data with pybase64 (about 1 us), through botocore's own
``before-parse`` event so signing, retries and error handling stay botocore's. The fast path is
taken only for calls made through `get_records` below (a thread-local flag), so other users of the
same client see botocore's normal output.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
import pybase64

from streamkit.aggregation import decode_parts
from streamkit.records import StreamRecord

__all__ = ["Fetched", "get_records", "to_stream_records"]

_active = threading.local()
_REGISTERED_ATTR = "_streamkit_fast_get_records"


@dataclass(slots=True)
class Fetched:
    """One GetRecords result, records still raw (``SequenceNumber``, ``Data`` bytes, ``PartitionKey``, ...)."""

    records: list[dict[str, Any]]
    next_iterator: str | None
    millis_behind_latest: int | None
    child_shards: list[dict[str, Any]] = field(default_factory=list)


def _before_parse(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    if not getattr(_active, "on", False) or response_dict.get("status_code") != 200:
        return
    body = orjson.loads(response_dict["body"])
    records = body.pop("Records", [])
    b64 = pybase64.b64decode
    for r in records:
        r["Data"] = b64(r["Data"], validate=True)
    customized_response_dict["_streamkit_records"] = records
    response_dict["body"] = orjson.dumps(body)  # what is left (iterator, lag, child shards) is tiny


def _ensure_hook(client: Any) -> None:
    if getattr(client.meta, _REGISTERED_ATTR, False):
        return
    client.meta.events.register("before-parse.kinesis.GetRecords", _before_parse)
    setattr(client.meta, _REGISTERED_ATTR, True)


def get_records(client: Any, iterator: str, limit: int) -> Fetched:
    """GetRecords through `client`, parsed the fast way. botocore exceptions propagate unchanged."""
    _ensure_hook(client)
    _active.on = True
    try:
        out = client.get_records(ShardIterator=iterator, Limit=limit)
    finally:
        _active.on = False
    records = out.get("_streamkit_records")
    if records is None:  # the hook did not run (a stubbed client, say): take botocore's parse
        records = out.get("Records", [])
    return Fetched(records=records, next_iterator=out.get("NextShardIterator"),
                   millis_behind_latest=out.get("MillisBehindLatest"), child_shards=out.get("ChildShards", []))


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return float(value.timestamp())  # botocore's datetime


def to_stream_records(raw: list[dict[str, Any]], shard_id: str, *, after: tuple[str, int] | None = None,
                      event_source_arn: str | None = None, body: str = "bytes",
                      corrupt: list[tuple[dict[str, Any], Exception]] | None = None) -> list[StreamRecord]:
    """Deaggregate GetRecords records into StreamRecords, in order.

    `after` = (sequence number, sub-sequence number): skip that aggregate's sub-records up to and
    including the sub-sequence (resuming inside an aggregate). A record with the KPL magic and a good
    digest but a malformed body is appended to `corrupt` (when given) and delivered as one plain
    record, so it is reported, never silently lost.
    """
    out: list[StreamRecord] = []
    append = out.append
    for r in raw:
        data = r["Data"]
        seq = r["SequenceNumber"]
        pk = r["PartitionKey"]
        ts = _timestamp(r.get("ApproximateArrivalTimestamp"))
        try:
            parts = decode_parts(data)
        except Exception as exc:  # AggregationFormatError: report, deliver as-is
            if corrupt is not None:
                corrupt.append((r, exc))
            parts = None
        if parts is None:
            if after is not None and seq == after[0]:
                continue
            append(StreamRecord(data, pk, seq, None, shard_id, ts, r.get("ExplicitHashKey"), event_source_arn, body))  # type: ignore[arg-type]
            continue
        skip = after[1] if after is not None and seq == after[0] else -1
        for i, (d, k, e) in enumerate(parts):
            if i > skip:
                append(StreamRecord(d, k, seq, i, shard_id, ts, e, event_source_arn, body))  # type: ignore[arg-type]
    return out
