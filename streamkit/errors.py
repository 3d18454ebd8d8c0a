"""The streamkit exception tree: every error streamkit raises on purpose is one of these.

Catch by meaning with the middle layer (a family), or by the exact error below it:

    StreamkitError                          (retryable: bool)
    ├── ConfigurationError                  bad configuration or arguments, raised before any I/O (ValueError)
    │   ├── ValidationError                 a bad record, partition key, explicit hash key or size (+ PayloadError)
    │   ├── TemplateError                   a SAM/CloudFormation template that cannot be read (file and path)
    │   └── EventLoopReentryError           a blocking handler called from its own event loop's thread (RuntimeError)
    ├── PayloadError                        data that cannot be sent, decoded or delivered as it is
    │   ├── ValidationError
    │   ├── BadLineError                    a line of a producer input file that cannot be sent (exit 1)
    │   ├── AggregationFormatError          a KPL aggregate with a good digest but a malformed body (ValueError)
    │   ├── BodyDecodeError                 a record's data is not the JSON or text the handler asked for
    │   │   └── BodyValidationError         a record's body does not validate into the model asked for (errors)
    │   ├── EventFormatError                a Lambda event that is not a Kinesis event
    │   └── PayloadTooLargeError            an invocation over Lambda's synchronous payload limit
    ├── NotFoundError                       what was named does not exist
    │   └── StreamNotFoundError             the stream does not exist
    ├── ThrottlingError                     "not so fast": wait and try again (retryable)
    │   ├── ThrottledError                  ProvisionedThroughputExceeded / LimitExceeded (+ KinesisError)
    │   └── BufferFullError                 the producer's buffer stayed full past the put timeout
    ├── UnavailableError                    the servers do not answer
    │   ├── ServerUnreachableError          refused, reset, timed out (retryable; + KinesisError)
    │   └── NoProgressError                 no successful read for `stop_after_idle` seconds
    ├── ServiceCallError                    an AWS call failed, translated in streamkit/aws/   (code)
    │   ├── KinesisError                    a Kinesis call
    │   │   ├── ThrottledError
    │   │   ├── ExpiredIteratorError        a shard iterator older than 5 minutes (resume from a position)
    │   │   └── ServerUnreachableError
    │   └── AwsServiceError                 an SQS, SNS, S3, Lambda or DynamoDB call
    ├── DeliveryError                       records were not delivered as asked (they went to on_failure or
    │   │                                   their futures say so; none is dropped silently)
    │   ├── FunctionError                   a function failed in its own execution environment (--isolation process)
    │   ├── BatchFailedError                the wrapper fails the invocation (report_batch_item_failures=False)
    │   ├── ShardFailedError                a shard stopped: records kept failing with on_failure="stop"
    │   ├── RecordExpiredError              a producer record could not be written before its TTL
    │   └── ProducerClosedError             a call on a producer that is closed (or closing)
    ├── CoordinationError                   leases and checkpoints shared between workers
    │   ├── LeaseLostError                  a worker no longer holds the lease it tried to use
    │   └── CheckpointError                 a checkpoint could not be read or written
    └── LocalStackError                     the local servers could not be installed, started or reached

Signals that are not errors (they never reach a user unasked): `streamkit.retry.Interrupted` (a stop cut
a pause short), and `RecordFailed` / `ProcessingStopped`, raised by a record processor to tell the consumer
how far a batch got.
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
    "CoordinationError",
    "DeliveryError",
    "EventFormatError",
    "EventLoopReentryError",
    "ExpiredIteratorError",
    "FunctionError",
    "KinesisError",
    "LeaseLostError",
    "LocalStackError",
    "NoProgressError",
    "NotFoundError",
    "PayloadError",
    "PayloadTooLargeError",
    "ProducerClosedError",
    "RecordExpiredError",
    "ServerUnreachableError",
    "ServiceCallError",
    "ShardFailedError",
    "StreamNotFoundError",
    "StreamkitError",
    "TemplateError",
    "ThrottledError",
    "ThrottlingError",
    "UnavailableError",
    "ValidationError",
]


class StreamkitError(Exception):
    """Root of every error streamkit raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


# The families: catch by meaning.


class ConfigurationError(StreamkitError, ValueError):
    """Configuration or arguments that cannot work; raised before any network call."""


class EventLoopReentryError(ConfigurationError, RuntimeError):
    """A blocking streamkit handler called from the thread of its own event loop: it would wait forever."""


