"""pytest plugin and test helpers: real local servers per session, fresh streams per test, fakes.

Registered as a ``pytest11`` entry point, so installing streamkit gives every project these fixtures:

- ``local_stack``: a `LocalStack` (kinesalite by default) started once per session on 127.0.0.1;
  choose the backend or the limit proxy per test with
  ``@pytest.mark.streamkit(backend="kinesis-mock", enforce_limits=True, limit_scale=0.1, faults="...")``.
- ``kinesis_client`` / ``dynamodb_client``: boto3 clients for it, dummy credentials, botocore retries off.
- ``stream_factory``: ``stream_factory(shards=N)`` creates a fresh, uniquely named stream, deleted after.
- ``kinesis_stream``: one fresh stream (``shards`` from the marker, default 1).
- ``kinesis_proxy``: ``kinesis_proxy(limit_scale=0.1, faults="throttle=0.2")`` starts the limit and
  fault proxy in front of the stack's Kinesis server for one test and returns it (``.endpoint``,
  ``.client()``, ``.stats()``).

Set ``STREAMKIT_TEST_KINESIS_ENDPOINT``/``STREAMKIT_TEST_DYNAMODB_ENDPOINT`` to use servers you run.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streamkit.local.stack import LocalStack

__all__ = ["FakeClock", "FakeKinesisClient", "LocalStackPool", "ProxyHandle", "StreamHandle"]


@dataclass(frozen=True, kw_only=True)
class StreamHandle:
    """A stream a fixture created for one test."""

    name: str
    arn: str
    shards: int
    client: Any
    stack: LocalStack


class FakeClock:
    """A monotonic clock whose time only moves when told to; `sleep` advances it."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))


