"""The streamkit exception tree.

    StreamkitError                      (retryable: bool)
    ├── ConfigurationError              bad configuration or arguments, raised before any I/O
    │   └── ValidationError             a bad record, partition key, explicit hash key or size
    ├── AggregationFormatError          a KPL aggregate with a good digest but a malformed body
    ├── StreamNotFoundError             the stream does not exist
    ├── KinesisError                    a Kinesis call failed (translated from botocore)
    │   └── ThrottledError              ProvisionedThroughputExceeded / LimitExceeded (retryable)
    ├── LocalStackError                 the local servers could not be installed, started or reached
    ├── BufferFullError                 the producer's buffer stayed full past the put timeout
    ├── RecordExpiredError              a producer record could not be written before its TTL
    ├── LeaseLostError                  a worker no longer holds the lease it tried to use
    └── CheckpointError                 a checkpoint could not be read or written
"""

from __future__ import annotations

__all__ = [
    "AggregationFormatError",
    "BufferFullError",
    "CheckpointError",
    "ConfigurationError",
    "KinesisError",
    "LeaseLostError",
    "LocalStackError",
    "RecordExpiredError",
    "StreamNotFoundError",
    "StreamkitError",
    "ThrottledError",
    "ValidationError",
]


class StreamkitError(Exception):
    """Root of every error streamkit raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class ConfigurationError(StreamkitError, ValueError):
    """Configuration or arguments that cannot work; raised before any network call."""


class ValidationError(ConfigurationError):
    """A record, partition key, explicit hash key or size that Kinesis would reject."""


class AggregationFormatError(StreamkitError, ValueError):
    """A blob carries the KPL magic and a matching digest but its protobuf body is malformed."""


class StreamNotFoundError(StreamkitError):
    """The named stream does not exist (or is not visible with these credentials)."""


class KinesisError(StreamkitError):
    """A Kinesis API call failed; `code` is AWS's error code."""

    def __init__(self, message: str, *, code: str = "", retryable: bool | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.code = code


class ThrottledError(KinesisError):
    """The shard or account was over its limits; always retryable."""

    retryable = True


class LocalStackError(StreamkitError):
    """The local Kinesis/DynamoDB servers could not be installed, started or reached."""


class BufferFullError(StreamkitError):
    """The producer buffer stayed full for longer than the configured put timeout."""

    retryable = True


class RecordExpiredError(StreamkitError):
    """A record could not be written before its time-to-live ran out."""


class LeaseLostError(StreamkitError):
    """This worker no longer holds the shard lease it tried to use (fenced)."""


class CheckpointError(StreamkitError):
    """A checkpoint could not be read or written."""
