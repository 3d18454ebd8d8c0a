"""The producer's life: no network call before `start()`, refusal once closed, a flush at interpreter exit.

Runtime: ~3 s (three short Python subprocesses for the interpreter-exit cases).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from producer import AsyncProducer, Producer, ProducerConfig
from streamkit.errors import ProducerClosedError, StreamkitError, StreamNotFoundError
from streamkit.testing import FakeKinesis

ROOT = Path(__file__).resolve().parents[2]
FAST = ProducerConfig(rate_limit=0, record_max_buffered_time=0.005, backoff_base=0.001, backoff_max=0.01)

SYNC_CALLS: dict[str, Callable[[Producer], Any]] = {
    "put": lambda p: p.put(b"x", "k"),
    "send": lambda p: p.send(b"x", "k"),
    "put_json": lambda p: p.put_json({"a": 1}, "k"),
    "send_json": lambda p: p.send_json({"a": 1}, "k"),
    "put of an oversized record": lambda p: p.put(b"x" * (2 << 20), "k"),
    "flush": lambda p: p.flush(),
    "start": lambda p: p.start(),
    "with": lambda p: p.__enter__(),
}


def test_construction_makes_no_network_call() -> None:
    client = FakeKinesis()
    Producer("s", client=client, config=FAST)
    assert client.op_counts == {}


def test_start_reports_a_missing_stream() -> None:
    p = Producer("missing", client=FakeKinesis(auto_create=False), config=FAST)
    with pytest.raises(StreamNotFoundError):
        p.start()


def test_the_first_put_starts_the_producer() -> None:
    client = FakeKinesis()
    with Producer("s", client=client, config=FAST) as p:
        assert p.put(b"x", "k").result(5).shard_id
    assert client.op_counts["DescribeStreamSummary"] == 1


@pytest.mark.parametrize("started", [False, True], ids=["never-started", "started"])
@pytest.mark.parametrize("call", sorted(SYNC_CALLS))
def test_a_closed_producer_refuses_every_call(call: str, started: bool) -> None:
    assert issubclass(ProducerClosedError, StreamkitError)
    client = FakeKinesis()
    p = Producer("s", client=client, config=FAST)
    if started:
        p.put(b"before", "k")
    p.close()
    p.close()  # again: nothing to do
    with pytest.raises(ProducerClosedError):
        SYNC_CALLS[call](p)
    assert sum(len(w) for w in client.written.values()) == (1 if started else 0)
    assert p.metrics()["user_records_written"] == (1 if started else 0)


def test_stop_accepting_refuses_later_records_and_close_writes_the_earlier_ones() -> None:
    client = FakeKinesis()
    p = Producer("s", client=client, config=FAST)
    fut = p.put(b"before", "k")
    p.stop_accepting()
    with pytest.raises(ProducerClosedError):
        p.send(b"after", "k")
    p.close()
    assert fut.result(0).sequence_number
    assert sum(len(w) for w in client.written.values()) == 1


@pytest.mark.parametrize("started", [False, True], ids=["never-started", "started"])
@pytest.mark.parametrize("call", ["put", "put_future", "send", "put_json", "send_json", "flush", "start", "async with"])
def test_a_closed_async_producer_refuses_every_call(call: str, started: bool) -> None:
    client = FakeKinesis()

    async def scenario() -> None:
        p = AsyncProducer("s", client=client, config=FAST)
        if started:
            await p.put(b"before", "k")
        await p.close()
        calls: dict[str, Callable[[], Any]] = {
            "put": lambda: p.put(b"x", "k"), "put_future": lambda: p.put_future(b"x", "k"),
            "send": lambda: p.send(b"x", "k"), "put_json": lambda: p.put_json({"a": 1}, "k"),
            "send_json": lambda: p.send_json({"a": 1}, "k"), "flush": p.flush, "start": p.start,
            "async with": p.__aenter__,
        }
        with pytest.raises(ProducerClosedError):
            await calls[call]()

    asyncio.run(scenario())
    assert sum(len(w) for w in client.written.values()) == (1 if started else 0)


def run_script(body: str) -> subprocess.CompletedProcess[str]:
    """A Python process that puts records with a FakeKinesis and never closes its producer; an atexit
    handler (which runs after the producer's exit hook) prints how many records reached the fake."""
    script = textwrap.dedent("""
        import atexit, logging
        from producer import Producer, ProducerConfig
        from streamkit.testing import FakeKinesis
        client = FakeKinesis(shards=2)
        failed = []
        atexit.register(lambda: print("written", sum(len(w) for w in client.written.values()),
                                      "handed-over", len(failed)))
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_producer_never_closed_writes_its_records_at_interpreter_exit() -> None:
    done = run_script("""
        p = Producer("s", client=client, config=ProducerConfig(aggregation=False, record_max_buffered_time=30))
        for i in range(1000):
            p.send(b"r%d" % i, "k%d" % i)
    """)
    assert done.returncode == 0, done.stderr
    assert "written 1000 handed-over 0" in done.stdout
    assert "ERROR" not in done.stderr


def test_at_exit_what_cannot_be_written_goes_to_on_failure() -> None:
    done = run_script("""
        client.unreachable = True
        p = Producer("s", client=client, config=ProducerConfig(exit_flush_timeout=0.2, on_failure=failed.append))
        client.unreachable = False
        p.start()
        client.unreachable = True
        for i in range(300):
            p.send(b"r%d" % i, "k%d" % i)
    """)
    assert done.returncode == 0, done.stderr
    assert "written 0 handed-over 300" in done.stdout


def test_at_exit_without_on_failure_one_error_line_names_the_count() -> None:
    done = run_script("""
        p = Producer("s", client=client, config=ProducerConfig(exit_flush_timeout=0.2)).start()
        client.unreachable = True
        for i in range(300):
            p.send(b"r%d" % i, "k%d" % i)
        fut = p.put(b"with a future", "k")
    """)
    assert done.returncode == 0, done.stderr
    errors = [line for line in done.stderr.splitlines() if "lost" in line]
    assert len(errors) == 1, done.stderr
    assert "301 record(s) for stream 's' were not written within exit_flush_timeout=0.2 s" in errors[0]
