"""Issue 13's probes, each a regression test: one clear line and the right exit code, never a traceback,
never a silent ending, never a directory nobody asked for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from producer import Producer, ProducerConfig
from streamkit.testing import StreamHandle
from tests.e2e.helpers import run_cli

pytestmark = pytest.mark.integration


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("streamkit: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def put(stream: StreamHandle, n: int) -> None:
    with Producer(stream.name, client=stream.client, config=ProducerConfig(aggregation=False)) as p:
        for i in range(n):
            p.put(b"%d" % i, f"k{i % 3}")


@pytest.mark.parametrize(("args", "says"), [
    (["replay", "--from", "file:/missing", "--stream", "x"], "no such file"),
    (["estimate", "--keys-file", "/missing"], "no such file"),
    (["stream", "describe", "x", "--endpoint-url", "notaurl"], "bad endpoint URL"),
    (["estimate", "--plot", "/nonexistent-dir/x.png"], "does not exist"),
    (["consume", "--stream", "x", "--handler", "tests.e2e.handlers:collect",
      "--checkpoint", "sqlite:/nonexistent-dir/x.db", "--endpoint-url", "http://127.0.0.1:9"], "does not exist"),
])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(args: list[str], says: str) -> None:
    line = one_line_error(run_cli(*args, timeout=60), 2)
    assert says in line
    assert not Path("/nonexistent-dir").exists()


def test_consume_whose_server_is_killed_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    from streamkit import kinesis
    from streamkit.aws.clients import aws_client
    from streamkit.local import stack as local_stack

    stack = local_stack.up(data_dir=tmp_path / "stack", persist=False)
    try:
        client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=0)
        kinesis.create_stream(client, "doomed", 1)
        with Producer("doomed", client=client, config=ProducerConfig(aggregation=False)) as p:
            for i in range(20):
                p.put(b"%d" % i, "k")
        out = tmp_path / "out.txt"
        proc = subprocess.Popen([sys.executable, "-m", "streamkit.cli.main", "consume", "--stream", "doomed",
                                 "--handler", "tests.e2e.handlers:collect", "--endpoint-url", stack.kinesis_endpoint,
                                 "--stop-after-idle", "3"], env={**os.environ, "STREAMKIT_TEST_OUT": str(out)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (out.exists() and len(out.read_text().splitlines()) == 20):
            time.sleep(0.1)
        server = next(p for p in stack.processes if p.name == "kinesalite")
        os.kill(server.pid, signal.SIGKILL)  # the Kinesis server dies under the running consumer
        killed_at = time.monotonic()
        stdout, stderr = proc.communicate(timeout=90)
        took = time.monotonic() - killed_at
    finally:
        local_stack.down(data_dir=tmp_path / "stack")
    line = one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), 1)
    assert "no answer from Kinesis" in line and "processed" not in stdout  # no "drained" summary
    assert "retrying with backoff" in stderr  # said within seconds, before giving up
    assert took < 30


@pytest.mark.streamkit(shards=1)
def test_lambda_run_with_a_handler_that_always_fails_says_so_and_stops(kinesis_stream: StreamHandle) -> None:
    put(kinesis_stream, 5)
    proc = run_cli("lambda", "run", "--stream", kinesis_stream.name, "--handler", "tests.e2e.handlers:always_fails",
                   "--stop-after-idle", "3", "--endpoint-url", kinesis_stream.stack.kinesis_endpoint, timeout=60)
    line = one_line_error(proc, 1)
    assert "handler keeps failing" in line
    assert "failed (attempt" in proc.stderr and "record(s) from" in proc.stderr


@pytest.mark.streamkit(shards=1)
def test_dispatch_with_a_worker_that_always_fails_says_so_and_stops(kinesis_stream: StreamHandle) -> None:
    put(kinesis_stream, 5)
    proc = run_cli("dispatch", "--stream", kinesis_stream.name, "--worker", "tests.e2e.handlers:failing_worker",
                   "--stop-after-idle", "3", "--endpoint-url", kinesis_stream.stack.kinesis_endpoint, timeout=60)
    line = one_line_error(proc, 1)
    assert "handler keeps failing" in line and "not delivered after 3 attempt(s)" in proc.stderr


@pytest.mark.streamkit(shards=1)
def test_a_rerun_within_the_lease_time_of_a_crash_waits_for_the_leases_and_reads(kinesis_stream: StreamHandle,
                                                                                  tmp_path: Path) -> None:
    put(kinesis_stream, 10)
    db = tmp_path / "c.db"
    args = [sys.executable, "-m", "streamkit.cli.main", "consume", "--stream", kinesis_stream.name,
            "--handler", "tests.e2e.handlers:slow_collect", "--checkpoint", f"sqlite:{db}",
            "--endpoint-url", kinesis_stream.stack.kinesis_endpoint, "--lease-duration", "3"]
    env = {**os.environ, "STREAMKIT_TEST_OUT": str(tmp_path / "first.txt")}
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (tmp_path / "first.txt").exists():
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # crashes holding the lease
    first.wait(10)
    second = run_cli(*args[3:], "--stop-after-idle", "2", "--json",
                     env={"STREAMKIT_TEST_OUT": str(tmp_path / "second.txt")}, timeout=90)
    assert second.returncode == 0, second.stderr
    assert "waiting for 1 shard(s) leased by" in second.stderr
    assert (tmp_path / "second.txt").exists() and len((tmp_path / "second.txt").read_text().splitlines()) >= 1


def test_local_stack_tells_the_truth(tmp_path: Path) -> None:
    data = tmp_path / "stack"
    up = run_cli("local", "up", "--data-dir", str(data), "--in-memory", "--json", timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        line = one_line_error(run_cli("local", "up", "--data-dir", str(data), "--backend", "kinesis-mock"), 1)
        assert "backend='kinesalite' (asked: 'kinesis-mock')" in line and "--restart" in line
        line = one_line_error(run_cli("local", "up", "--data-dir", str(data), "--enforce-limits"), 1)
        assert "enforce_limits=False (asked: True)" in line
        import json

        stack = json.loads(up.stdout)
        busy = stack["processes"][0]["port"]
        other = tmp_path / "other"
        line = one_line_error(run_cli("local", "up", "--data-dir", str(other), "--kinesis-port", str(busy)), 1)
        assert f"--kinesis-port {busy}: something already listens" in line
        line = one_line_error(run_cli("local", "up", "--data-dir", str(other), "--lambda", "f=nope:handler"), 2)
        assert "cannot import 'nope'" in line
        assert not (other / "stack.json").exists()
        os.kill(stack["processes"][0]["pid"], signal.SIGKILL)
        time.sleep(0.5)
        line = one_line_error(run_cli("local", "status", "--data-dir", str(data)), 1)
        assert "kinesalite (pid" in line and "no longer running" in line
    finally:
        run_cli("local", "down", "--data-dir", str(data))
