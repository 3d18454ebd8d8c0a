"""Execution environments for the emulator, and the REPORT line Lambda writes after each invocation.

Lambda runs one execution environment per concurrent invocation: for a Kinesis mapping, one per shard and
parallelization lane. A new environment imports the handler's module first (the INIT phase, its time the
REPORT line's Init Duration) and keeps its module state for the invocations after.

- `ProcessEnvironments` (``--isolation process``, and under ``--template``): each environment is a worker
  process. Its handler module is imported there and that import is timed (Init Duration, on the
  environment's first invocation only); Max Memory Used is the worker's peak resident memory
  (``getrusage``), the Python runtime included, as Lambda's figure includes its runtime. A worker that dies
  is replaced by a new one (a new cold start), as Lambda replaces a failed environment.
- `InProcessEnvironments` (the default without a template): the handler runs in the emulator's process;
  the module was imported once, before the run, so only the first invocation carries an Init Duration
  (that import's time, when the caller measured it) and Max Memory Used is not measured (``None``).

Billed Duration is Duration plus Init Duration, rounded up to the millisecond: AWS bills by the
millisecond and, since August 1, 2025, bills the INIT phase of on-demand functions too.
"""

from __future__ import annotations

import math
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamkit.errors import FunctionError

__all__ = ["HandlerSpec", "InProcessEnvironments", "ProcessEnvironments", "Report", "ReportLog", "percentiles"]


@dataclass(frozen=True, kw_only=True)
class Report:
    """What Lambda's REPORT line says about one invocation."""

    request_id: str
    environment: str  # "shardId-000000000000/0": the shard and lane whose environment ran it
    duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int | None  # None: not measured (in-process)
    init_duration_ms: float | None  # only on an environment's first invocation

    @property
    def billed_duration_ms(self) -> int:
        return math.ceil(self.duration_ms + (self.init_duration_ms or 0.0))

    def line(self) -> str:
        """As Lambda writes it to the function's log (tab-separated)."""
        used = "n/a (in-process)" if self.max_memory_used_mb is None else f"{self.max_memory_used_mb} MB"
        parts = [f"REPORT RequestId: {self.request_id}", f"Duration: {self.duration_ms:.2f} ms",
                 f"Billed Duration: {self.billed_duration_ms} ms", f"Memory Size: {self.memory_size_mb} MB",
                 f"Max Memory Used: {used}"]
        if self.init_duration_ms is not None:
            parts.append(f"Init Duration: {self.init_duration_ms:.2f} ms")
        return "\t".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "environment": self.environment, "duration_ms": self.duration_ms,
                "billed_duration_ms": self.billed_duration_ms, "memory_size_mb": self.memory_size_mb,
                "max_memory_used_mb": self.max_memory_used_mb, "init_duration_ms": self.init_duration_ms}


class ReportLog:
    """A run's REPORT figures, bounded: every cold start's, and the last `keep` invocations' (a mapping that
    runs for days does not grow without end; the percentiles of durations are over those kept)."""

    def __init__(self, keep: int = 4096) -> None:
        from collections import deque

        self.recent: deque[Report] = deque(maxlen=keep)
        self.cold_starts: list[Report] = []
        self.count = 0
        self.max_memory_used_mb: int | None = None
        self._lock = threading.Lock()

    def add(self, report: Report) -> None:
        with self._lock:
            self.count += 1
            self.recent.append(report)
            if report.init_duration_ms is not None:
                self.cold_starts.append(report)
            used = report.max_memory_used_mb
            if used is not None and (self.max_memory_used_mb is None or used > self.max_memory_used_mb):
                self.max_memory_used_mb = used

    def summary(self) -> dict[str, Any]:
        """Init and duration percentiles, the environments seen, and the kept reports' figures."""
        with self._lock:
            recent, cold = list(self.recent), list(self.cold_starts)
        return {"invocations": self.count, "kept": len(recent),
                "init_duration_ms": percentiles([r.init_duration_ms for r in cold if r.init_duration_ms is not None]),
                "duration_ms": percentiles([r.duration_ms for r in recent]),
                "max_memory_used_mb": self.max_memory_used_mb,
                "environments": len({r.environment for r in cold} | {r.environment for r in recent}),
                "reports": [r.to_json() for r in recent]}


