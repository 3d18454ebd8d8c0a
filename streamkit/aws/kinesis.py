"""`BotoKinesis`: the `KinesisTransport` over a boto3 Kinesis client.

Three things live here so nothing else needs botocore:

- **Errors**: every call goes through `call_kinesis`, so callers see the `streamkit.errors` tree only.
- **Fast GetRecords**: botocore parses a GetRecords response field by field (about 15 us a record);
  here the same JSON is parsed with orjson and the data decoded with pybase64 (about 1 us), through
  botocore's own ``before-parse`` event so signing, retries and error handling stay botocore's. The
  fast path is taken only for calls made through this transport (a thread-local flag), so other users
  of the same client see botocore's normal output.
- **PutRecords bodies** written directly (`streamkit.aws.wire`), and the SubscribeToShard event stream
  made tolerant of servers that omit its ``initial-response`` event (kinesis-local): when the first
  event is something else it is kept for the iterator and an empty initial response stands in.
  Against AWS, which always sends the initial response first, nothing changes.

Streams are named or given by ARN: an ARN is passed as ``StreamARN``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import orjson
import pybase64
from botocore import eventstream
from botocore.exceptions import BotoCoreError, ClientError

from streamkit.aws import wire
from streamkit.aws.errors import call_kinesis, error_code, translate_error
from streamkit.hashing import ShardInfo
from streamkit.kinesis_types import (
    Fetched,
    IteratorStart,
    PutEntry,
    PutEntryResult,
    StreamSummary,
    epoch_seconds,
    is_stream_arn,
    stream_name_of,
)
from streamkit.limits import RECORD_MAX_SIZE_KIB_DEFAULT

__all__ = ["BotoKinesis", "stream_params", "tolerate_missing_initial_response"]

_active = threading.local()
_REGISTERED_ATTR = "_streamkit_fast_get_records"


def stream_params(stream: str) -> dict[str, str]:
    """``StreamARN`` for an ARN, ``StreamName`` for a name."""
    return {"StreamARN": stream} if is_stream_arn(stream) else {"StreamName": stream}


def _before_parse(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    if not getattr(_active, "on", False) or response_dict.get("status_code") != 200:
        return
    body = orjson.loads(response_dict["body"])
    records = body.pop("Records", [])
    b64 = pybase64.b64decode
    for r in records:
        r["Data"] = b64(r["Data"], None, True)  # validate; positional: pybase64 parses keywords slowly
    customized_response_dict["_streamkit_records"] = records
    response_dict["body"] = orjson.dumps(body)  # what is left (iterator, lag, child shards) is tiny



def _child(c: dict[str, Any]) -> ShardInfo:
    ps = c.get("ParentShards") or []
    rng = c.get("HashKeyRange") or {"StartingHashKey": "0", "EndingHashKey": "0"}
    return ShardInfo(shard_id=c["ShardId"], starting_hash_key=int(rng["StartingHashKey"]),
                     ending_hash_key=int(rng["EndingHashKey"]), parent_shard_id=ps[0] if ps else None,
                     adjacent_parent_shard_id=ps[1] if len(ps) > 1 else None)


def _position(start: IteratorStart, type_key: str, sequence_key: str) -> dict[str, Any]:
    """GetShardIterator's (``ShardIteratorType``, ``StartingSequenceNumber``) or SubscribeToShard's
    ``StartingPosition`` (``Type``, ``SequenceNumber``) for `start`."""
    out: dict[str, Any] = {type_key: start.type}
    if start.sequence_number is not None:
        out[sequence_key] = start.sequence_number
    if start.timestamp is not None:
        out["Timestamp"] = start.timestamp
    return out


class _InitialResponse:
    headers: ClassVar[dict[str, str]] = {":event-type": "initial-response", ":message-type": "event"}
    payload = b"{}"


_patched = threading.Lock()
_patch_done = False


def tolerate_missing_initial_response() -> None:
    global _patch_done
    with _patched:
        if _patch_done:
            return
        original = eventstream.EventStream.get_initial_response

        def get_initial_response(self: Any) -> Any:
            try:
                first = next(self._event_generator)
            except StopIteration:
                return original(self)  # raises NoInitialResponseError, as before
            if first.headers.get(":event-type") == "initial-response":
                return first
            self._event_generator = itertools.chain([first], self._event_generator)
            return _InitialResponse()

        eventstream.EventStream.get_initial_response = get_initial_response
        _patch_done = True


class BotoKinesis:
    """A `KinesisTransport` over `client` (a boto3 Kinesis client), which stays usable as it was."""

    def __init__(self, client: Any) -> None:
        self.client = client
        wire.install(client)
        if not getattr(client.meta, _REGISTERED_ATTR, False):
            client.meta.events.register("before-parse.kinesis.GetRecords", _before_parse)
            setattr(client.meta, _REGISTERED_ATTR, True)

    def __repr__(self) -> str:
        return f"BotoKinesis({getattr(self.client.meta, 'endpoint_url', '?')})"

    def describe_stream_summary(self, stream: str) -> StreamSummary:
        out = call_kinesis(self.client.describe_stream_summary, stream_name_of(stream), **stream_params(stream))
        s = out["StreamDescriptionSummary"]
        warm = (s.get("WarmThroughput") or {}).get("CurrentMiBps")
        return StreamSummary(name=s["StreamName"], arn=s["StreamARN"], status=s["StreamStatus"],
                             open_shards=s.get("OpenShardCount"),
                             stream_mode=(s.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED"),
                             retention_hours=int(s.get("RetentionPeriodHours", 24)),
                             max_record_size_kib=int(s.get("MaxRecordSizeInKiB") or RECORD_MAX_SIZE_KIB_DEFAULT),
                             record_distribution=str(s.get("RecordDistributionStrategy") or "USER_PARTITION_KEY"),
                             warm_throughput_mibps=None if warm is None else int(warm),
                             created_at=epoch_seconds(s.get("StreamCreationTimestamp")))

    def list_shards(self, stream: str) -> list[ShardInfo]:
        name = stream_name_of(stream)
        out = call_kinesis(self.client.list_shards, name, **stream_params(stream))
        shards = [ShardInfo.from_api(s) for s in out.get("Shards", [])]
        seen = {s.shard_id for s in shards}
        while out.get("NextToken"):
            out = call_kinesis(self.client.list_shards, name, NextToken=out["NextToken"])
            new = [ShardInfo.from_api(s) for s in out.get("Shards", []) if s["ShardId"] not in seen]
            if not new:
                break  # a server that ignores MaxResults may hand back the same page
            shards.extend(new)
            seen.update(s.shard_id for s in new)
        return shards

    def get_shard_iterator(self, stream: str, shard_id: str, start: IteratorStart) -> str:
        out = call_kinesis(self.client.get_shard_iterator, stream_name_of(stream), ShardId=shard_id,
                           **stream_params(stream), **_position(start, "ShardIteratorType", "StartingSequenceNumber"))
        return str(out["ShardIterator"])

    def get_records(self, iterator: str, limit: int) -> Fetched:
        _active.on = True
        try:
            out = call_kinesis(self.client.get_records, None, ShardIterator=iterator, Limit=limit)
        finally:
            _active.on = False
        records = out.get("_streamkit_records")
        if records is None:  # the hook did not run: botocore's parse
            records = out.get("Records", [])
        for r in records:
            ts = r.get("ApproximateArrivalTimestamp")
            if ts is not None and not isinstance(ts, float):
                r["ApproximateArrivalTimestamp"] = epoch_seconds(ts)
        return Fetched(records=records, next_iterator=out.get("NextShardIterator"),
                       millis_behind_latest=out.get("MillisBehindLatest"),
                       child_shards=[_child(c) for c in out.get("ChildShards") or []])

    def put_records(self, stream: str, records: Sequence[PutEntry]) -> list[PutEntryResult]:
        out = call_kinesis(self.client.put_records, stream_name_of(stream), Records=records, **stream_params(stream))
        return list(out["Records"])

    def create_stream(self, stream: str, shards: int | None, *, on_demand: bool = False,
                      max_record_size_kib: int | None = None, distribution: str | None = None) -> None:
        params: dict[str, Any] = {"StreamName": stream_name_of(stream)}
        if on_demand:
            params["StreamModeDetails"] = {"StreamMode": "ON_DEMAND"}
        else:
            params["ShardCount"] = shards
        if max_record_size_kib is not None:
            params["MaxRecordSizeInKiB"] = max_record_size_kib
        if distribution is not None:
            params["RecordDistributionStrategy"] = distribution
        call_kinesis(self.client.create_stream, None, **params)

    def _arn(self, stream: str) -> str:
        """The newer APIs take only StreamARN."""
        return stream if is_stream_arn(stream) else self.describe_stream_summary(stream).arn

    def update_max_record_size(self, stream: str, max_record_size_kib: int) -> None:
        call_kinesis(self.client.update_max_record_size, stream_name_of(stream), StreamARN=self._arn(stream),
                     MaxRecordSizeInKiB=max_record_size_kib)

    def update_record_distribution(self, stream: str, distribution: str) -> None:
        call_kinesis(self.client.update_stream_record_distribution_strategy, stream_name_of(stream),
                     StreamARN=self._arn(stream), RecordDistributionStrategy=distribution)

    def update_stream_mode(self, stream: str, mode: str, *, warm_throughput_mibps: int | None = None) -> None:
        params: dict[str, Any] = {"StreamARN": self._arn(stream), "StreamModeDetails": {"StreamMode": mode}}
        if warm_throughput_mibps is not None:
            params["WarmThroughputMiBps"] = warm_throughput_mibps
        call_kinesis(self.client.update_stream_mode, stream_name_of(stream), **params)

    def delete_stream(self, stream: str) -> None:
        call_kinesis(self.client.delete_stream, stream_name_of(stream), **stream_params(stream))

    def register_stream_consumer(self, stream_arn: str, name: str) -> str:
        try:
            out = self.client.register_stream_consumer(StreamARN=stream_arn, ConsumerName=name)
            return str(out["Consumer"]["ConsumerARN"])
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) != "ResourceInUseException":
                raise translate_error(exc) from exc
        out = call_kinesis(self.client.describe_stream_consumer, None, StreamARN=stream_arn, ConsumerName=name)
        return str(out["ConsumerDescription"]["ConsumerARN"])

    def stream_consumer_status(self, consumer_arn: str) -> str:
        out = call_kinesis(self.client.describe_stream_consumer, None, ConsumerARN=consumer_arn)
        return str(out["ConsumerDescription"]["ConsumerStatus"])

    def subscribe_to_shard(self, consumer_arn: str, shard_id: str, start: IteratorStart) -> Iterator[Fetched]:
        tolerate_missing_initial_response()
        out = call_kinesis(self.client.subscribe_to_shard, None, ConsumerARN=consumer_arn, ShardId=shard_id,
                           StartingPosition=_position(start, "Type", "SequenceNumber"))
        try:
            for event in out["EventStream"]:
                ev = event.get("SubscribeToShardEvent")
                if ev is None:
                    continue
                records = ev.get("Records", [])
                for r in records:
                    r["ApproximateArrivalTimestamp"] = epoch_seconds(r.get("ApproximateArrivalTimestamp"))
                ended = ev.get("ContinuationSequenceNumber") is None
                yield Fetched(records=records, next_iterator=None if ended else ev["ContinuationSequenceNumber"],
                              millis_behind_latest=ev.get("MillisBehindLatest"),
                              child_shards=[_child(c) for c in ev.get("ChildShards") or []])
                if ended:
                    return
        except (ClientError, BotoCoreError) as exc:
            raise translate_error(exc) from exc


