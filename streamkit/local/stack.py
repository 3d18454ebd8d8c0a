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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from streamkit.errors import ConfigurationError, LocalStackError
from streamkit.kinesis_types import LOCAL_ACCOUNT
from streamkit.local.npm import KINESALITE_ARNS, KINESIS_LOCAL_FRONT, NodePackages, ensure_installed

__all__ = ["BACKENDS", "LocalStack", "ProcessInfo", "default_data_dir", "down", "kill_server", "restart_server", "status", "up"]

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


def wait_for_port(port: int, *, timeout: float, proc: subprocess.Popen[bytes] | None = None,
                  log: Path | None = None, name: str = "server") -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:`port` (and `proc`, if given, still runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(proc, log, name)
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                _check_alive(proc, log, name)
                return
        except OSError:
            time.sleep(0.05)
    raise LocalStackError(f"nothing answered on {LOOPBACK}:{port} within {timeout:.0f} s")


def port_in_use(port: int, *, reuse: bool = False) -> bool:
    """Something listens on 127.0.0.1:`port` (`reuse`: as a server that sets SO_REUSEADDR sees it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def last_error_line(log: Path | None) -> str:
    """The log's most telling line: the last one naming an error, else its last line."""
    if log is None or not log.exists():
        return ""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines[-200:]):
        if "Error" in line or "error" in line or "EADDRINUSE" in line:
            return line[:300]
    return lines[-1][:300] if lines else ""


def _check_alive(proc: subprocess.Popen[bytes] | None, log: Path | None, name: str) -> None:
    if proc is not None and proc.poll() is not None:
        line = last_error_line(log)
        raise LocalStackError(f"{name} exited with {proc.returncode} while starting"
                              + (f": {line}" if line else "") + (f" (log: {log})" if log else ""))


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
        _check_alive(proc, log, f"the {kind} server at {url}")
        if _answers(url, kind):
            _check_alive(proc, log, f"the {kind} server at {url}")  # not someone else's server on that port
            return
        time.sleep(0.05)
    raise LocalStackError(f"{kind} server at {url} did not answer within {timeout:.0f} s")


def _kinesis_command(
    packages: NodePackages, backend: Backend, port: int, data_dir: Path, persist: bool
) -> tuple[list[str], dict[str, str], str]:
    env = dict(os.environ, STREAMKIT_LOCAL_ACCOUNT=LOCAL_ACCOUNT)  # whose ARNs are local (npm/local-arns.js)
    preload = ["--require", str(packages.preload)]
    if backend == "kinesalite":
        cmd = [packages.node, *preload, "--require", str(KINESALITE_ARNS), str(packages.kinesalite), "--port", str(port),
               "--createStreamMs", "20", "--deleteStreamMs", "20", "--updateStreamMs", "20", "--shardLimit", "1000"]
        if persist:
            cmd += ["--path", str(data_dir / "kinesalite")]
        return cmd, env, str(packages.kinesalite)
    # kinesis-local: a TLS port is always opened too; give it its own free loopback port. Its plain port is
    # an inner one: the front (npm/kinesis-local-front.js, in the same process) answers on `port`.
    env.update(
        KINESIS_MOCK_CERT_PATH=str(packages.kinesis_local_cert),
        KINESIS_MOCK_PLAIN_PORT=str(free_port()),
        STREAMKIT_FRONT_PORT=str(port),
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
    return ([packages.node, *preload, "--require", str(KINESIS_LOCAL_FRONT), str(packages.kinesis_local)],
            env, str(packages.kinesis_local))


def _dynalite_command(packages: NodePackages, port: int, data_dir: Path, persist: bool) -> list[str]:
    cmd = [packages.node, "--require", str(packages.preload), "--require", str(packages.dynalite_fixes),
           str(packages.dynalite), "--host", LOOPBACK,
           "--port", str(port), "--createTableMs", "20", "--deleteTableMs", "20", "--updateTableMs", "20"]
    if persist:
        cmd += ["--path", str(data_dir / "dynalite")]
    return cmd


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
    restart: bool = False,
) -> LocalStack:
    """Start the local servers (installing them first if needed) and return their endpoints.

    If ``data_dir`` already holds a running stack started with the same settings, that stack is
    returned unchanged; one started with other settings is an error naming the difference (or, with
    ``restart=True``, is stopped and started again with these).
    """
    enforce_limits = _check_up_arguments(backend, limit_scale, faults, enforce_limits, lambda_functions)
    data_dir = (data_dir or default_data_dir()).resolve()
    running = _running_stack(data_dir, restart, {"backend": backend, "enforce_limits": enforce_limits,
                                                 "limit_scale": limit_scale, "faults": faults,
                                                 "lambda": bool(lambda_functions)}, kinesis_port, dynamodb_port)
    if running is not None:
        return running
    for flag_name, port in (("--kinesis-port", kinesis_port), ("--dynamodb-port", dynamodb_port)):
        if port is not None and port_in_use(port):
            raise LocalStackError(f"{flag_name} {port}: something already listens on {LOOPBACK}:{port}")
    packages = ensure_installed()
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = data_dir / "logs"
    started: list[tuple[subprocess.Popen[bytes], ProcessInfo]] = []
    try:
        backend_url, dynamo_url = _start_servers(packages, backend, kinesis_port, dynamodb_port, data_dir, persist,
                                                 timeout, started)
        kinesis_url = backend_url
        if enforce_limits:
            kinesis_url = _start_proxy(backend_url, limit_scale, faults, data_dir, timeout, started)
        lambda_url = _start_lambda(lambda_functions, logs, timeout, started) if lambda_functions else ""
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


