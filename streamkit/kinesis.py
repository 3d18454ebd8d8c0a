"""Thin adapter over the boto3 Kinesis client: stream admin, shard listing and error translation.

Everything that talks to Kinesis for stream management goes through here, so botocore exceptions
become `streamkit.errors` exceptions at this edge.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from streamkit.errors import (
    ConfigurationError,
    KinesisError,
    StreamkitError,
    StreamNotFoundError,
    ThrottledError,
)
from streamkit.hashing import ShardMap

__all__ = [
    "RETRYABLE_CODES",
    "THROTTLE_CODES",
    "create_stream",
    "delete_stream",
    "describe_stream",
    "error_code",
    "list_shards",
    "shard_map",
    "translate_error",
    "wait_for_stream",
]

THROTTLE_CODES = frozenset({"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException",
                            "KMSThrottlingException"})
RETRYABLE_CODES = THROTTLE_CODES | {"InternalFailure", "InternalFailureException", "ServiceUnavailable",
                                    "ServiceUnavailableException", "InternalServerError", "KMSInternalException"}


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def translate_error(exc: BaseException, *, stream_name: str | None = None) -> StreamkitError:
    """A `StreamkitError` for a botocore exception (already-translated errors pass through)."""
    if isinstance(exc, StreamkitError):
        return exc
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code == "ResourceNotFoundException" and stream_name is not None:
            return StreamNotFoundError(f"stream {stream_name!r} not found: {message}")
        if code in THROTTLE_CODES:
            return ThrottledError(f"{code}: {message}", code=code)
        retryable = code in RETRYABLE_CODES or status >= 500
        return KinesisError(f"{code}: {message}", code=code, retryable=retryable)
    if isinstance(exc, BotoCoreError):
        # Connection resets, timeouts, unreachable endpoints: transport failures, worth retrying.
        return KinesisError(f"{type(exc).__name__}: {exc}", code=type(exc).__name__, retryable=True)
    return KinesisError(f"{type(exc).__name__}: {exc}", retryable=False)


def _call(fn: Callable[..., Any], stream_name: str | None = None, **kwargs: Any) -> Any:
    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise translate_error(exc, stream_name=stream_name) from exc


def describe_stream(client: Any, stream_name: str) -> dict[str, Any]:
    """DescribeStreamSummary's ``StreamDescriptionSummary``."""
    out = _call(client.describe_stream_summary, stream_name, StreamName=stream_name)
    return dict(out["StreamDescriptionSummary"])


def wait_for_stream(client: Any, stream_name: str, *, timeout: float = 60.0, poll: float = 0.05) -> dict[str, Any]:
    """Wait until the stream is ACTIVE; returns its summary."""
    deadline = time.monotonic() + timeout
    while True:
        summary = describe_stream(client, stream_name)
        if summary["StreamStatus"] == "ACTIVE":
            return summary
        if time.monotonic() > deadline:
            raise KinesisError(f"stream {stream_name!r} still {summary['StreamStatus']} after {timeout:.0f} s")
        time.sleep(poll)


def create_stream(client: Any, stream_name: str, shards: int, *, wait: bool = True) -> dict[str, Any] | None:
    if shards < 1:
        raise ConfigurationError(f"--shards must be at least 1, got {shards}")
    _call(client.create_stream, stream_name, StreamName=stream_name, ShardCount=shards)
    return wait_for_stream(client, stream_name) if wait else None


def delete_stream(client: Any, stream_name: str, *, wait: bool = True, timeout: float = 60.0) -> None:
    _call(client.delete_stream, stream_name, StreamName=stream_name)
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            describe_stream(client, stream_name)
        except StreamNotFoundError:
            return
        time.sleep(0.05)
    raise KinesisError(f"stream {stream_name!r} still exists {timeout:.0f} s after DeleteStream")


def list_shards(client: Any, stream_name: str) -> list[dict[str, Any]]:
    """Every shard of the stream, open and closed, following NextToken."""
    shards: list[dict[str, Any]] = []
    out = _call(client.list_shards, stream_name, StreamName=stream_name)
    shards.extend(out.get("Shards", []))
    seen = {s["ShardId"] for s in shards}
    while out.get("NextToken"):
        out = _call(client.list_shards, stream_name, NextToken=out["NextToken"])
        new = [s for s in out.get("Shards", []) if s["ShardId"] not in seen]
        if not new:
            break  # a server that ignores MaxResults may hand back the same page
        shards.extend(new)
        seen.update(s["ShardId"] for s in new)
    return shards


def shard_map(client: Any, stream_name: str) -> ShardMap:
    return ShardMap.from_api(list_shards(client, stream_name))
