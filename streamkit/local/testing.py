"""Handles the pytest plugin's fixtures return, and the pool of local stacks it starts. No pytest here.

A tool (`streamkit.testing.stacks` is the earlier import path; `streamkit.testing` re-exports the handles)."""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamkit.local.stack import LocalStack

__all__ = ["LocalStackPool", "ProxyHandle", "StreamHandle", "local_client"]


def local_client(service: str, endpoint: str) -> Any:
    """A boto3 client for a local server: dummy credentials, botocore retries off."""
    from streamkit.aws.clients import aws_client

    return aws_client(service, endpoint_url=endpoint, region="us-east-1", retries=0)


@dataclass(frozen=True, kw_only=True)
class StreamHandle:
    """A stream a fixture created for one test."""

    name: str
    arn: str
    shards: int
    client: Any
    stack: LocalStack


class LocalStackPool:
    """Starts local stacks on demand, one per distinct configuration, and stops them all at the end."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self._stacks: dict[tuple[Any, ...], LocalStack] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count()

    def get(self, *, backend: str = "kinesalite", enforce_limits: bool = False, limit_scale: float = 1.0,
            faults: str = "") -> LocalStack:
        key = (backend, enforce_limits, limit_scale, faults)
        with self._lock:
            if key not in self._stacks:
                from streamkit.local import stack as local_stack

                external = os.environ.get("STREAMKIT_TEST_KINESIS_ENDPOINT")
                if external and backend == "kinesalite" and not enforce_limits and not faults:
                    self._stacks[key] = LocalStack(
                        backend="kinesalite",
                        kinesis_endpoint=external,
                        dynamodb_endpoint=os.environ.get("STREAMKIT_TEST_DYNAMODB_ENDPOINT", ""),
                        data_dir="",
                    )
                else:
                    self._stacks[key] = local_stack.up(
                        backend=backend,  # type: ignore[arg-type]
                        data_dir=self.base_dir / f"stack-{next(self._ids)}",
                        persist=False,
                        enforce_limits=enforce_limits,
                        limit_scale=limit_scale,
                        faults=faults,
                    )
            return self._stacks[key]

    def close(self) -> None:
        from streamkit.local import stack as local_stack

        for stack in self._stacks.values():
            if stack.data_dir:
                local_stack.down(data_dir=Path(stack.data_dir))
        self._stacks.clear()


class ProxyHandle:
    """A running limit/fault proxy for one test."""

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy
        self.endpoint: str = proxy.endpoint

    def client(self) -> Any:
        return local_client("kinesis", self.endpoint)

    def stats(self) -> dict[str, int]:
        with self.proxy.state.lock:
            return dict(self.proxy.state.stats)

    def configure(self, *, faults: str | None = None, limit_scale: float | None = None, reset: bool = False) -> None:
        from streamkit.local.faults import parse_fault_spec

        self.proxy.state.configure(faults=parse_fault_spec(faults) if faults is not None else None,
                                   limit_scale=limit_scale, reset=reset)
