"""The adapter translates every botocore failure once, into the streamkit tree, with `code` and `retryable`."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from streamkit.aws.errors import translate_error, translate_service_error
from streamkit.errors import (
    AwsServiceError,
    ExpiredIteratorError,
    KinesisError,
    ServerUnreachableError,
    StreamkitError,
    StreamNotFoundError,
    ThrottledError,
)


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetRecords")


@pytest.mark.parametrize(("exc", "kind", "retryable"), [
    (client_error("ProvisionedThroughputExceededException"), ThrottledError, True),
    (client_error("ExpiredIteratorException"), ExpiredIteratorError, True),
    (client_error("ResourceNotFoundException"), StreamNotFoundError, False),
    (client_error("InternalFailure", 500), KinesisError, True),
    (client_error("AccessDeniedException"), KinesisError, False),
    (client_error("SomethingNew", 503), KinesisError, True),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), ServerUnreachableError, True),
    (ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), ServerUnreachableError, True),
    (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), ServerUnreachableError, True),
])
def test_kinesis_errors_are_translated_with_code_and_retryable(exc: Exception, kind: type, retryable: bool) -> None:
    err = translate_error(exc, stream_name="s")
    assert type(err) is kind and err.retryable is retryable
    assert isinstance(err, StreamkitError)
    if isinstance(exc, ClientError):
        assert isinstance(err, KinesisError | StreamNotFoundError)
        if isinstance(err, KinesisError):
            assert err.code == exc.response["Error"]["Code"]


def test_other_services_get_aws_service_errors() -> None:
    err = translate_service_error(client_error("ThrottlingException"), "SQS")
    assert isinstance(err, AwsServiceError) and err.retryable and err.code == "ThrottlingException"
    down = translate_service_error(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "Lambda")
    assert isinstance(down, AwsServiceError) and down.retryable and "cannot reach the Lambda endpoint" in str(down)


def test_streamkit_errors_pass_through_unchanged() -> None:
    original = ThrottledError("x", code="ProvisionedThroughputExceededException")
    assert translate_error(original) is original
