"""LazyClient: an AWS adapter made on first use and kept (once per Lambda container). No boto3 at import."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["LazyClient", "boto_lambda", "boto_s3", "boto_sns", "boto_sqs"]

T = TypeVar("T")


class LazyClient(Generic[T]):
    """`wrap(client)` for the client given, or for one made by `streamkit.aws.clients.aws_client(service)`
    the first time it is needed. A client that is already an adapter (has no boto3 ``meta``) is used as is."""

    def __init__(self, service: str, client: Any, wrap: Callable[[Any], T]) -> None:
        self.service = service
        self._given = client
        self._wrap = wrap
        self._adapter: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        with self._lock:
            if self._adapter is None:
                client = self._given
                if client is None:
                    from streamkit.aws import clients  # boto3 loads here, on first use, not at import

                    client = clients.aws_client(self.service)
                self._adapter = self._wrap(client) if hasattr(client, "meta") else client
            return self._adapter


# The adapters a LazyClient wraps a boto3 client in, named once; each imports its adapter (and boto3)
# only when called, on first use.
def boto_sqs(client: Any) -> Any:
    from streamkit.aws.sqs import BotoSqs

    return BotoSqs(client)


def boto_sns(client: Any) -> Any:
    from streamkit.aws.sns import BotoSns

    return BotoSns(client)


def boto_s3(client: Any) -> Any:
    from streamkit.aws.s3 import BotoS3

    return BotoS3(client)


def boto_lambda(client: Any) -> Any:
    from streamkit.aws.lambda_ import BotoLambda

    return BotoLambda(client)
