"""A discrete-time simulation of shards, pollers, Lambda batches, retries and bursts. Pure (seeded).

It checks the closed-form model: the same inputs, stepped in time, give a measured throughput, backlog
and iterator age to set beside the formulas.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from streamkit.estimator.model import Inputs, _evaluate, hot_shard_share, zipf_shares

__all__ = ["SimulationResult", "simulate"]


@dataclass
class SimulationResult:
    seconds: float
    processed: float
    throughput: float  # user records/s processed, over the second half of the run
    max_iterator_age: float
    final_backlog: float
    times: list[float] = field(default_factory=list)
    backlog: list[float] = field(default_factory=list)
    iterator_age: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "processed": self.processed, "throughput": self.throughput,
                "max_iterator_age_s": self.max_iterator_age, "final_backlog": self.final_backlog}


def simulate(inp: Inputs, *, seconds: float = 120.0, dt: float = 0.05, seed: int = 1) -> SimulationResult:
    """Simulate the busiest shard (it decides lag) and scale its throughput to the stream."""
    rng = random.Random(seed)
    shards = inp.shards or 1
    ev = _evaluate(inp, shards)
    shares = list(inp.key_shares) if inp.key_shares else zipf_shares(inp.partition_keys, inp.key_skew)
    h = hot_shard_share(shares, shards)
    per_batch = ev["a"] * ev["b"]  # user records one invocation takes
    cycle = ev["cycle"]
    mu_read = ev["mu_read"]  # the read limit caps what pollers can fetch per second
    lanes = [0.0] * inp.parallelization_factor  # time at which each lane is free again
    queue: deque[list[float]] = deque()  # [arrival time, records] chunks, oldest first
    backlog = 0.0
    processed = 0.0
    processed_late = 0.0
    fetch_budget = 0.0
    res = SimulationResult(seconds=seconds, processed=0, throughput=0, max_iterator_age=0, final_backlog=0)
    t = 0.0
    steps = int(seconds / dt)
    fail_batch = 1 - (1 - inp.failure_rate) ** per_batch if inp.failure_rate else 0.0
    for step in range(steps):
        t = step * dt
        rate = inp.records_per_second
        if inp.burst_rate is not None and 10.0 <= t < 10.0 + inp.burst_seconds:
            rate = inp.burst_rate
        arriving = rate * h * dt
        if arriving > 0:
            queue.append([t, arriving])
            backlog += arriving
        fetch_budget = min(fetch_budget + mu_read * dt, mu_read)  # read limit: at most 1 s of budget
        for i, free_at in enumerate(lanes):
            if free_at > t + 1e-9 or backlog <= 0:
                continue
            # A lane that came free during the last step starts its next batch then, not at this tick.
            start = free_at if free_at > t - dt else t
            take = min(per_batch, backlog, fetch_budget)
            if take <= 0:
                break
            duration = cycle * (take / per_batch if inp.duration is None else 1.0)
            if inp.duration is None:
                duration = (inp.invoke_overhead_ms + inp.per_batch_ms + inp.per_record_ms * take) / 1000
            if rng.random() < fail_batch * (take / per_batch):
                lanes[i] = start + duration  # a failed attempt: the batch runs again
                continue
            lanes[i] = start + duration
            fetch_budget -= take
            backlog -= take
            processed += take
            if t >= seconds / 2:
                processed_late += take
            left = take
            while left > 1e-9 and queue:
                if queue[0][1] <= left:
                    left -= queue.popleft()[1]
                else:
                    queue[0][1] -= left
                    left = 0
        age = (t - queue[0][0]) if queue else 0.0
        res.max_iterator_age = max(res.max_iterator_age, age)
        if step % max(1, int(1 / dt)) == 0:
            res.times.append(t)
            res.backlog.append(backlog * shards)
            res.iterator_age.append(age)
    res.processed = processed / h
    res.throughput = processed_late / (seconds / 2) / h
    res.final_backlog = backlog / h
    return res
