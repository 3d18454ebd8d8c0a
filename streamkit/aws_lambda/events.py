"""Kinesis event shapes for Lambda: typed views over the raw event, and parsing into StreamRecords."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, NotRequired, TypedDict

import pybase64

from streamkit.aggregation import MAGIC, decode_parts
from streamkit.errors import AggregationFormatError, BodyDecodeError, EventFormatError
from streamkit.records import _UNSET, BODY_DECODERS, StreamRecord, _new_record, record_decoder

log = logging.getLogger("streamkit.lambda")

__all__ = [
    "BatchItemFailure",
    "BatchResponse",
    "EventFormatError",
    "KinesisEvent",
    "KinesisEventRecord",
    "KinesisRecordPayload",
    "parse_event",
]


class KinesisRecordPayload(TypedDict):
    kinesisSchemaVersion: str
    partitionKey: NotRequired[str]  # absent for a record written without a key (AUTO streams)
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


def _undecodable(reason: str) -> Callable[[bytes], Any]:
    def decode(_data: bytes) -> Any:
        raise BodyDecodeError(reason)
    return decode


def _parts(data: bytes, seq: str, shard: str) -> list[tuple[bytes, str, str | None]] | None:
    """An aggregate's sub-records; None (one plain record, reported) for a blob with the magic that is not one."""
    try:
        parts = decode_parts(data)
    except AggregationFormatError as exc:
        log.error("record %s of %s has the KPL magic and a good digest but a malformed body (%s); delivered as one "
                  "plain record", seq, shard, exc)
        return None
    if parts is None:
        log.warning("record %s of %s starts with the KPL magic but its digest does not match; delivered as one plain "
                    "record", seq, shard)
    return parts


def parse_event(event: Mapping[str, Any], *, body: str | type[Any] = "bytes",
                broken: dict[int, str] | None = None) -> list[StreamRecord]:
    """Every user record of a Kinesis event, deaggregated, in order.

    A record whose ``data`` is not valid base64 (or is missing) is returned with its raw text as data
    and, when `broken` is given, ``broken[id(record)]`` says why: the wrapper fails that record alone.
    A record with no sequence number cannot be reported or retried on its own: `EventFormatError`.
    """
    decode = BODY_DECODERS.get(body)  # type: ignore[arg-type]
    if decode is None:
        from streamkit.bodies import body_decoder

        decode = body_decoder(body)  # a model type (`body=Model`)
    decode = record_decoder(decode)
    if type(event) is dict:
        records = event.get("Records")
        if type(records) is list:
            out = _parse_well_formed(records, decode)
            if out is not None:
                return out
    return _parse_carefully(event, decode, broken)


_MAGIC_FIRST = MAGIC[:1]


def _parse_well_formed(records: list[Any], decode: Callable[[bytes], Any]) -> list[StreamRecord] | None:
    """The hot path: an event as Lambda sends it. None at the first thing that is not, with no side effect.

    Only checks that cost nothing on good input sit here (a missing key, a wrong type or bad base64
    raises, and the careful parser starts over and fails just that record): per-record robustness lives
    on the error path. A KPL aggregate that does not decode also goes there, to be logged once. Each
    step here was measured (bench/lambda_wrapper.py): about 0.5 us per record besides the base64 decode.
    """
    new = _new_record
    cls = StreamRecord
    unset = _UNSET
    b64 = pybase64.b64decode
    out: list[StreamRecord] = []
    append = out.append
    shard, prefix = "", ":"  # consistent: an eventID starting with ":" names the shard ""
    try:
        for rec in records:
            k = rec["kinesis"]
            seq = k["sequenceNumber"]
            raw = k["data"]
            if seq.__class__ is not str:
                return None
            data = b64(raw, None, True)  # strict; positional: pybase64 parses keywords slowly (0.39 vs 0.22 us)
            eid = rec["eventID"]
            if not eid.startswith(prefix):  # an event holds one shard's records: split its name once
                shard = eid.partition(":")[0]
                prefix = shard + ":"
            if data[:1] != _MAGIC_FIRST or data[:4] != MAGIC:  # plain records skip the aggregation check
                r = new(cls)
                r._data = data
                # Subscripts where Lambda always sends the field (its absence takes the careful path); the
                # key is absent for records written without one (AUTO streams), which stay on this path.
                r._pk = k.get("partitionKey")
                r._seq = seq
                r._sub = None
                r._shard = shard
                r._ts = k["approximateArrivalTimestamp"]
                r._ehk = k.get("explicitHashKey")  # never in Lambda's events, but kept when there
                r._arn = rec["eventSourceARN"]
                r._decode = decode
                r._body = unset
                append(r)
                continue
            parts = decode_parts(data)
            if parts is None:
                return None
            fast = StreamRecord._fast
            ts, arn = k.get("approximateArrivalTimestamp"), rec.get("eventSourceARN")
            for sub, (d, key, ehk) in enumerate(parts):
                append(fast(d, key, seq, sub, shard, ts, ehk, arn, decode))
    except (LookupError, TypeError, AttributeError, ValueError, AggregationFormatError):
        return None  # binascii.Error is a ValueError
    return out


def _parse_carefully(event: Any, decode: Callable[[bytes], Any], broken: dict[int, str] | None) -> list[StreamRecord]:
    """Any event: a bad record's data or aggregate fails that record only; a bad shape says what is wrong."""
    if not isinstance(event, Mapping):
        raise EventFormatError(f"not a Kinesis event: expected a JSON object, got {type(event).__name__}")
    fast = StreamRecord._fast
    out: list[StreamRecord] = []
    append = out.append
    records = event.get("Records")
    if records is None:  # no records at all (an empty list is as good)
        records = []
    if not isinstance(records, list):
        raise EventFormatError(f"not a Kinesis event: Records is a {type(records).__name__}, not a list")
    for n, rec in enumerate(records):
        k = rec.get("kinesis") if isinstance(rec, Mapping) else None
        if not isinstance(k, Mapping) or not isinstance(k.get("sequenceNumber"), str):
            raise EventFormatError(f"not a Kinesis event: record {n} has no kinesis.sequenceNumber")
        shard = str(rec.get("eventID", "")).partition(":")[0]
        arn = rec.get("eventSourceARN")
        raw = k.get("data")
        try:
            data = _b64decode(raw)
        except (TypeError, ValueError) as exc:
            text = raw.encode("utf-8", "replace") if isinstance(raw, str) else b""
            reason = f"record data is not valid base64: {exc}" if raw is not None else "record has no data"
            bad = fast(text, k.get("partitionKey"), k["sequenceNumber"], None, shard,
                       k.get("approximateArrivalTimestamp"), k.get("explicitHashKey"), arn, _undecodable(reason))
            if broken is not None:
                broken[id(bad)] = reason
            append(bad)
            continue
        parts = _parts(data, k["sequenceNumber"], shard) if data[:4] == MAGIC else None
        if parts is None:
            append(fast(data, k.get("partitionKey"), k["sequenceNumber"], None, shard,
                        k.get("approximateArrivalTimestamp"), k.get("explicitHashKey"), arn, decode))
        else:
            seq, ts = k["sequenceNumber"], k.get("approximateArrivalTimestamp")
            for sub, (d, key, ehk) in enumerate(parts):
                append(fast(d, key, seq, sub, shard, ts, ehk, arn, decode))
    return out


def _b64decode(raw: Any) -> bytes:
    """Strict base64, as the fast path decodes it: binascii.Error (a ValueError) or TypeError if not."""
    return pybase64.b64decode(raw, None, True)