def _check_up_arguments(backend: str, limit_scale: float, faults: str, enforce_limits: bool,
                        lambda_functions: Sequence[str]) -> bool:
    """Bad arguments fail before anything starts; returns whether the limit proxy runs (faults need it)."""
    if backend not in BACKENDS:
        raise ConfigurationError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if limit_scale <= 0:
        raise ConfigurationError(f"--limit-scale must be positive, got {limit_scale}")
    if faults and not enforce_limits:
        enforce_limits = True  # faults are injected by the same proxy
    if enforce_limits:
        from streamkit.local.faults import parse_fault_spec

        parse_fault_spec(faults)  # fail on a bad spec before starting anything
    _check_functions(lambda_functions)  # an unimportable handler fails now, not 60 s later
    return enforce_limits


def _running_stack(data_dir: Path, restart: bool, wanted: dict[str, Any], kinesis_port: int | None,
                   dynamodb_port: int | None) -> LocalStack | None:
    """The stack already running from `data_dir` with these settings, else None (after stopping what was
    left of a dead one, or, with `restart`, one started with other settings; without it that is an error)."""
    existing, dead = _inspect(data_dir)
    if dead:
        down(data_dir=data_dir)  # what is left of a stack that lost a server
    elif existing is not None:
        differences = _differences(existing, wanted, kinesis_port, dynamodb_port)
        if not differences:
            return existing
        if not restart:
            raise LocalStackError(f"a local stack already runs from {data_dir} with {'; '.join(differences)}: run "
                                  "`streamkit local down` first, or `streamkit local up --restart` to replace it")
        down(data_dir=data_dir)
    return None


def _start_servers(packages: NodePackages, backend: Backend, kinesis_port: int | None, dynamodb_port: int | None,
                   data_dir: Path, persist: bool, timeout: float,
                   started: list[tuple[subprocess.Popen[bytes], ProcessInfo]]) -> tuple[str, str]:
    """The Kinesis backend and dynalite, started and answering: their URLs (each appended to `started`)."""
    logs = data_dir / "logs"
    kport = kinesis_port or free_port()
    cmd, env, marker = _kinesis_command(packages, backend, kport, data_dir, persist)
    kproc = _spawn(backend, cmd, env=env, log_dir=logs, cwd=data_dir)
    started.append((kproc, ProcessInfo(name=backend, pid=kproc.pid, port=kport, marker=marker)))

    dport = dynamodb_port or free_port()
    dcmd = _dynalite_command(packages, dport, data_dir, persist)
    dproc = _spawn("dynalite", dcmd, env=dict(os.environ), log_dir=logs, cwd=data_dir)
    started.append((dproc, ProcessInfo(name="dynalite", pid=dproc.pid, port=dport, marker=str(packages.dynalite))))

    backend_url = f"http://{LOOPBACK}:{kport}"
    dynamo_url = f"http://{LOOPBACK}:{dport}"
    wait_until_answers(backend_url, "kinesis", timeout=timeout, proc=kproc, log=logs / f"{backend}.log")
    wait_until_answers(dynamo_url, "dynamodb", timeout=timeout, proc=dproc, log=logs / "dynalite.log")
    return backend_url, dynamo_url


