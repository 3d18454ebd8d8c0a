"""LazyClient: an AWS client made on first use and kept (once per Lambda container). No boto3 at import."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["LazyClient"]


class LazyClient:
    """The client given, or one made by `streamkit.clients.aws_client(service)` the first time it is needed."""

    def __init__(self, service: str, client: Any = None) -> None:
        self.service = service
        self._client = client
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self._client is None:
                from streamkit import clients  # boto3 loads here, on first use, not at import

                self._client = clients.aws_client(self.service)
            return self._client
