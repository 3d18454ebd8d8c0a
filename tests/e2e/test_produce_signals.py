"""`streamkit produce` stopped by a signal, killed, or left unclosed: nothing lost, and it says what happened.

Against kinesalite on 127.0.0.1. Runtime: ~40 s on 2 cores (two 100,000-line files, a rerun each).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamkit.destinations import read_dead_letters
from streamkit.errors import ServerUnreachableError
from streamkit.testing import ProxyHandle, StreamHandle
from tests.integration.helpers import read_stream

pytestmark = pytest.mark.integration

LINES = 100_000
ROOT = Path(__file__).resolve().parents[2]


def write_readings(path: Path, n: int = LINES) -> None:
    pad = "x" * 200
    path.write_bytes(b"".join(orjson.dumps({"sensor_id": f"sensor-{i % 50:02d}", "seq": i, "pad": pad}) + b"\n"
                              for i in range(n)))


def seqs_in_stream(stream: StreamHandle) -> list[int]:
    for attempt in range(5):  # kinesalite may drop the first connection after a client was SIGKILLed mid-call
        try:
            shards = read_stream(stream.client, stream.name)
            break
        except ServerUnreachableError:
            if attempt == 4:
                raise
            time.sleep(0.5)
    return [int(orjson.loads(data)["seq"]) for recs in shards.values() for _key, data, _seq in recs]


def seqs_handed_over(path: Path) -> list[int]:
    import base64

    if not path.exists():
        return []
    return [int(orjson.loads(base64.b64decode(d["data"]))["seq"]) for d in read_dead_letters(path)]


def start_produce(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "streamkit.cli.main", "produce", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def wait_for_progress(proc: subprocess.Popen[str], position_dir: Path) -> None:
    """Until the run has acknowledged lines (its position file exists): then it is mid-file."""
    for _ in range(600):  # bounded: 60 s
        if any(position_dir.rglob("*.position.json")):
            return
        assert proc.poll() is None, f"produce ended before any progress: {proc.communicate()}"
        time.sleep(0.1)
    raise AssertionError("produce made no progress in 60 s")


@pytest.mark.streamkit(shards=4)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_leaves_no_gap_below_the_highest_reading_and_a_rerun_sends_the_rest_once(
        kinesis_stream: StreamHandle, tmp_path: Path, sig: signal.Signals) -> None:
    f, failed, state = tmp_path / "r.jsonl", tmp_path / "failed.jsonl", tmp_path / "state"
    write_readings(f)
    env = {"STREAMKIT_STATE_DIR": str(state)}
    args = ("--stream", kinesis_stream.name, "--file", str(f), "--key-field", "sensor_id",
            "--on-failure", f"file:{failed}", "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    proc = start_produce(*args, env=env)
    wait_for_progress(proc, state)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert f"stopped by {sig.name}" in out, (out, err)
    assert proc.returncode in (0, 1), err
    written, handed = seqs_in_stream(kinesis_stream), seqs_handed_over(failed)
    accounted = set(written) | set(handed)
    top = max(accounted)
    assert top < LINES - 1, "the signal came after the last line: nothing was tested"
    assert sorted(accounted) == list(range(top + 1)), "a gap below the highest reading"
    assert (proc.returncode == 0) == (not handed)

    again = subprocess.run([sys.executable, "-m", "streamkit.cli.main", "produce", *args], capture_output=True,
                           text=True, env={**os.environ, **env}, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"resuming after line {top + 1:,}" in again.stderr or "resuming after line" in again.stderr
    written, handed = seqs_in_stream(kinesis_stream), seqs_handed_over(failed)
    assert sorted(set(written) | set(handed)) == list(range(LINES))
    assert len(written) == len(set(written)), "a graceful stop's position is exact: nothing is sent twice"


@pytest.mark.streamkit(shards=4)
def test_after_sigkill_a_rerun_resumes_from_the_position_and_everything_arrives(
        kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    f, state = tmp_path / "r.jsonl", tmp_path / "state"
    write_readings(f)
    env = {"STREAMKIT_STATE_DIR": str(state)}
    args = ("--stream", kinesis_stream.name, "--file", str(f), "--key-field", "sensor_id",
            "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    proc = start_produce(*args, env=env)
    wait_for_progress(proc, state)
    proc.kill()
    proc.communicate(timeout=30)
    before = len(seqs_in_stream(kinesis_stream))
    again = subprocess.run([sys.executable, "-m", "streamkit.cli.main", "produce", *args], capture_output=True,
                           text=True, env={**os.environ, **env}, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resuming after line" in again.stderr
    written = seqs_in_stream(kinesis_stream)
    assert set(written) == set(range(LINES))
    twice = len(written) - LINES
    # Sent twice: what was acknowledged after the last position write (about a second of lines).
    assert twice <= before, (twice, before)


@pytest.mark.streamkit(shards=2)
def test_sensors_stopped_by_sigterm_report_what_was_accepted_and_not_acknowledged(
        kinesis_stream: StreamHandle, kinesis_proxy: Callable[..., ProxyHandle], tmp_path: Path) -> None:
    proxy = kinesis_proxy(limit_scale=0.05)  # the shards take far less than offered: records wait in the buffer
    proc = start_produce("--stream", kinesis_stream.name, "--sensors", "20", "--rate", "5000", "--duration", "60",
                         "--no-aggregate", "--shutdown-grace", "0", "--json", "--endpoint-url", proxy.endpoint, env={})
    for _ in range(600):  # bounded (60 s): until the shards refuse writes, so records wait in the buffer
        if proxy.stats().get("limit.write_throttled", 0) > 0:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    summary: dict[str, Any] = orjson.loads(out)
    assert summary["stopped_by"] == "SIGTERM", err
    assert summary["read"] == summary["user_records"] + summary["handed_over"] + summary["not_handed_over"]
    assert summary["unacknowledged"] == summary["read"] - summary["user_records"] > 0
    assert summary["not_handed_over"] > 0 and proc.returncode == 1
    assert len(seqs_in_stream(kinesis_stream)) == summary["user_records"]


def test_a_third_signal_ends_a_produce_hung_on_a_server_that_never_answers(tmp_path: Path) -> None:
    import socket

    with socket.socket() as server:  # accepts connections on 127.0.0.1 and never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        proc = start_produce("--stream", "s", "--sensors", "2", "--rate", "10", "--duration", "5",
                             "--endpoint-url", f"http://127.0.0.1:{port}", env={})
        try:
            conn, _ = server.accept()  # its first call is waiting for an answer
            with conn:
                for _ in range(3):
                    time.sleep(0.2)  # (each signal handled before the next; not a pass/fail timing)
                    proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == -signal.SIGTERM


@pytest.mark.streamkit(shards=2)
def test_a_producer_never_closed_writes_its_1000_sends_at_exit(kinesis_stream: StreamHandle) -> None:
    script = textwrap.dedent(f"""
        import boto3
        from producer import Producer
        client = boto3.client("kinesis", endpoint_url={kinesis_stream.stack.kinesis_endpoint!r}, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x")
        p = Producer({kinesis_stream.name!r}, client=client)
        for i in range(1000):
            p.send(b'{{"seq": %d}}' % i, "k%d" % (i % 10))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(seqs_in_stream(kinesis_stream)) == list(range(1000))


@pytest.mark.streamkit(shards=1)
def test_a_closed_async_producer_refuses_and_writes_nothing(kinesis_stream: StreamHandle) -> None:
    import asyncio

    from producer import AsyncProducer
    from streamkit.errors import ProducerClosedError

    async def scenario() -> list[str]:
        p = AsyncProducer(kinesis_stream.name, client=kinesis_stream.client)
        await p.close()
        refused = []
        for name, call in (("put_future", lambda: p.put_future(b'{"seq": 1}', "k")),
                           ("send", lambda: p.send(b'{"seq": 2}', "k")), ("put", lambda: p.put(b'{"seq": 3}', "k"))):
            try:
                await call()
            except ProducerClosedError:
                refused.append(name)
        return refused

    assert asyncio.run(scenario()) == ["put_future", "send", "put"]
    assert seqs_in_stream(kinesis_stream) == []
