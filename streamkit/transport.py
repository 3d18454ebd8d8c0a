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
into a transport; the boto3 side of it is `streamkit.aws.factory`, imported only when it has to make or
wrap a boto3 client. The values crossing the seam are in `streamkit.kinesis_types` (re-exported here), so
the adapters below the seam never import this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from streamkit.hashing import ShardInfo
from streamkit.kinesis_types import (
    Fetched,
    IteratorStart,
    PutEntry,
    PutEntryResult,
    StreamSummary,
    is_stream_arn,
    region_of,
    stream_name_of,
)

__all__ = [
    "Fetched",
    "IteratorStart",
    "KinesisTransport",
    "PutEntry",
    "PutEntryResult",
    "StreamSummary",
    "as_kinesis",
    "is_stream_arn",
    "region_of",
    "stream_name_of",
]

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

    def put_records(self, stream: str, records: Sequence[PutEntry]) -> list[PutEntryResult]:
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
    from streamkit.aws.factory import boto_kinesis

    return boto_kinesis(client, stream=stream, **client_options)


def _is_boto_client(obj: Any) -> bool:
    meta = getattr(obj, "meta", None)
    return meta is not None and hasattr(meta, "service_model") and hasattr(meta, "events")