def _start_proxy(backend_url: str, limit_scale: float, faults: str, data_dir: Path, timeout: float,
                 started: list[tuple[subprocess.Popen[bytes], ProcessInfo]]) -> str:
    """The limit and fault proxy in front of `backend_url`, answering: its URL."""
    logs = data_dir / "logs"
    pport = free_port()
    pcmd = [sys.executable, "-m", "streamkit.local.proxy", "--port", str(pport), "--upstream", backend_url,
            "--limit-scale", repr(limit_scale), "--faults", faults]
    pproc = _spawn("proxy", pcmd, env=dict(os.environ), log_dir=logs, cwd=data_dir)
    started.append((pproc, ProcessInfo(name="proxy", pid=pproc.pid, port=pport, marker="streamkit.local.proxy")))
    kinesis_url = f"http://{LOOPBACK}:{pport}"
    wait_until_answers(kinesis_url, "kinesis", timeout=timeout, proc=pproc, log=logs / "proxy.log")
    return kinesis_url


def _start_lambda(lambda_functions: Sequence[str], logs: Path, timeout: float,
                  started: list[tuple[subprocess.Popen[bytes], ProcessInfo]]) -> str:
    """The local Lambda endpoint serving `lambda_functions`, listening: its URL."""
    lport = free_port()
    lcmd = [sys.executable, "-m", "streamkit.local.lambda_server", "--port", str(lport)]
    for spec in lambda_functions:
        lcmd += ["--function", spec]
    lproc = _spawn("lambda", lcmd, env=dict(os.environ), log_dir=logs, cwd=Path.cwd())
    started.append((lproc, ProcessInfo(name="lambda", pid=lproc.pid, port=lport,
                                       marker="streamkit.local.lambda_server")))
    wait_for_port(lport, timeout=timeout, proc=lproc, log=logs / "lambda.log", name="the local Lambda endpoint")
    return f"http://{LOOPBACK}:{lport}"


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
                if _exited(pid):
                    return
            time.sleep(0.05)


def _exited(pid: int) -> bool:
    """Whether a process that is not our child has ended: gone, or a zombie its new parent has not
    reaped yet (some init processes reap only every second or two; a dead server is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:  # no /proc (not Linux): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _load(data_dir: Path) -> LocalStack | None:
    path = data_dir / STATE_FILE
    try:
        return LocalStack.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise LocalStackError(f"{path} is unreadable ({exc}); remove it and run `streamkit local up` again") from exc


def _check_functions(specs: Sequence[str]) -> None:
    from streamkit.importing import import_callable

    for spec in specs:
        name, sep, target = spec.partition("=")
        if not sep or not name or not target:
            raise ConfigurationError(f"--lambda {spec!r}: expected NAME=package.module:handler")
        import_callable(target)


def _differences(stack: LocalStack, wanted: dict[str, Any], kinesis_port: int | None,
                 dynamodb_port: int | None) -> list[str]:
    have = {"backend": stack.backend, "enforce_limits": stack.enforce_limits, "limit_scale": stack.limit_scale,
            "faults": stack.faults, "lambda": bool(stack.lambda_endpoint)}
    out = [f"{k}={have[k]!r} (asked: {wanted[k]!r})" for k in wanted if have[k] != wanted[k]]
    ports = {p.name: p.port for p in stack.processes}
    if kinesis_port is not None and ports.get(stack.backend) != kinesis_port:
        out.append(f"kinesis port {ports.get(stack.backend)} (asked: {kinesis_port})")
    if dynamodb_port is not None and ports.get("dynalite") != dynamodb_port:
        out.append(f"dynamodb port {ports.get('dynalite')} (asked: {dynamodb_port})")
    return out


def _inspect(data_dir: Path) -> tuple[LocalStack | None, list[ProcessInfo]]:
    """The stack recorded in ``data_dir`` and those of its processes that no longer run."""
    stack = _load(data_dir)
    if stack is None:
        return None, []
    return stack, [p for p in stack.processes if not _pid_runs(p.pid, p.marker)]


def status(*, data_dir: Path | None = None) -> LocalStack | None:
    """The stack running from ``data_dir``, or None when none runs there.

    When one of its servers died, the others are stopped and `LocalStackError` says which one died
    and the last error line of its log.
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    stack, dead = _inspect(data_dir)
    if stack is None or not dead:
        return stack
    down(data_dir=data_dir)
    said = []
    for p in dead:
        line = last_error_line(data_dir / "logs" / f"{p.name}.log")
        said.append(f"{p.name} (pid {p.pid}, port {p.port}) is no longer running" + (f": {line}" if line else ""))
    raise LocalStackError("; ".join(said) + "; the rest of the stack was stopped: run `streamkit local up` again")


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


