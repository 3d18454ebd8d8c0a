"""`lambda run`'s execution environments (--isolation, --memory) and REPORT lines (--verbose, --json)."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from streamkit.cli.common import flag, print_err
from streamkit.errors import ConfigurationError

__all__ = ["add_environment_options", "environments", "import_timed", "report_printer", "report_summary"]


def add_environment_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--isolation", choices=("in-process", "process"), default=None,
                   help="process: each execution environment (one per shard and lane) is a worker process, so module "
                        "state, Init Duration and Max Memory Used are real (the default under --template); in-process: "
                        "the handler runs in this process (the default otherwise)")
    p.add_argument("--memory", type=int, default=None, metavar="MB",
                   help="the function's MemorySize for the context and the REPORT lines (default 128, or the template's)")
    p.add_argument("--verbose", action="store_true", help="print each invocation's REPORT line on stderr")


def import_timed(spec: str) -> tuple[Any, float]:
    """The handler of `spec` and how long importing it took (ms): the in-process Init Duration."""
    from streamkit.cli.common import import_callable

    t0 = time.perf_counter()
    handler = import_callable(spec)
    return handler, (time.perf_counter() - t0) * 1000


def environments(args: argparse.Namespace, handler: Any, *, init_ms: float | None, memory_mb: int, template: bool,
                 spec: Any) -> Any:
    """The environments `--isolation` asks for (`spec`: the worker's `HandlerSpec`, for process isolation)."""
    from streamkit.aws_lambda.environments import InProcessEnvironments, ProcessEnvironments

    isolation = args.isolation or ("process" if template else "in-process")
    if isolation == "process":
        return ProcessEnvironments(spec, memory_mb=memory_mb)
    return InProcessEnvironments(handler, memory_mb=memory_mb, init_ms=init_ms)


def handler_spec(text: str) -> Any:
    """``pkg.mod:func`` as a worker imports it (the current directory first on its path, as here)."""
    from streamkit.aws_lambda.environments import HandlerSpec

    module, _, function = text.partition(":")
    return HandlerSpec(module=module, function=function, path=os.getcwd())


def memory_of(args: argparse.Namespace, default: int = 128) -> int:
    memory = args.memory if args.memory is not None else default
    if not 128 <= memory <= 10_240:
        raise ConfigurationError(f"--memory {memory}: Lambda allows 128..10240 MB")
    return int(memory)


def report_printer(args: argparse.Namespace, prefix: str = "") -> Callable[[Any], None] | None:
    if not flag(args, "verbose"):
        return None
    return lambda report: print_err(f"{prefix}{report.line()}")


def report_summary(reports: Any) -> dict[str, Any]:
    """Init and duration percentiles over a run's invocations, and each kept REPORT's figures."""
    summary: dict[str, Any] = reports.summary()
    return summary


def summary_line(summary: dict[str, Any]) -> str:
    init, dur = summary["init_duration_ms"], summary["duration_ms"]
    parts = []
    if init:
        parts.append(f"init p50 {init['p50']:.1f} ms, max {init['max']:.1f} ms ({init['count']} cold starts)")
    if dur:
        parts.append(f"duration p50 {dur['p50']:.1f} ms, p90 {dur['p90']:.1f} ms, p99 {dur['p99']:.1f} ms")
    if summary["max_memory_used_mb"] is not None:
        parts.append(f"max memory used {summary['max_memory_used_mb']} MB")
    return "; ".join(parts)
