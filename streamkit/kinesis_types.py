"""The values that cross the Kinesis seam (`streamkit.transport.KinesisTransport`), and stream names and ARNs.

Pure: no boto3, no I/O. Both sides of the seam read them: the engines above it, and the adapters below it
(`streamkit.aws.kinesis.BotoKinesis`, the fakes), so neither imports the other's module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

from streamkit.hashing import ShardInfo
from streamkit.limits import KIB, RECORD_MAX_SIZE_KIB_DEFAULT

__all__ = [
    "LOCAL_ACCOUNT",
    "Fetched",
    "IteratorStart",
    "PutEntry",
    "PutEntryResult",
    "StreamSummary",
    "epoch_seconds",
    "foreign_arn_problem",
    "is_stream_arn",
    "region_of",
    "stream_name_of",
]

#: The account id of everything local (the local stack, the Lambda emulator, the shipped fakes), as
#: LocalStack and moto use: an ARN naming another account is not served locally.
LOCAL_ACCOUNT = "000000000000"

_ARN = re.compile(r"^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream/([A-Za-z0-9_.-]{1,128})$")


def foreign_arn_problem(arn: str, region: str) -> str | None:
    """Why a local server does not hold the stream `arn` names (another account, or a region not the
    server's), in AWS's words; None when it may. AWS answers such a call ResourceNotFoundException."""
    m = _ARN.match(arn.split("/consumer/", 1)[0])
    if m is None:
        return None
    arn_region, account, name = m.groups()
    if account != LOCAL_ACCOUNT or arn_region != region:
        return f"Stream {name} under account {account} not found."
    return None


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
        account = m.group(2) if m else LOCAL_ACCOUNT
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


class PutEntry(TypedDict):
    """One PutRecords request entry, as AWS names its fields (no key: a record for an AUTO stream)."""

    Data: bytes
    PartitionKey: NotRequired[str]
    ExplicitHashKey: NotRequired[str]


class PutEntryResult(TypedDict, total=False):
    """One PutRecords result entry, as AWS returns it: ``ShardId`` and ``SequenceNumber``, or
    ``ErrorCode`` and ``ErrorMessage``."""

    ShardId: str
    SequenceNumber: str
    ErrorCode: str
    ErrorMessage: str


def epoch_seconds(value: Any) -> float | None:
    """A timestamp as the seam carries it: epoch seconds (float), from a number or botocore's datetime."""
    if value is None or type(value) is float:
        return value
    if isinstance(value, int | float):
        return float(value)
    return float(value.timestamp())