class PayloadError(StreamkitError):
    """Data that cannot be sent, decoded or delivered as it is: a bad record, line, aggregate, body or event."""


class NotFoundError(StreamkitError):
    """What was named (a stream) does not exist, or is not visible with these credentials."""


class ThrottlingError(StreamkitError):
    """Over a limit for now: the same call later may pass."""

    retryable = True


class UnavailableError(StreamkitError):
    """The servers did not answer."""


class ServiceCallError(StreamkitError):
    """An AWS call failed; `code` is AWS's error code (or the name of the transport failure)."""

    def __init__(self, message: str, *, code: str = "", retryable: bool | None = None) -> None:
        super().__init__(message, retryable=retryable)
        self.code = code


class DeliveryError(StreamkitError):
    """Records were not delivered as asked; each went to `on_failure`, or its future or response says so."""


class FunctionError(DeliveryError):
    """A Lambda handler failed in its own execution environment (a worker process): it raised (its type and
    message), its INIT phase failed, or the environment exited."""


class CoordinationError(StreamkitError):
    """Leases and checkpoints, shared between workers, could not be used as intended."""


# The errors.


class ValidationError(ConfigurationError, PayloadError):
    """A record, partition key, explicit hash key or size that Kinesis would reject."""


class TemplateError(ConfigurationError):
    """A SAM or CloudFormation template that cannot be read or evaluated; the message names the file and
    the path inside it."""


class BadLineError(PayloadError):
    """A line of the input file is not a JSON object with the key field (and --on-bad-line is fail)."""


class AggregationFormatError(PayloadError, ValueError):
    """A blob carries the KPL magic and a matching digest but its protobuf body is malformed."""


class BodyDecodeError(PayloadError):
    """A record's data could not be decoded as the handler asked (JSON or UTF-8 text)."""


class BodyValidationError(BodyDecodeError):
    """A record's body is not a valid instance of the model asked for (``body=Model``).

    `errors` holds ``(field, message)`` pairs, as the validating library reported them (msgspec reports
    the first only). Never retryable: the same bytes fail the same way.
    """

    def __init__(self, message: str, *, errors: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message, retryable=False)
        self.errors = errors


class EventFormatError(PayloadError):
    """A Lambda event that is not a Kinesis event: not an object, or a record without a sequence number."""


class PayloadTooLargeError(PayloadError):
    """The invocation Lambda refuses: its payload is over the synchronous invoke limit."""


class StreamNotFoundError(NotFoundError):
    """The named stream does not exist (or is not visible with these credentials)."""


class KinesisError(ServiceCallError):
    """A Kinesis API call failed; `code` is AWS's error code."""


class ThrottledError(KinesisError, ThrottlingError):
    """The shard or account was over its limits; always retryable."""

    retryable = True


class ExpiredIteratorError(KinesisError):
    """A shard iterator expired (they live 5 minutes): get a new one from the last position read."""

    retryable = True


class ServerUnreachableError(KinesisError, UnavailableError):
    """The endpoint did not answer (connection refused or reset, a timeout): worth retrying."""

    retryable = True


class AwsServiceError(ServiceCallError):
    """An SQS, SNS, S3, Lambda or DynamoDB call failed; `code` is AWS's error code (or the transport failure)."""


class NoProgressError(UnavailableError):
    """A reader went `stop_after_idle` seconds without one successful read: its servers are unreachable."""


class BatchFailedError(DeliveryError):
    """A record failed and the event source mapping has no ReportBatchItemFailures: the invocation fails,
    so Lambda retries the whole batch (a partial response would be read as success)."""


class ShardFailedError(DeliveryError):
    """A shard stopped: its records kept failing and `on_failure` is "stop", or the processor broke the contract."""


class RecordExpiredError(DeliveryError):
    """A record could not be written before its time-to-live ran out."""


class ProducerClosedError(DeliveryError):
    """A call on a producer that was closed (or is closing, or was stopped by a signal): nothing was buffered."""


class BufferFullError(ThrottlingError):
    """The producer buffer stayed full for longer than the configured put timeout."""


class LeaseLostError(CoordinationError):
    """This worker no longer holds the shard lease it tried to use (fenced)."""


class CheckpointError(CoordinationError):
    """A checkpoint could not be read or written."""


class LocalStackError(StreamkitError):
    """The local Kinesis/DynamoDB servers could not be installed, started or reached."""
