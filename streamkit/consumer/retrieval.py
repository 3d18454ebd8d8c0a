"""GetRecords records -> StreamRecords: deaggregation, resuming inside an aggregate, corrupt aggregates reported.

(The fast GetRecords parse lives in the boto3 adapter, `streamkit.aws.kinesis`.)
"""

from __future__ import annotations

from typing import Any

from streamkit.aggregation import decode_parts
from streamkit.hashing import hash_key
from streamkit.kinesis_types import epoch_seconds
from streamkit.records import BodyMode, StreamRecord, decoder_for
from streamkit.transport import Fetched

__all__ = ["Fetched", "to_stream_records"]



def to_stream_records(raw: list[dict[str, Any]], shard_id: str, *, after: tuple[str, int] | None = None,
                      event_source_arn: str | None = None, body: BodyMode | type[Any] = "bytes",
                      corrupt: list[tuple[dict[str, Any], Exception]] | None = None,
                      hash_range: tuple[int, int] | None = None) -> list[StreamRecord]:
    """Deaggregate GetRecords records into StreamRecords, in order.

    `after` = (sequence number, sub-sequence number): skip that aggregate's sub-records up to and
    including the sub-sequence (resuming inside an aggregate). A record with the KPL magic and a good
    digest but a malformed body is appended to `corrupt` (when given) and delivered as one plain
    record, so it is reported, never silently lost.

    `hash_range` (the shard's, given for a child of a split): an aggregate's sub-record whose hash lies outside
    it is skipped, as the KCL does. A producer whose shard map had not seen the split put it there with its
    aggregate; it puts such records again into the shard that holds their key (producer/sender.py), so each
    is delivered once, and in its key's order.
    """
    out: list[StreamRecord] = []
    append = out.append
    decode = decoder_for(body)  # once per call, not per record (a third of a plain record's construction)
    make = StreamRecord._fast
    for r in raw:
        data = r["Data"]
        seq = r["SequenceNumber"]
        pk = r.get("PartitionKey")
        ts = epoch_seconds(r.get("ApproximateArrivalTimestamp"))
        try:
            parts = decode_parts(data)
        except Exception as exc:  # AggregationFormatError: report, deliver as-is
            if corrupt is not None:
                corrupt.append((r, exc))
            parts = None
        if parts is None:
            if after is not None and seq == after[0]:
                continue
            append(make(data, pk, seq, None, shard_id, ts, r.get("ExplicitHashKey"), event_source_arn, decode))
            continue
        skip = after[1] if after is not None and seq == after[0] else -1
        for i, (d, k, e) in enumerate(parts):
            if i > skip:
                if hash_range is not None:
                    h = int(e) if e is not None else hash_key(k)
                    if not hash_range[0] <= h <= hash_range[1]:
                        continue
                append(make(d, k, seq, i, shard_id, ts, e, event_source_arn, decode))
    return out
