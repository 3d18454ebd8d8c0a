"""pytest plugin: real local servers per session, fresh streams per test (the fakes are in streamkit.testing).

A tool, beside the local stack it starts (the library never imports it); `streamkit.testing.plugin` is the
earlier import path.

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

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streamkit.local.stack import LocalStack
from streamkit.local.testing import LocalStackPool, ProxyHandle, StreamHandle, local_client

__all__: list[str] = []  # fixtures only; the handles and fakes are in streamkit.testing


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


@pytest.fixture
def kinesis_client(local_stack: LocalStack) -> Any:
    return local_client("kinesis", local_stack.kinesis_endpoint)


@pytest.fixture
def dynamodb_client(local_stack: LocalStack) -> Any:
    return local_client("dynamodb", local_stack.dynamodb_endpoint)


@pytest.fixture
def stream_factory(local_stack: LocalStack) -> Iterator[Callable[..., StreamHandle]]:
    from streamkit import kinesis

    # The admin client talks to the backend directly, so injected faults never break set-up.
    admin = local_client("kinesis", local_stack.backend_endpoint or local_stack.kinesis_endpoint)
    created: list[str] = []

    def make(shards: int = 1, name: str | None = None) -> StreamHandle:
        stream = name or f"test-{uuid.uuid4().hex[:12]}"
        summary = kinesis.create_stream(admin, stream, shards)
        assert summary is not None
        created.append(stream)
        return StreamHandle(name=stream, arn=summary.arn, shards=shards,
                            client=local_client("kinesis", local_stack.kinesis_endpoint), stack=local_stack)

    yield make
    for stream in created:
        try:
            kinesis.delete_stream(admin, stream, wait=False)
        except Exception:
            pass


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
    import subprocess
    import sys

    from streamkit.local.stack import free_port, wait_for_port

    port = free_port()
    # The moto this environment pins (dev extra), not whichever moto_server comes first on PATH.
    cmd = [sys.executable, "-m", "moto.server"]
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
    return local_client("sqs", sqs_endpoint)


@pytest.fixture
def kinesis_stream(request: pytest.FixtureRequest, stream_factory: Callable[..., StreamHandle]) -> StreamHandle:
    return stream_factory(shards=_marker_options(request).get("shards", 1))
