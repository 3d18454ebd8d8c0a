"""Test helpers streamkit ships, so users' tests can use them too.

- `FakeClock`, `FakeKinesis`: in-memory fakes for unit tests (no server, no sleeps, no pytest);
- `StreamHandle`, `ProxyHandle`, `LocalStackPool`: what the pytest plugin's fixtures return
  (`streamkit.testing.plugin`, registered as a ``pytest11`` entry point: ``local_stack``,
  ``kinesis_client``, ``stream_factory``, ``kinesis_stream``, ``kinesis_proxy``, ``sqs_endpoint``).

Imports here are lazy: `import streamkit.testing` costs nothing until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["FakeClock", "FakeKinesis", "FakeKinesisClient", "LocalStackPool", "ProxyHandle", "StreamHandle"]

if TYPE_CHECKING:
    from streamkit.testing.fakes import FakeClock, FakeKinesis, FakeKinesisClient
    from streamkit.testing.stacks import LocalStackPool, ProxyHandle, StreamHandle

_WHERE = {"FakeClock": "fakes", "FakeKinesis": "fakes", "FakeKinesisClient": "fakes",
          "LocalStackPool": "stacks", "ProxyHandle": "stacks", "StreamHandle": "stacks"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'streamkit.testing' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"streamkit.testing.{module}"), name)
