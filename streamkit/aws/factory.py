"""The boto3 factory of the Kinesis seam: a `BotoKinesis` over a given boto3 client, or a new one."""

from __future__ import annotations

from typing import Any

from streamkit.aws.clients import aws_client
from streamkit.aws.kinesis import BotoKinesis
from streamkit.kinesis_types import region_of

__all__ = ["boto_kinesis"]


def boto_kinesis(client: Any = None, *, stream: str | None = None, **client_options: Any) -> BotoKinesis:
    """`client` (a boto3 Kinesis client) behind the seam, or a new client; for a `stream` given as an ARN
    a new client goes to the ARN's region unless ``region=`` says otherwise."""
    if client is None and stream is not None and client_options.get("region") is None and region_of(stream):
        client_options["region"] = region_of(stream)
    return BotoKinesis(client if client is not None else aws_client("kinesis", **client_options))
