"""The streamkit exception tree: every error streamkit raises on purpose is one of these.

    StreamkitError                      (retryable: bool)
    ├── ConfigurationError              bad configuration or arguments, raised before any I/O
    │   └── ValidationError             a bad record, partition key, explicit hash key or size
    ├── BadLineError                    a line of a producer input file that cannot be sent (exit 1)
    ├── AggregationFormatError          a KPL aggregate with a good digest but a malformed body
    ├── BodyDecodeError                 a record's data is not the JSON or text the handler asked for
    │   └── BodyValidationError         a record's body does not validate into the model asked for (errors)
    ├── EventFormatError                a Lambda event that is not a Kinesis event
    ├── BatchFailedError                the wrapper fails the invocation (report_batch_item_failures=False)
    ├── StreamNotFoundError             the stream does not exist
    ├── KinesisError                    a Kinesis call failed (translated in streamkit/aws/)   (code)
    │   ├── ThrottledError              ProvisionedThroughputExceeded / LimitExceeded (retryable)
    │   ├── ExpiredIteratorError        a shard iterator older than 5 minutes (resume from a position)
    │   └── ServerUnreachableError      no answer from the endpoint: refused, reset, timed out (retryable)
    ├── AwsServiceError                 an SQS, Lambda or DynamoDB call failed (translated)    (code)
    ├── NoProgressError                 no successful read for `stop_after_idle` seconds (servers unreachable)
    ├── ShardFailedError                a shard stopped: records kept failing with on_failure="stop"
    ├── LocalStackError                 the local servers could not be installed, started or reached
    ├── BufferFullError                 the producer's buffer stayed full past the put timeout
    ├── RecordExpiredError              a producer record could not be written before its TTL
    ├── ProducerClosedError             a call on a producer that is closed (or closing)
    ├── LeaseLostError                  a worker no longer holds the lease it tried to use
    └── CheckpointError                 a checkpoint could not be read or written
"""

from __future__ import annotations

__all__ = [
    "AggregationFormatError",
    "AwsServiceError",
    "BadLineError",
    "BatchFailedError",
    "BodyDecodeError",
    "BodyValidationError",
    "BufferFullError",
    "CheckpointError",
    "ConfigurationError",
    "EventFormatError",
    "ExpiredIteratorError",
    "KinesisError",
    "LeaseLostError",
    "LocalStackError",
    "NoProgressError",
    "ProducerClosedError",
    "RecordExpiredError",
    "ServerUnreachableError",
    "ShardFailedError",
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


class BadLineError(StreamkitError):
    """A line of the input file is not a JSON object with the key field (and --on-bad-line is fail)."""


class AggregationFormatError(StreamkitError, ValueError):
    """A blob carries the KPL magic and a matching digest but its protobuf body is malformed."""


class BodyDecodeError(StreamkitError):
    """A record's data could not be decoded as the handler asked (JSON or UTF-8 text)."""


class BodyValidationError(BodyDecodeError):
    """A record's body is not a valid instance of the model asked for (``body=Model``).

    `errors` holds ``(field, message)`` pairs, as the validating library reported them (msgspec reports
    the first only). Never retryable: the same bytes fail the same way.
    """

    def __init__(self, message: str, *, errors: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message, retryable=False)
        self.errors = errors


class EventFormatError(StreamkitError):
    """A Lambda event that is not a Kinesis event: not an object, or a record without a sequence number."""


class BatchFailedError(StreamkitError):
    """A record failed and the event source mapping has no ReportBatchItemFailures: the invocation fails,
    so Lambda retries the whole batch (a partial response would be read as success)."""


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


class ExpiredIteratorError(KinesisError):
    """A shard iterator expired (they live 5 minutes): get a new one from the last position read."""

    retryable = True


class ServerUnreachableError(KinesisError):
    """The endpoint did not answer (connection refused or reset, a timeout): worth retrying."""

    retryable = True


class AwsServiceError(StreamkitError):
    """An SQS, Lambda or DynamoDB call failed; `code` is AWS's error code (or the transport failure)."""

    def __init__(self, message: str, *, code: str = "", retryable: bool | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.code = code


class NoProgressError(StreamkitError):
    """A reader went `stop_after_idle` seconds without one successful read: its servers are unreachable."""


class ShardFailedError(StreamkitError):
    """A shard stopped: its records kept failing and `on_failure` is "stop", or the processor broke the contract."""


class LocalStackError(StreamkitError):
    """The local Kinesis/DynamoDB servers could not be installed, started or reached."""


class BufferFullError(StreamkitError):
    """The producer buffer stayed full for longer than the configured put timeout."""

    retryable = True


class RecordExpiredError(StreamkitError):
    """A record could not be written before its time-to-live ran out."""


class ProducerClosedError(StreamkitError):
    """A call on a producer that was closed (or is closing, or was stopped by a signal): nothing was buffered."""


class LeaseLostError(StreamkitError):
    """This worker no longer holds the shard lease it tried to use (fenced)."""


class CheckpointError(StreamkitError):
    """A checkpoint could not be read or written."""
