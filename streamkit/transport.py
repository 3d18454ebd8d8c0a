"""The Kinesis transport seam: the calls streamkit makes, typed, with no boto3.

Every engine (producer, consumer, shard reader, Lambda emulator, dispatcher, replay, estimator) talks
to Kinesis through a `KinesisTransport`. Two implementations ship:

- `streamkit.aws.BotoKinesis`: a boto3 client behind it; the only place AWS errors are translated
  into the `streamkit.errors` tree (with `code` and `retryable`), GetRecords is parsed the fast way and
  PutRecords bodies are written directly;
- `streamkit.testing.FakeKinesis`: shards, iterators, resharding and failures in memory, with an
  injected clock, for unit tests with no server.

A stream is named by its name or its ARN (``arn:aws:kinesis:REGION:ACCOUNT:stream/NAME``) wherever
one is taken; `stream_name_of` gives the name either way (checkpoint namespaces use it, so they stay
stable whichever form a user gives).

`as_kinesis(client)` turns what a user passes as ``client=`` (None, a boto3 client, or a transport)
into a transport; boto3 is imported only when it has to make or wrap a boto3 client.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from streamkit.hashing import ShardInfo
from streamkit.limits import KIB, RECORD_MAX_SIZE_KIB_DEFAULT

__all__ = [
    "Fetched",
    "IteratorStart",
    "KinesisTransport",
    "PutEntryResult",
    "StreamSummary",
    "as_kinesis",
    "is_stream_arn",
    "region_of",
    "stream_name_of",
]

_ARN = re.compile(r"^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream/([A-Za-z0-9_.-]{1,128})$")


def is_stream_arn(stream: str) -> bool:
    return _ARN.match(stream) is not None


def region_of(stream: str) -> str | None:
    """The region an ARN names (where calls for that stream must go); None for a plain name."""
    m = _ARN.match(stream)
    return m.group(1) if m else None


def stream_name_of(stream: str) -> str:
    """The stream's name, for a name or an ARN."""
    m = _ARN.match(stream)
    return m.group(3) if m else stream


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamSummary:
    """DescribeStreamSummary, as the engines use it: the stream's real limits and settings.

    A server that does not know a setting (kinesalite, kinesis-local) leaves AWS's default: 1,024 KiB
    records, USER_PARTITION_KEY distribution, no warm throughput.
    """

    name: str
    arn: str
    status: str
    open_shards: int | None = None
    stream_mode: str = "PROVISIONED"  # or ON_DEMAND
    retention_hours: int = 24
    max_record_size_kib: int = RECORD_MAX_SIZE_KIB_DEFAULT
    record_distribution: str = "USER_PARTITION_KEY"  # or AUTO: the service places records, keys are ignored
    warm_throughput_mibps: int | None = None
    #: StreamCreationTimestamp, epoch seconds (None if the server does not say).
    created_at: float | None = None

    @property
    def identifier(self) -> str:
        """The KCL's multi-stream identifier, ``account:name:creation-epoch-seconds``
        (`StreamIdentifier.serialize` in the KCL): what names this stream's leases in a shared table."""
        m = _ARN.match(self.arn)
        account = m.group(2) if m else "000000000000"
        return f"{account}:{self.name}:{int(self.created_at or 0)}"

    @property
    def max_record_bytes(self) -> int:
        """Data + partition key of one record, at most."""
        return self.max_record_size_kib * KIB

    @property
    def auto_distribution(self) -> bool:
        return self.record_distribution == "AUTO"


@dataclass(frozen=True, kw_only=True, slots=True)
class IteratorStart:
    """Where a shard iterator (or a SubscribeToShard) starts."""

    type: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"]
    sequence_number: str | None = None
    timestamp: float | None = None


@dataclass(slots=True)
class Fetched:
    """One GetRecords result (or one SubscribeToShard event).

    ``records`` are raw: ``SequenceNumber`` (str), ``Data`` (bytes), ``PartitionKey`` (str, absent for a
    keyless record), ``ApproximateArrivalTimestamp`` (float seconds, or absent), ``ExplicitHashKey``.
    ``next_iterator`` is None once the shard is read to its end; its children are in ``child_shards``.
    """

    records: list[dict[str, Any]]
    next_iterator: str | None
    millis_behind_latest: int | None
    child_shards: list[ShardInfo] = field(default_factory=list)


#: One PutRecords result entry, as AWS returns it: ``{"ShardId", "SequenceNumber"}`` or
#: ``{"ErrorCode", "ErrorMessage"}``.
PutEntryResult = dict[str, Any]


@runtime_checkable
class KinesisTransport(Protocol):
    """The Kinesis calls streamkit makes. Every failure is a `streamkit.errors.StreamkitError`."""

    def describe_stream_summary(self, stream: str) -> StreamSummary: ...

    def list_shards(self, stream: str) -> list[ShardInfo]:
        """Every shard, open and closed (all pages)."""
        ...

    def get_shard_iterator(self, stream: str, shard_id: str, start: IteratorStart) -> str: ...

    def get_records(self, iterator: str, limit: int) -> Fetched:
        """Raises `ExpiredIteratorError` for an iterator over 5 minutes old."""
        ...

    def put_records(self, stream: str, records: Sequence[dict[str, Any]]) -> list[PutEntryResult]:
        """``records``: ``{"Data": bytes, "PartitionKey": str, "ExplicitHashKey"?: str}``; one result per entry, in order."""
        ...

    def create_stream(self, stream: str, shards: int | None, *, on_demand: bool = False,
                      max_record_size_kib: int | None = None, distribution: str | None = None) -> None:
        """Provisioned with `shards`, or ``on_demand`` (no shard count: the service starts with 4)."""
        ...

    def update_max_record_size(self, stream: str, max_record_size_kib: int) -> None: ...

    def update_record_distribution(self, stream: str, distribution: str) -> None:
        """``AUTO`` or ``USER_PARTITION_KEY`` (on-demand streams only)."""
        ...

    def update_stream_mode(self, stream: str, mode: str, *, warm_throughput_mibps: int | None = None) -> None: ...

    def delete_stream(self, stream: str) -> None: ...

    def register_stream_consumer(self, stream_arn: str, name: str) -> str:
        """The consumer's ARN (registered now, or already)."""
        ...

    def stream_consumer_status(self, consumer_arn: str) -> str: ...

    def subscribe_to_shard(self, consumer_arn: str, shard_id: str, start: IteratorStart) -> Iterator[Fetched]:
        """The events of one subscription (about 5 minutes); the last of a shard has no next iterator."""
        ...


def as_kinesis(client: Any = None, *, stream: str | None = None, **client_options: Any) -> KinesisTransport:
    """A transport for ``client=``: a transport as is, a boto3 client wrapped, None a new boto3 client.

    A new client for a `stream` given as an ARN goes to the ARN's region unless ``region=`` says
    otherwise (a stream in another region or account is reached by its ARN).
    """
    if client is not None and not _is_boto_client(client):
        return client  # type: ignore[no-any-return]
    from streamkit.aws.clients import aws_client
    from streamkit.aws.kinesis import BotoKinesis

    if client is None and stream is not None and client_options.get("region") is None and region_of(stream):
        client_options["region"] = region_of(stream)

    return BotoKinesis(client if client is not None else aws_client("kinesis", **client_options))


def _is_boto_client(obj: Any) -> bool:
    meta = getattr(obj, "meta", None)
    return meta is not None and hasattr(meta, "service_model") and hasattr(meta, "events")
