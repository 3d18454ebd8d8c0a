"""`BotoS3`: the S3 calls of the OnFailure / dead-letter destination and of replay, errors translated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamkit.aws.errors import call_aws

__all__ = ["BotoS3"]


class BotoS3:
    def __init__(self, client: Any) -> None:
        self.client = client

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        call_aws("S3", self.client.put_object, Bucket=bucket, Key=key, Body=body, ContentType="application/json")

    def keys(self, bucket: str, prefix: str) -> Iterator[str]:
        """Every key under `prefix`, in S3's (lexicographic) order."""
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                args["ContinuationToken"] = token
            out = call_aws("S3", self.client.list_objects_v2, **args)
            for item in out.get("Contents", []):
                yield str(item["Key"])
            token = out.get("NextContinuationToken")
            if not out.get("IsTruncated") or not token:
                return

    def get_object(self, bucket: str, key: str) -> bytes:
        return bytes(call_aws("S3", self.client.get_object, Bucket=bucket, Key=key)["Body"].read())
