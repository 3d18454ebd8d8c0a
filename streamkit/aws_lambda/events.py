"""Kinesis event shapes for Lambda: typed views over the raw event, and parsing into StreamRecords."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NotRequired, TypedDict

import pybase64

from streamkit.aggregation import MAGIC, decode_parts
from streamkit.records import BODY_DECODERS, StreamRecord

__all__ = [
    "BatchItemFailure",
    "BatchResponse",
    "KinesisEvent",
    "KinesisEventRecord",
    "KinesisRecordPayload",
    "iter_records",
    "parse_event",
]


class KinesisRecordPayload(TypedDict):
    kinesisSchemaVersion: str
    partitionKey: str
    sequenceNumber: str
    data: str
    approximateArrivalTimestamp: float


class KinesisEventRecord(TypedDict):
    kinesis: KinesisRecordPayload
    eventSource: str
    eventVersion: str
    eventID: str
    eventName: str
    invokeIdentityArn: str
    awsRegion: str
    eventSourceARN: str


class KinesisEvent(TypedDict):
    Records: list[KinesisEventRecord]
    window: NotRequired[dict[str, str]]
    state: NotRequired[dict[str, Any]]
    shardId: NotRequired[str]
    eventSourceARN: NotRequired[str]
    isFinalInvokeForWindow: NotRequired[bool]
    isWindowTerminatedEarly: NotRequired[bool]


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class BatchResponse(TypedDict):
    batchItemFailures: list[BatchItemFailure]
    state: NotRequired[dict[str, Any]]


def _shard_of(event_id: str) -> str:
    # eventID is "shardId-000000000000:49590338271490256608559692538361571095921575989136588898"
    return event_id.partition(":")[0]


def iter_records(event: Mapping[str, Any], *, body: str = "bytes") -> Iterator[tuple[int, StreamRecord]]:
    """(index of the Kinesis record in the event, user record) in order; aggregates are expanded."""
    decode = BODY_DECODERS[body]
    fast = StreamRecord._fast
    b64 = pybase64.b64decode
    for i, rec in enumerate(event.get("Records") or ()):
        k = rec["kinesis"]
        data = b64(k["data"])
        seq = k["sequenceNumber"]
        pk = k["partitionKey"]
        ts = k.get("approximateArrivalTimestamp")
        shard = _shard_of(rec.get("eventID", ""))
        arn = rec.get("eventSourceARN")
        try:
            parts = decode_parts(data)
        except ValueError:  # AggregationFormatError: the handler gets it as-is (and can fail it)
            parts = None
        if parts is None:
            yield i, fast(data, pk, seq, None, shard, ts, k.get("explicitHashKey"), arn, decode)
        else:
            for sub, (d, key, ehk) in enumerate(parts):
                yield i, fast(d, key, seq, sub, shard, ts, ehk, arn, decode)


def parse_event(event: Mapping[str, Any], *, body: str = "bytes") -> list[StreamRecord]:
    """Every user record of a Kinesis event, deaggregated, in order."""
    decode = BODY_DECODERS[body]
    fast = StreamRecord._fast
    b64 = pybase64.b64decode
    out: list[StreamRecord] = []
    append = out.append
    for rec in event.get("Records") or ():
        k = rec["kinesis"]
        data = b64(k["data"])
        shard = rec.get("eventID", "").partition(":")[0]
        arn = rec.get("eventSourceARN")
        # Plain records (no KPL magic) skip the aggregation check entirely.
        parts = decode_parts(data) if data[:4] == MAGIC else None
        if parts is None:
            append(fast(data, k["partitionKey"], k["sequenceNumber"], None, shard,
                        k.get("approximateArrivalTimestamp"), k.get("explicitHashKey"), arn, decode))
        else:
            seq, ts = k["sequenceNumber"], k.get("approximateArrivalTimestamp")
            for sub, (d, key, ehk) in enumerate(parts):
                append(fast(d, key, seq, sub, shard, ts, ehk, arn, decode))
    return out
