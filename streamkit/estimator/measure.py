"""Fit the per-batch and per-record cost of a handler by timing it on sample records."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamkit.errors import ConfigurationError
from streamkit.records import StreamRecord

__all__ = ["measure_handler"]


def _load(sample: Path) -> list[bytes]:
    lines = [line for line in sample.read_bytes().splitlines() if line.strip()]
    if not lines:
        raise ConfigurationError(f"--sample {sample}: no records in it")
    return lines


def measure_handler(func: Callable[[StreamRecord], Any], sample: Path, *, sizes: tuple[int, ...] = (1, 10, 50, 100),
                    repeats: int = 3, clock: Callable[[], float] = time.perf_counter,
                    cpu_clock: Callable[[], float] = time.process_time) -> dict[str, float]:
    """Least-squares fit of batch time = per_batch + per_record x records, in milliseconds; and `cpu_fraction`,
    the share of the handler's wall time spent on CPU (this process's CPU time over the same calls)."""
    data = _load(sample)
    xs: list[float] = []
    ys: list[float] = []
    wall = cpu = 0.0
    for n in sizes:
        batch = [StreamRecord(data[i % len(data)], "k", str(i), None, "shardId-000000000000", body="json")
                 for i in range(n)]
        best = float("inf")
        for _ in range(repeats):
            c0, t0 = cpu_clock(), clock()
            for r in batch:
                func(r)
            took = clock() - t0
            cpu += cpu_clock() - c0
            wall += took
            best = min(best, took)
        xs.append(n)
        ys.append(best * 1000)
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    intercept = my - slope * mx
    return {"per_record_ms": max(0.0, slope), "per_batch_ms": max(0.0, intercept),
            "cpu_fraction": min(1.0, cpu / wall) if wall > 0 else 1.0}
