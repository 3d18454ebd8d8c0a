"""`streamkit local console` as a process: 127.0.0.1 only, a foreign Host refused (DNS rebinding), replay
refused without this run's token (cross-site requests), no CORS, bad options one line (about 5 s)."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.e2e.helpers import listening_addresses, run_cli

pytestmark = pytest.mark.integration


def request(port: int, method: str, path: str, *, host: str | None = None, headers: dict[str, str] | None = None,
            body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", host or f"127.0.0.1:{port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body or b"")
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture
def console(local_stack: Any, tmp_path: Any) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen([sys.executable, "-m", "streamkit.cli.main", "local", "console", "--json",
                             "--endpoint-url", local_stack.kinesis_endpoint,
                             "--dynamodb-endpoint-url", local_stack.dynamodb_endpoint,
                             "--dead-letters", f"file:{tmp_path / 'dead.jsonl'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else ""
    yield proc, int(orjson.loads(line)["port"])
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_the_console_listens_on_127_0_0_1_only_and_stops_on_sigterm(console: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = console
    assert listening_addresses(proc.pid) == [("127.0.0.1", port)]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert proc.stderr is not None and proc.stderr.read().strip().splitlines()[-1] == "streamkit: console stopped"


def test_a_request_with_a_foreign_host_header_is_refused(console: tuple[subprocess.Popen[str], int]) -> None:
    _proc, port = console
    assert request(port, "GET", "/api/streams")[0] == 200
    assert request(port, "GET", "/api/streams", host=f"localhost:{port}")[0] == 200
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}", f"127.0.0.1.evil.example:{port}"):
        status, _h, body = request(port, "GET", "/api/streams", host=host)
        assert status == 403 and b"forbidden" in body, host
    assert request(port, "GET", "/", host="rebound.example")[0] == 403  # the page (and its token) too


def test_replay_without_this_runs_token_is_refused_and_no_cors_is_granted(
        console: tuple[subprocess.Popen[str], int]) -> None:
    _proc, port = console
    status, headers, page = request(port, "GET", "/")
    assert status == 200 and "access-control-allow-origin" not in headers
    for path in ("/api/streams", "/api/leases", "/api/dead-letters"):  # a cross-origin read is granted nothing
        status, headers, _b = request(port, "GET", path, headers={"Origin": "http://evil.example"})
        assert status == 200 and not any(h.startswith("access-control-") for h in headers), (path, headers)
    match = re.search(rb'const TOKEN = "([^"]+)"', page)
    assert match is not None
    token = match.group(1).decode()
    body = orjson.dumps({"source": "file:elsewhere.jsonl", "stream": "s"})
    json_type = {"Content-Type": "application/json"}
    for extra in ({}, {"X-Streamkit-Token": "guess"}, {"X-Streamkit-Token": token[:-1]}):
        status, _h, text = request(port, "POST", "/api/replay", headers={**json_type, **extra}, body=body)
        assert status == 403 and b"token" in text, extra
    # A preflight from another origin gets nothing that would allow the real request.
    status, headers, _b = request(port, "OPTIONS", "/api/replay", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-streamkit-token"})
    assert status == 403 and not any(h.startswith("access-control-") for h in headers)
    # With the token the request is heard (and refused for what it asks: a source this console does not show).
    status, _h, text = request(port, "POST", "/api/replay", headers={**json_type, "X-Streamkit-Token": token}, body=body)
    assert status == 400 and b"not a dead-letter source" in text


def test_bad_console_options_are_one_line_and_exit_2(local_stack: Any) -> None:
    ep = ["--endpoint-url", local_stack.kinesis_endpoint, "--dynamodb-endpoint-url", local_stack.dynamodb_endpoint]
    for args, says in ((["--port", "70000"], "--port 70000"), (["--dead-letters", "s3:bucket"], "use file:PATH or sqs:QUEUE_URL"),
                       (["--metrics-url", "http://example.com/metrics"], "on this machine")):
        proc = run_cli("local", "console", *args, *ep, timeout=30)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr, proc.stderr


def test_an_endpoint_that_does_not_answer_is_one_line_before_anything_listens(local_stack: Any) -> None:
    proc = run_cli("local", "console", "--endpoint-url", "http://127.0.0.1:9",
                   "--dynamodb-endpoint-url", local_stack.dynamodb_endpoint, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "cannot reach Kinesis at http://127.0.0.1:9" \
        in proc.stderr


def test_without_endpoints_it_shows_the_running_local_stack_or_says_there_is_none(local_stack: Any, tmp_path: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    base = [sys.executable, "-m", "streamkit.cli.main", "local", "console", "--json"]
    proc = subprocess.Popen([*base, "--data-dir", local_stack.data_dir], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        shown = orjson.loads(proc.stdout.readline())
        assert (shown["kinesis_endpoint"], shown["dynamodb_endpoint"]) == \
            (local_stack.kinesis_endpoint, local_stack.dynamodb_endpoint)
    finally:
        proc.terminate()
        proc.wait(20)
    none = subprocess.run([*base, "--data-dir", str(tmp_path / "nothing-here")], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert none.returncode == 2 and none.stderr.strip().splitlines() == [
        "streamkit: error: no endpoint: start the local stack (streamkit local up) or give --endpoint-url"]


def test_without_flask_the_console_is_one_line_naming_the_extra(tmp_path: Any) -> None:
    """Flask made unimportable in the CLI's interpreter (a sitecustomize on its path)."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['flask'] = None\n")
    proc = run_cli("local", "console", "--endpoint-url", "http://127.0.0.1:9", "--dynamodb-endpoint-url",
                   "http://127.0.0.1:9", env={"PYTHONPATH": str(tmp_path)}, timeout=60)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "streamkit: error: the console needs Flask: pip install 'streamkit[console]'"], proc.stderr