class FakeKinesisClient:
    """An in-memory stand-in for a boto3 Kinesis client: ListShards and PutRecords, with scripted failures.

    ``entry_error(call_no, index, entry)`` returns an error code to fail one PutRecords entry (or None);
    ``call_error(call_no)`` returns an exception to raise for a whole call (or None). Written records
    are kept per shard, in order, in ``written[shard_id]`` as ``(sequence_number, entry)``.
    """

    def __init__(self, shards: int = 1, *, entry_error: Callable[[int, int, dict[str, Any]], str | None] | None = None,
                 call_error: Callable[[int], BaseException | None] | None = None) -> None:
        from streamkit.hashing import MAX_HASH_KEY

        step = (MAX_HASH_KEY + 1) // shards
        self.shards = [
            {"ShardId": f"shardId-{i:012d}",
             "HashKeyRange": {"StartingHashKey": str(i * step),
                              "EndingHashKey": str(MAX_HASH_KEY if i == shards - 1 else (i + 1) * step - 1)},
             "SequenceNumberRange": {"StartingSequenceNumber": "0"}}
            for i in range(shards)
        ]
        self.entry_error = entry_error
        self.call_error = call_error
        self.calls = 0
        self.written: dict[str, list[tuple[str, dict[str, Any]]]] = {str(s["ShardId"]): [] for s in self.shards}
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def list_shards(self, **kwargs: Any) -> dict[str, Any]:
        return {"Shards": list(self.shards)}

    def _shard_for(self, entry: dict[str, Any]) -> str:
        from streamkit.hashing import ShardMap

        return ShardMap.from_api(self.shards).shard_for_key(entry["PartitionKey"], entry.get("ExplicitHashKey")).shard_id

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            call_no = self.calls
        if self.call_error is not None:
            exc = self.call_error(call_no)
            if exc is not None:
                raise exc
        out = []
        with self._lock:
            for i, entry in enumerate(Records):
                code = self.entry_error(call_no, i, entry) if self.entry_error else None
                if code:
                    out.append({"ErrorCode": code, "ErrorMessage": f"injected {code}"})
                    continue
                shard = self._shard_for(entry)
                seq = f"{next(self._seq):056d}"
                self.written[shard].append((seq, entry))
                out.append({"ShardId": shard, "SequenceNumber": seq})
        return {"FailedRecordCount": sum(1 for r in out if "ErrorCode" in r), "Records": out}


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "streamkit(backend='kinesalite'|'kinesis-mock', shards=N, enforce_limits=False, limit_scale=1.0, faults=''): "
        "choose the local stack and stream shape for a test",
    )


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("streamkit")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture(scope="session")
def streamkit_stack_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackPool]:
    pool = LocalStackPool(tmp_path_factory.mktemp("streamkit-local"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def local_stack(request: pytest.FixtureRequest, streamkit_stack_pool: LocalStackPool) -> LocalStack:
    opts = _marker_options(request)
    return streamkit_stack_pool.get(
        backend=opts.get("backend", "kinesalite"),
        enforce_limits=opts.get("enforce_limits", False),
        limit_scale=opts.get("limit_scale", 1.0),
        faults=opts.get("faults", ""),
    )


def _client(service: str, endpoint: str) -> Any:
    from streamkit.clients import aws_client

    return aws_client(service, endpoint_url=endpoint, region="us-east-1", retries=0)


@pytest.fixture
def kinesis_client(local_stack: LocalStack) -> Any:
    return _client("kinesis", local_stack.kinesis_endpoint)


@pytest.fixture
def dynamodb_client(local_stack: LocalStack) -> Any:
    return _client("dynamodb", local_stack.dynamodb_endpoint)


@pytest.fixture
def stream_factory(local_stack: LocalStack) -> Iterator[Callable[..., StreamHandle]]:
    from streamkit import kinesis

    # The admin client talks to the backend directly, so injected faults never break set-up.
    admin = _client("kinesis", local_stack.backend_endpoint or local_stack.kinesis_endpoint)
    created: list[str] = []

    def make(shards: int = 1, name: str | None = None) -> StreamHandle:
        stream = name or f"test-{uuid.uuid4().hex[:12]}"
        summary = kinesis.create_stream(admin, stream, shards)
        assert summary is not None
        created.append(stream)
        return StreamHandle(name=stream, arn=summary["StreamARN"], shards=shards,
                            client=_client("kinesis", local_stack.kinesis_endpoint), stack=local_stack)

    yield make
    for stream in created:
        try:
            kinesis.delete_stream(admin, stream, wait=False)
        except Exception:
            pass


class ProxyHandle:
    """A running limit/fault proxy for one test."""

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy
        self.endpoint: str = proxy.endpoint

    def client(self) -> Any:
        return _client("kinesis", self.endpoint)

    def stats(self) -> dict[str, int]:
        with self.proxy.state.lock:
            return dict(self.proxy.state.stats)

    def configure(self, *, faults: str | None = None, limit_scale: float | None = None, reset: bool = False) -> None:
        from streamkit.local.faults import parse_fault_spec

        self.proxy.state.configure(faults=parse_fault_spec(faults) if faults is not None else None,
                                   limit_scale=limit_scale, reset=reset)


@pytest.fixture
def kinesis_proxy(local_stack: LocalStack) -> Iterator[Callable[..., ProxyHandle]]:
    from streamkit.local.proxy import KinesisProxy

    started: list[Any] = []

    def start(limit_scale: float = 1.0, faults: str = "") -> ProxyHandle:
        proxy = KinesisProxy(local_stack.backend_endpoint or local_stack.kinesis_endpoint,
                             limit_scale=limit_scale, faults=faults).start()
        started.append(proxy)
        return ProxyHandle(proxy)

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture(scope="session")
def sqs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local SQS server (moto's server mode) on 127.0.0.1 for the session."""
    import shutil
    import subprocess
    import sys

    from streamkit.local.stack import free_port, wait_for_port

    port = free_port()
    server = shutil.which("moto_server") or ""
    cmd = [server] if server else [sys.executable, "-m", "moto.server"]
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*cmd, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, timeout=30)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def sqs_client(sqs_endpoint: str) -> Any:
    return _client("sqs", sqs_endpoint)


@pytest.fixture
def kinesis_stream(request: pytest.FixtureRequest, stream_factory: Callable[..., StreamHandle]) -> StreamHandle:
    return stream_factory(shards=_marker_options(request).get("shards", 1))
