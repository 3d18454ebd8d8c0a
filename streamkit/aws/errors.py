"""botocore exceptions -> the `streamkit.errors` tree, once, here: nothing raw leaves the adapter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from streamkit.aws.codes import RETRYABLE_CODES, THROTTLE_CODES
from streamkit.errors import (
    AwsServiceError,
    ExpiredIteratorError,
    KinesisError,
    ServerUnreachableError,
    ServiceCallError,
    StreamkitError,
    StreamNotFoundError,
    ThrottledError,
)

__all__ = ["RETRYABLE_CODES", "THROTTLE_CODES", "call_aws", "call_kinesis", "error_code", "translate_error"]

T = TypeVar("T")

_UNREACHABLE = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    if isinstance(exc, ServiceCallError):
        return exc.code
    return ""


def _parts(exc: ClientError) -> tuple[str, str, int]:
    """(code, message, HTTP status) of an AWS error reply."""
    message = exc.response.get("Error", {}).get("Message", "") or str(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return error_code(exc), message, status


def translate_error(exc: BaseException, *, stream_name: str | None = None) -> StreamkitError:
    """A `StreamkitError` for a botocore exception from a Kinesis call (streamkit errors pass through)."""
    if isinstance(exc, StreamkitError):
        return exc
    if isinstance(exc, ClientError):
        code, message, status = _parts(exc)
        if code == "ResourceNotFoundException" and stream_name is not None:
            return StreamNotFoundError(f"stream {stream_name!r} not found: {message}")
        if code in THROTTLE_CODES:
            return ThrottledError(f"{code}: {message}", code=code)
        if code == "ExpiredIteratorException":
            return ExpiredIteratorError(f"{code}: {message}", code=code)
        retryable = code in RETRYABLE_CODES or status >= 500
        return KinesisError(f"{code}: {message}", code=code, retryable=retryable)
    if isinstance(exc, _UNREACHABLE):
        return ServerUnreachableError(f"cannot reach the Kinesis endpoint: {exc}", code=type(exc).__name__)
    if isinstance(exc, BotoCoreError):
        # Other transport failures (a malformed URL, a parse error of a reply): not worth retrying blindly.
        retryable = "Connection" in type(exc).__name__ or "Timeout" in type(exc).__name__
        return KinesisError(f"{type(exc).__name__}: {exc}", code=type(exc).__name__, retryable=retryable)
    return KinesisError(f"{type(exc).__name__}: {exc}", retryable=False)


def translate_service_error(exc: BaseException, service: str) -> StreamkitError:
    """The same for SQS, Lambda and DynamoDB calls: an `AwsServiceError` with `code` and `retryable`."""
    if isinstance(exc, StreamkitError):
        return exc
    if isinstance(exc, ClientError):
        code, message, status = _parts(exc)
        return AwsServiceError(f"{service} {code}: {message}", code=code,
                               retryable=code in RETRYABLE_CODES or status >= 500)
    if isinstance(exc, _UNREACHABLE):
        return AwsServiceError(f"cannot reach the {service} endpoint: {exc}", code=type(exc).__name__, retryable=True)
    return AwsServiceError(f"{service} {type(exc).__name__}: {exc}", code=type(exc).__name__,
                           retryable=isinstance(exc, BotoCoreError))


def call_kinesis(fn: Callable[..., T], stream_name: str | None = None, /, **kwargs: Any) -> T:
    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise translate_error(exc, stream_name=stream_name) from exc


def call_aws(service: str, fn: Callable[..., T], /, **kwargs: Any) -> T:
    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        raise translate_service_error(exc, service) from exc
