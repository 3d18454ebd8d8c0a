"""Start, find and stop the local Kinesis and DynamoDB servers, all on 127.0.0.1.

`up` starts the chosen Kinesis backend and dynalite as detached processes, waits until both answer,
and records what it started in ``<data_dir>/stack.json``; `down` stops exactly those processes (it
checks each pid still runs the command it started before signalling it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from streamkit.errors import ConfigurationError, LocalStackError
from streamkit.local.npm import NodePackages, ensure_installed

__all__ = ["BACKENDS", "LocalStack", "ProcessInfo", "default_data_dir", "down", "status", "up"]

Backend = Literal["kinesalite", "kinesis-mock"]
BACKENDS: tuple[Backend, ...] = ("kinesalite", "kinesis-mock")
LOOPBACK = "127.0.0.1"
STATE_FILE = "stack.json"


def default_data_dir() -> Path:
    """Per-user state folder: ``$STREAMKIT_LOCAL_DIR`` or ``~/.local/state/streamkit/local``."""
    env = os.environ.get("STREAMKIT_LOCAL_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "streamkit" / "local"


@dataclass(frozen=True, kw_only=True)
class ProcessInfo:
    name: str
    pid: int
    port: int
    marker: str  # a path that appears in the process's command line; checked before any kill


@dataclass(frozen=True, kw_only=True)
class LocalStack:
    """What `up` started: endpoints for clients, and the processes behind them."""

    backend: Backend
    kinesis_endpoint: str
    dynamodb_endpoint: str
    data_dir: str
    backend_endpoint: str = ""  # the Kinesis server itself, when a proxy stands in front of it
    lambda_endpoint: str = ""  # the local Lambda Invoke endpoint, when functions were given
    processes: list[ProcessInfo] = field(default_factory=list)
    enforce_limits: bool = False
    limit_scale: float = 1.0
    faults: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LocalStack:
        procs = [ProcessInfo(**p) for p in raw.get("processes", [])]
        return cls(**{**raw, "processes": procs})


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, timeout: float) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise LocalStackError(f"nothing answered on {LOOPBACK}:{port} within {timeout:.0f} s")


def _pid_runs(pid: int, marker: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return sys.platform != "linux"  # no /proc to check: trust the recorded pid
    return marker.encode() in cmdline


def _spawn(name: str, cmd: Sequence[str], *, env: dict[str, str], log_dir: Path, cwd: Path) -> subprocess.Popen[bytes]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        return subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the CLI that started it; down() kills the group
        )
    finally:
        log.close()


def _post(url: str, target: str, body: bytes, content_type: str) -> int:
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "X-Amz-Target": target,
            "Content-Type": content_type,
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/kinesis/aws4_request, "
            "SignedHeaders=host, Signature=0",
            "X-Amz-Date": "20240101T000000Z",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _answers(url: str, kind: Literal["kinesis", "dynamodb"]) -> bool:
    try:
        if kind == "kinesis":
            status = _post(url, "Kinesis_20131202.ListStreams", b"{}", "application/x-amz-json-1.1")
        else:
            status = _post(url, "DynamoDB_20120810.ListTables", b"{}", "application/x-amz-json-1.0")
    except (OSError, urllib.error.URLError):
        return False
    return status < 500


def wait_until_answers(
    url: str,
    kind: Literal["kinesis", "dynamodb"],
    *,
    timeout: float,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise LocalStackError(f"{kind} server at {url} exited with {proc.returncode} while starting:\n{tail}")
        if _answers(url, kind):
            return
        time.sleep(0.05)
    raise LocalStackError(f"{kind} server at {url} did not answer within {timeout:.0f} s")


def _kinesis_command(
    packages: NodePackages, backend: Backend, port: int, data_dir: Path, persist: bool
) -> tuple[list[str], dict[str, str], str]:
    env = dict(os.environ)
    preload = ["--require", str(packages.preload)]
    if backend == "kinesalite":
        cmd = [packages.node, *preload, str(packages.kinesalite), "--port", str(port),
               "--createStreamMs", "20", "--deleteStreamMs", "20", "--updateStreamMs", "20", "--shardLimit", "1000"]
        if persist:
            cmd += ["--path", str(data_dir / "kinesalite")]
        return cmd, env, str(packages.kinesalite)
    # kinesis-local: a TLS port is always opened too; give it its own free loopback port.
    env.update(
        KINESIS_MOCK_CERT_PATH=str(packages.kinesis_local_cert),
        KINESIS_MOCK_PLAIN_PORT=str(port),
        KINESIS_MOCK_TLS_PORT=str(free_port()),
        SHARD_LIMIT="1000",
        LOG_LEVEL="WARN",
        AWS_REGION=os.environ.get("AWS_REGION", "us-east-1"),
        SHOULD_PERSIST_DATA="true" if persist else "false",
        PERSIST_PATH=str(data_dir / "kinesis-mock"),
        PERSIST_INTERVAL="1s",
    )
    for op in ("CREATE_STREAM", "DELETE_STREAM", "REGISTER_STREAM_CONSUMER", "START_STREAM_ENCRYPTION",
               "STOP_STREAM_ENCRYPTION", "DEREGISTER_STREAM_CONSUMER", "MERGE_SHARDS", "SPLIT_SHARD",
               "UPDATE_SHARD_COUNT", "UPDATE_STREAM_MODE"):
        env[f"{op}_DURATION"] = "20ms"
    return [packages.node, *preload, str(packages.kinesis_local)], env, str(packages.kinesis_local)


def up(
    *,
    backend: Backend = "kinesalite",
    data_dir: Path | None = None,
    kinesis_port: int | None = None,
    dynamodb_port: int | None = None,
    persist: bool = True,
    enforce_limits: bool = False,
    limit_scale: float = 1.0,
    faults: str = "",
    lambda_functions: Sequence[str] = (),
    timeout: float = 60.0,
) -> LocalStack:
    """Start the local servers (installing them first if needed) and return their endpoints.

    If ``data_dir`` already holds a running stack, that stack is returned unchanged.
    """
    if backend not in BACKENDS:
        raise ConfigurationError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if limit_scale <= 0:
        raise ConfigurationError(f"--limit-scale must be positive, got {limit_scale}")
    data_dir = (data_dir or default_data_dir()).resolve()
    existing = status(data_dir=data_dir)
    if existing is not None:
        return existing
    if faults and not enforce_limits:
        enforce_limits = True  # faults are injected by the same proxy
    if enforce_limits:
        from streamkit.local.faults import parse_fault_spec

        parse_fault_spec(faults)  # fail on a bad spec before starting anything
    packages = ensure_installed()
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    started: list[tuple[subprocess.Popen[bytes], ProcessInfo]] = []
    try:
        kport = kinesis_port or free_port()
        cmd, env, marker = _kinesis_command(packages, backend, kport, data_dir, persist)
        kproc = _spawn(backend, cmd, env=env, log_dir=logs, cwd=data_dir)
        started.append((kproc, ProcessInfo(name=backend, pid=kproc.pid, port=kport, marker=marker)))

        dport = dynamodb_port or free_port()
        dcmd = [packages.node, "--require", str(packages.preload), str(packages.dynalite), "--host", LOOPBACK,
                "--port", str(dport), "--createTableMs", "20", "--deleteTableMs", "20", "--updateTableMs", "20"]
        if persist:
            dcmd += ["--path", str(data_dir / "dynalite")]
        dproc = _spawn("dynalite", dcmd, env=dict(os.environ), log_dir=logs, cwd=data_dir)
        started.append((dproc, ProcessInfo(name="dynalite", pid=dproc.pid, port=dport, marker=str(packages.dynalite))))

        backend_url = f"http://{LOOPBACK}:{kport}"
        dynamo_url = f"http://{LOOPBACK}:{dport}"
        wait_until_answers(backend_url, "kinesis", timeout=timeout, proc=kproc, log=logs / f"{backend}.log")
        wait_until_answers(dynamo_url, "dynamodb", timeout=timeout, proc=dproc, log=logs / "dynalite.log")

        kinesis_url = backend_url
        if enforce_limits:
            pport = free_port()
            pcmd = [sys.executable, "-m", "streamkit.local.proxy", "--port", str(pport), "--upstream", backend_url,
                    "--limit-scale", repr(limit_scale), "--faults", faults]
            pproc = _spawn("proxy", pcmd, env=dict(os.environ), log_dir=logs, cwd=data_dir)
            proxy = ProcessInfo(name="proxy", pid=pproc.pid, port=pport, marker="streamkit.local.proxy")
            started.append((pproc, proxy))
            kinesis_url = f"http://{LOOPBACK}:{pport}"
            wait_until_answers(kinesis_url, "kinesis", timeout=timeout, proc=pproc, log=logs / "proxy.log")
        lambda_url = ""
        if lambda_functions:
            lport = free_port()
            lcmd = [sys.executable, "-m", "streamkit.local.lambda_server", "--port", str(lport)]
            for spec in lambda_functions:
                lcmd += ["--function", spec]
            lproc = _spawn("lambda", lcmd, env=dict(os.environ), log_dir=logs, cwd=Path.cwd())
            started.append((lproc, ProcessInfo(name="lambda", pid=lproc.pid, port=lport,
                                               marker="streamkit.local.lambda_server")))
            wait_for_port(lport, timeout=timeout)
            if lproc.poll() is not None:
                raise LocalStackError(f"the local Lambda endpoint exited: see {logs / 'lambda.log'}")
            lambda_url = f"http://{LOOPBACK}:{lport}"
    except BaseException:
        for proc, _info in started:
            _terminate_group(proc.pid)
        raise
    stack = LocalStack(
        backend=backend,
        kinesis_endpoint=kinesis_url,
        dynamodb_endpoint=dynamo_url,
        backend_endpoint=backend_url,
        lambda_endpoint=lambda_url,
        data_dir=str(data_dir),
        processes=[info for _proc, info in started],
        enforce_limits=enforce_limits,
        limit_scale=limit_scale,
        faults=faults,
    )
    tmp = data_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(stack.to_json(), indent=2))
    tmp.replace(data_dir / STATE_FILE)
    return stack


def _terminate_group(pid: int, *, grace: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    return
            except ChildProcessError:
                # Not our child (started by another CLI call): poll for its exit instead.
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
            time.sleep(0.05)


def _load(data_dir: Path) -> LocalStack | None:
    path = data_dir / STATE_FILE
    try:
        return LocalStack.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise LocalStackError(f"{path} is unreadable ({exc}); remove it and run `streamkit local up` again") from exc


def status(*, data_dir: Path | None = None) -> LocalStack | None:
    """The stack running from ``data_dir``, or None when none runs there (a stale record is removed)."""
    data_dir = (data_dir or default_data_dir()).resolve()
    stack = _load(data_dir)
    if stack is None:
        return None
    if all(_pid_runs(p.pid, p.marker) for p in stack.processes):
        return stack
    down(data_dir=data_dir)
    return None


def down(*, data_dir: Path | None = None) -> list[ProcessInfo]:
    """Stop the processes `up` started from ``data_dir``; returns those it stopped."""
    data_dir = (data_dir or default_data_dir()).resolve()
    stack = _load(data_dir)
    if stack is None:
        return []
    stopped = []
    for info in reversed(stack.processes):
        if _pid_runs(info.pid, info.marker):
            _terminate_group(info.pid)
            stopped.append(info)
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped
