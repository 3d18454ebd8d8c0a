"""Kinesis event shapes for Lambda: typed views over the raw event, and parsing into StreamRecords."""

from __future__ import annotations

from collections.abc import Mapping
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