# -- crashing and restarting one server (fault tests, bench/soak.py) -----------------------------------
def _server(stack: LocalStack, name: str) -> ProcessInfo:
    for p in stack.processes:
        if p.name == name and name in (stack.backend, "dynalite"):
            return p
    raise ConfigurationError(f"no server {name!r} in this stack (it has {stack.backend} and dynalite)")


def kill_server(name: str, *, data_dir: Path | None = None) -> None:
    """SIGKILL one server of the stack (its Kinesis server or dynalite), as a crash would end it.

    The stack's state still lists it: `restart_server` starts it again; `down` stops the rest.
    """
    data_dir = (data_dir or default_data_dir()).resolve()
    stack = _load(data_dir)
    if stack is None:
        raise LocalStackError(f"no local stack runs from {data_dir}")
    info = _server(stack, name)
    if not _pid_runs(info.pid, info.marker):
        return
    try:
        os.killpg(info.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if os.waitpid(info.pid, os.WNOHANG)[0] == info.pid:
                return
        except ChildProcessError:
            if _exited(info.pid):
                return
        time.sleep(0.02)


def restart_server(name: str, *, data_dir: Path | None = None, timeout: float = 60.0) -> LocalStack:
    """Start a server `kill_server` ended (or that died) again, on its port and with its data: a
    persisted stack (the default) keeps every record and table item it had acknowledged."""
    data_dir = (data_dir or default_data_dir()).resolve()
    stack = _load(data_dir)
    if stack is None:
        raise LocalStackError(f"no local stack runs from {data_dir}")
    info = _server(stack, name)
    if _pid_runs(info.pid, info.marker):
        raise LocalStackError(f"{name} (pid {info.pid}) still runs; kill_server it first")
    packages = ensure_installed()
    logs = data_dir / "logs"
    if name == "dynalite":
        cmd, env, kind = _dynalite_command(packages, info.port, data_dir, (data_dir / "dynalite").exists()), \
            dict(os.environ), "dynamodb"
    else:
        persist = (data_dir / ("kinesalite" if name == "kinesalite" else "kinesis-mock")).exists()
        cmd, env, _marker = _kinesis_command(packages, stack.backend, info.port, data_dir, persist)
        kind = "kinesis"
    deadline = time.monotonic() + timeout
    while port_in_use(info.port, reuse=True):  # (connections of the dead server linger in TIME_WAIT)
        if time.monotonic() > deadline:
            raise LocalStackError(f"port {info.port} of {name} stays in use")
        time.sleep(0.05)
    proc = _spawn(name, cmd, env=env, log_dir=logs, cwd=data_dir)
    wait_until_answers(f"http://{LOOPBACK}:{info.port}", kind, timeout=timeout, proc=proc,  # type: ignore[arg-type]
                       log=logs / f"{name}.log")
    processes = [replace(p, pid=proc.pid) if p is info else p for p in stack.processes]
    stack = replace(stack, processes=processes)
    tmp = data_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(stack.to_json(), indent=2))
    tmp.replace(data_dir / STATE_FILE)
    return stack
