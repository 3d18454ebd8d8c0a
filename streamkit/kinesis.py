"""Stream administration over the transport: describe, list shards, create, wait, delete.

Each function takes ``client``: a `KinesisTransport`, a boto3 Kinesis client, or None (a new one).
Errors are `streamkit.errors` (the adapter translated them).
"""

from __future__ import annotations

from typing import Any

from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.errors import ConfigurationError, KinesisError, StreamNotFoundError
from streamkit.hashing import ShardInfo, ShardMap
from streamkit.transport import StreamSummary, as_kinesis

__all__ = ["create_stream", "delete_stream", "describe_stream", "list_shards", "shard_map", "wait_for_stream"]


def describe_stream(client: Any, stream: str) -> StreamSummary:
    return as_kinesis(client, stream=stream).describe_stream_summary(stream)


def wait_for_stream(client: Any, stream: str, *, timeout: float = 60.0, poll: float = 0.05,
                    clock: Clock = SYSTEM_CLOCK) -> StreamSummary:
    """Wait until the stream is ACTIVE; returns its summary."""
    transport = as_kinesis(client, stream=stream)
    deadline = clock.monotonic() + timeout
    while True:
        summary = transport.describe_stream_summary(stream)
        if summary.status == "ACTIVE":
            return summary
        if clock.monotonic() > deadline:
            raise KinesisError(f"stream {stream!r} still {summary.status} after {timeout:.0f} s")
        clock.sleep(poll)


def create_stream(client: Any, stream: str, shards: int, *, wait: bool = True,
                  clock: Clock = SYSTEM_CLOCK) -> StreamSummary | None:
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise ConfigurationError(f"--shards must be a whole number of at least 1, got {shards!r}")
    transport = as_kinesis(client, stream=stream)
    transport.create_stream(stream, shards)
    return wait_for_stream(transport, stream, clock=clock) if wait else None


def delete_stream(client: Any, stream: str, *, wait: bool = True, timeout: float = 60.0,
                  clock: Clock = SYSTEM_CLOCK) -> None:
    transport = as_kinesis(client, stream=stream)
    transport.delete_stream(stream)
    if not wait:
        return
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        try:
            transport.describe_stream_summary(stream)
        except StreamNotFoundError:
            return
        clock.sleep(0.05)
    raise KinesisError(f"stream {stream!r} still exists {timeout:.0f} s after DeleteStream")


def list_shards(client: Any, stream: str) -> list[ShardInfo]:
    """Every shard of the stream, open and closed."""
    return as_kinesis(client, stream=stream).list_shards(stream)


def shard_map(client: Any, stream: str) -> ShardMap:
    return ShardMap(list_shards(client, stream))