def percentiles(values: list[float]) -> dict[str, float] | None:
    """p50, p90, p99 and max (nearest rank), or None for no values."""
    if not values:
        return None
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]

    return {"count": len(ordered), "p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99), "max": ordered[-1]}


class _Context:
    """Lambda's context object inside an environment; the remaining time counts down from the invocation's."""

    def __init__(self, fields: dict[str, Any]) -> None:
        for k, v in fields.items():
            if k != "remaining_ms":
                setattr(self, k, v)
        self._deadline = time.monotonic() + fields["remaining_ms"] / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def context_fields(context: Any) -> dict[str, Any]:
    """What a worker needs to rebuild the context object."""
    names = ("function_name", "function_version", "invoked_function_arn", "memory_limit_in_mb", "aws_request_id",
             "log_group_name", "log_stream_name")
    out = {n: getattr(context, n) for n in names if hasattr(context, n)}
    out["remaining_ms"] = context.get_remaining_time_in_millis()
    return out


# -- in-process ----------------------------------------------------------------------------------------
class InProcessEnvironments:
    """The handler called in this process; the figures this mode cannot measure are None (said in the line)."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any], *, memory_mb: int,
                 init_ms: float | None = None) -> None:
        self.handler = handler
        self.memory_mb = memory_mb
        self._init_ms = init_ms
        self._lock = threading.Lock()

    def invoke(self, key: str, event: dict[str, Any], context: Any) -> tuple[Any, BaseException | None, Report]:
        with self._lock:
            init, self._init_ms = self._init_ms, None  # the one import, on the first invocation of the run
        t0 = time.perf_counter()
        try:
            response, error = self.handler(event, context), None
        except Exception as exc:
            response, error = None, exc
        duration = (time.perf_counter() - t0) * 1000
        report = Report(request_id=getattr(context, "aws_request_id", str(uuid.uuid4())), environment=key,
                        duration_ms=duration, memory_size_mb=self.memory_mb, max_memory_used_mb=None,
                        init_duration_ms=init)
        return response, error, report

    def close(self) -> None:
        return None


# -- worker processes -----------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class HandlerSpec:
    """How a worker finds the handler: ``module`` imported by name (with `path` first on sys.path), or the
    file `file` loaded as a module; then its `function`. `environment` is set before the import."""

    function: str
    module: str | None = None
    file: str | None = None
    path: str | None = None
    environment: dict[str, str] = field(default_factory=dict)


def _load(spec: HandlerSpec) -> Callable[[dict[str, Any], Any], Any]:
    import importlib
    import importlib.util
    import os
    import sys

    os.environ.update(spec.environment)
    if spec.path and spec.path not in sys.path:
        sys.path.insert(0, spec.path)
    if spec.file is not None:
        loader_spec = importlib.util.spec_from_file_location("streamkit_function", spec.file)
        assert loader_spec is not None and loader_spec.loader is not None
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
    else:
        assert spec.module is not None
        module = importlib.import_module(spec.module)
    func: Callable[[dict[str, Any], Any], Any] = getattr(module, spec.function)
    return func


def _max_rss_mb() -> int:
    import resource

    return math.ceil(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # Linux: kilobytes


def _worker_main(conn: Any, spec: HandlerSpec) -> None:
    """An execution environment: INIT (import, timed), then one invocation per message until told to stop."""
    import signal

    # Ctrl-C reaches the whole process group: the emulator decides when its environments stop, not the terminal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    t0 = time.perf_counter()
    try:
        handler = _load(spec)
    except BaseException as exc:  # the INIT phase failed: every invocation of this environment fails
        conn.send(("init_error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", (time.perf_counter() - t0) * 1000))
    while True:
        message = conn.recv()
        if message is None:
            return
        event, fields = message
        context = _Context(fields)
        t1 = time.perf_counter()
        try:
            response: Any = handler(event, context)
            outcome = "ok"
        except Exception as exc:
            response, outcome = f"{type(exc).__name__}: {exc}", "error"
        conn.send((outcome, response, (time.perf_counter() - t1) * 1000, _max_rss_mb()))


class _Worker:
    def __init__(self, spec: HandlerSpec) -> None:
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited, as a new environment
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, spec), daemon=True)
        self.process.start()
        child.close()
        self.init_ms: float | None = None
        self.init_error: str | None = None
        kind, value = self._recv()
        if kind == "ready":
            self.init_ms = float(value)
        else:
            self.init_error = str(value)

    def _recv(self) -> Any:
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            raise FunctionError(f"the execution environment (pid {self.process.pid}) exited "
                                f"(exit code {self.process.exitcode})") from None

    def call(self, event: dict[str, Any], fields: dict[str, Any]) -> Any:
        try:
            self.conn.send((event, fields))
        except (BrokenPipeError, OSError):
            raise FunctionError(f"the execution environment (pid {self.process.pid}) exited") from None
        return self._recv()

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class ProcessEnvironments:
    """One worker process per environment key (shard and lane), started on its first invocation."""

    def __init__(self, spec: HandlerSpec, *, memory_mb: int) -> None:
        self.spec = spec
        self.memory_mb = memory_mb
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()
        self._closed = False

    def invoke(self, key: str, event: dict[str, Any], context: Any) -> tuple[Any, BaseException | None, Report]:
        # One lane thread per key: only that thread starts the key's worker, outside the lock, so environments
        # start (and import) at the same time, as Lambda's do.
        with self._lock:
            if self._closed:
                raise FunctionError("the execution environments are closed")
            worker = self._workers.get(key)
        fresh = worker is None
        if worker is None:
            worker = _Worker(self.spec)
            with self._lock:
                self._workers[key] = worker
        request_id = getattr(context, "aws_request_id", str(uuid.uuid4()))
        init = worker.init_ms if fresh else None
        if worker.init_error is not None:
            self._discard(key, worker)
            error = FunctionError(f"Init error: {worker.init_error}")
            return None, error, Report(request_id=request_id, environment=key, duration_ms=0.0,
                                       memory_size_mb=self.memory_mb, max_memory_used_mb=None, init_duration_ms=init)
        try:
            outcome, value, duration, rss = worker.call(event, context_fields(context))
        except FunctionError as exc:  # the environment died: a new one (a new cold start) serves the next call
            self._discard(key, worker)
            return None, exc, Report(request_id=request_id, environment=key, duration_ms=0.0,
                                     memory_size_mb=self.memory_mb, max_memory_used_mb=None, init_duration_ms=init)
        report = Report(request_id=request_id, environment=key, duration_ms=duration, memory_size_mb=self.memory_mb,
                        max_memory_used_mb=rss, init_duration_ms=init)
        if outcome == "error":
            return None, FunctionError(str(value)), report
        return value, None, report

    def _discard(self, key: str, worker: _Worker) -> None:
        with self._lock:
            if self._workers.get(key) is worker:
                del self._workers[key]
        worker.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers = list(self._workers.values()), {}
        for w in workers:
            w.close()
