"""The earlier import path of the local-stack handles, now `streamkit.local.testing` (a tool)."""

from streamkit.local.testing import LocalStackPool, ProxyHandle, StreamHandle, local_client

__all__ = ["LocalStackPool", "ProxyHandle", "StreamHandle", "local_client"]
