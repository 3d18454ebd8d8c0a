"""Test helpers streamkit ships, so users' tests can use them too.

- `FakeClock`, `FakeKinesis`: in-memory fakes for unit tests (no server, no sleeps, no pytest);
- `MockKinesis(handler)`: a transport answered by one function (httpx's MockTransport shape), to script
  any response or fault, optionally over a `FakeKinesis` that answers what the handler leaves;
- `StreamHandle`, `ProxyHandle`, `LocalStackPool`: what the pytest plugin's fixtures return
  (`streamkit.local.pytest_plugin`, registered as a ``pytest11`` entry point: ``local_stack``,
  ``kinesis_client``, ``stream_factory``, ``kinesis_stream``, ``kinesis_proxy``, ``sqs_endpoint``).
  The fakes are library; the handles and the plugin are tools (`streamkit.local`), re-exported here by name
  so that one import serves a test.

Imports here are lazy: `import streamkit.testing` costs nothing until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["FakeClock", "FakeKinesis", "FakeKinesisClient", "KinesisCall", "LocalStackPool", "MockKinesis", "ProxyHandle",
           "StreamHandle"]

if TYPE_CHECKING:
    from streamkit.local.testing import LocalStackPool, ProxyHandle, StreamHandle
    from streamkit.testing.fakes import FakeClock, FakeKinesis, FakeKinesisClient
    from streamkit.testing.mock import KinesisCall, MockKinesis

_WHERE = {"FakeClock": "streamkit.testing.fakes", "FakeKinesis": "streamkit.testing.fakes",
          "FakeKinesisClient": "streamkit.testing.fakes", "KinesisCall": "streamkit.testing.mock",
          "MockKinesis": "streamkit.testing.mock", "LocalStackPool": "streamkit.local.testing",
          "ProxyHandle": "streamkit.local.testing", "StreamHandle": "streamkit.local.testing"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'streamkit.testing' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
