"""The AWS error codes streamkit acts on, named once (pure: no botocore, so the retry policy can read them)."""

from __future__ import annotations

__all__ = ["RETRYABLE_CODES", "THROTTLE_CODES"]

#: "Not so fast": Kinesis, DynamoDB, SQS, Lambda and KMS throttling.
THROTTLE_CODES = frozenset({"ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException",
                            "KMSThrottlingException", "Throttling", "RequestThrottled",
                            "ProvisionedThroughputExceeded", "RequestLimitExceeded"})
#: Worth another attempt: throttling and the services' own failures (a PutRecords entry's `ErrorCode` too).
RETRYABLE_CODES = THROTTLE_CODES | {"InternalFailure", "InternalFailureException", "ServiceUnavailable",
                                    "ServiceUnavailableException", "InternalServerError", "KMSInternalException",
                                    "InternalError", "TooManyRequestsException"}
