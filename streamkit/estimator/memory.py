"""Memory size advice and concurrency for the Lambda consumer. Pure arithmetic.

**Memory.** Lambda gives a function CPU in proportion to its memory: one full vCPU at 1,769 MB (AWS,
"Configure Lambda function memory"). From a batch duration measured at one memory size, the CPU part of
the handler's time is scaled by the CPU share of each other size; what the handler spends waiting (I/O,
when `cpu_fraction` was measured) and the poll/invoke overhead do not change. Assumption, stated with
the table: the handler is CPU-bound and single-threaded, so above 1,769 MB it gets no faster (more vCPUs
help only threads). Billing: duration rounded up to the millisecond, per GB-second, plus the request
charge; since August 1, 2025 the INIT phase is billed as well (AWS, "AWS Lambda standardizes billing for
INIT Phase"), which this per-batch figure leaves out (cold starts are rare on a steady stream).

**Concurrency.** A Kinesis mapping runs one invocation per shard and parallelization lane at a time
(shards x ParallelizationFactor), and a dispatcher fanning out to a Lambda target adds up to its lanes
per invocation. That must fit the account's concurrency quota (1,000 per region by default), a binding
limit of its own. A burst or a reshard that multiplies the shards scales at Lambda's documented rate,
1,000 new execution environments per function every 10 seconds ("Lambda scaling behavior"), each new
environment one cold start.
"""

from __future__ import annotations

import math
from typing import Any

from streamkit.limits import (
    LAMBDA_ACCOUNT_CONCURRENCY_DEFAULT,
    LAMBDA_MEMORY_MAX_MB,
    LAMBDA_MEMORY_MIN_MB,
    LAMBDA_ONE_VCPU_MB,
    LAMBDA_SCALE_ENVIRONMENTS,
    LAMBDA_SCALE_PERIOD_S,
)

__all__ = ["MEMORY_SIZES", "concurrency", "cpu_share", "memory_advice"]

#: The sizes the table compares (MB): Lambda's minimum, common steps, one vCPU, and its maximum.
MEMORY_SIZES = (LAMBDA_MEMORY_MIN_MB, 256, 512, 1024, LAMBDA_ONE_VCPU_MB, 2048, 3008, 4096, LAMBDA_MEMORY_MAX_MB)
PRICE_PER_REQUEST = 0.20 / 1e6
PRICE_PER_GB_S = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
#: Below this share of its time on CPU, a measured handler is said to look I/O-bound.
IO_BOUND_CPU_FRACTION = 0.5

ASSUMPTION = (f"assumes a CPU-bound, single-threaded handler: its CPU time shrinks in proportion to memory up to "
              f"one vCPU at {LAMBDA_ONE_VCPU_MB:,} MB and no further (AWS: CPU in proportion to memory)")


def cpu_share(memory_mb: float) -> float:
    """vCPUs a single thread can use at `memory_mb`: memory / 1,769 MB, at most one."""
    return min(memory_mb / LAMBDA_ONE_VCPU_MB, 1.0)


def memory_advice(*, batch_seconds: float, overhead_seconds: float, measured_at_mb: int, records_per_batch: float,
                  parallelization_factor: int, demand_per_shard: float, cpu_fraction: float | None = None,
                  architecture: str = "x86_64", sizes: tuple[int, ...] = MEMORY_SIZES) -> dict[str, Any]:
    """Per memory size: predicted batch duration, records/s per shard and cost per million records; the
    recommended size is the cheapest that keeps up with `demand_per_shard` (else the fastest)."""
    handler = max(0.0, batch_seconds - overhead_seconds)
    on_cpu = 1.0 if cpu_fraction is None else min(max(cpu_fraction, 0.0), 1.0)
    rows = []
    for m in sizes:
        scale = cpu_share(measured_at_mb) / cpu_share(m)
        seconds = overhead_seconds + handler * (on_cpu * scale + (1 - on_cpu))
        billed_ms = math.ceil(seconds * 1000)  # billed duration: rounded up to 1 ms
        per_invocation = PRICE_PER_REQUEST + billed_ms / 1000 * m / 1024 * PRICE_PER_GB_S[architecture]
        rows.append({"memory_mb": m, "batch_seconds": seconds, "billed_ms": billed_ms,
                     "records_per_s_per_shard": parallelization_factor * records_per_batch / seconds,
                     "usd_per_million_records": per_invocation * 1e6 / records_per_batch})
    keeping_up = [r for r in rows if r["records_per_s_per_shard"] >= demand_per_shard]
    best = min(keeping_up, key=lambda r: (r["usd_per_million_records"], r["memory_mb"])) if keeping_up else \
        max(rows, key=lambda r: (r["records_per_s_per_shard"], -r["memory_mb"]))
    notes = [ASSUMPTION]
    if cpu_fraction is not None and cpu_fraction < IO_BOUND_CPU_FRACTION:
        notes.append(f"the measured handler spent {cpu_fraction:.0%} of its time on CPU: it looks I/O-bound, so "
                     "more memory shortens only that part (the rest is modelled as waiting, unchanged)")
    if not keeping_up:
        notes.append(f"no size keeps up with {demand_per_shard:,.0f} records/s per shard: more shards, a larger "
                     "batch or a higher ParallelizationFactor are needed")
    return {"measured_at_mb": measured_at_mb, "cpu_fraction": cpu_fraction, "rows": rows,
            "recommended_mb": best["memory_mb"], "keeps_up": bool(keeping_up), "notes": notes,
            "architecture": architecture}


def concurrency(*, shards: int, parallelization_factor: int, account_concurrency: int = LAMBDA_ACCOUNT_CONCURRENCY_DEFAULT,
                dispatcher_lanes: int = 0, burst_multiplier: float = 1.0,
                init_seconds: float | None = None) -> dict[str, Any]:
    """Concurrent executions the mapping (and a dispatcher's Lambda fan-out) needs, against the quota; and
    for a burst or reshard that multiplies the shards, how long Lambda's scaling takes and its cold starts."""
    mapping = shards * parallelization_factor
    fan_out = mapping * dispatcher_lanes
    needed = mapping + fan_out
    after = math.ceil(needed * burst_multiplier)
    new_environments = max(0, min(after, account_concurrency) - needed)
    steps = math.ceil(new_environments / LAMBDA_SCALE_ENVIRONMENTS)
    out: dict[str, Any] = {
        "needed": needed, "mapping": mapping, "dispatcher_fan_out": fan_out, "account_concurrency": account_concurrency,
        "fits": needed <= account_concurrency,
        # Share of the wanted concurrency the quota allows: the sustainable rate scales by it when below 1.
        "quota_share": min(1.0, account_concurrency / needed) if needed else 1.0,
    }
    if burst_multiplier > 1:
        out["burst"] = {"needed_after": after, "fits_after": after <= account_concurrency,
                        "new_environments": new_environments,
                        "seconds_to_scale": steps * LAMBDA_SCALE_PERIOD_S,
                        "cold_starts": new_environments,
                        "cold_start_seconds": None if init_seconds is None else new_environments * init_seconds}
    return out
