"""The throughput model: Kinesis and Lambda limits, lag, bursts, skew and cost. Pure arithmetic.

Formulas from reference/limits.md. Rates are user records per second unless named otherwise; a
"Kinesis record" holds `aggregation` user records.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from streamkit.errors import ConfigurationError
from streamkit.limits import (
    ESM_BATCH_SIZE_MAX,
    EVENT_RECORD_OVERHEAD,
    LAMBDA_ACCOUNT_CONCURRENCY_DEFAULT,
    LAMBDA_MEMORY_MAX_MB,
    LAMBDA_MEMORY_MIN_MB,
    LAMBDA_SYNC_PAYLOAD,
    MIB,
    RECORD_MAX_BYTES,
    RECORD_MAX_BYTES_LARGEST,
)

__all__ = ["Inputs", "Limits", "estimate", "hot_shard_share", "zipf_shares"]


HOURS_PER_MONTH = 730
PRICES_NOTE = ("us-east-1 list prices as published in public cost tools in 2024 (provisioned, On-demand Standard); "
               "On-demand Advantage: at most 40% of Standard's ingest and retrieval, no stream-hour charge, per AWS's "
               "documentation of late 2026 ('at least 60% lower'); no price list in this repository")
AGG_OVERHEAD = 20  # magic + digest
PER_SUBRECORD = 6  # protobuf framing of one sub-record (index, lengths), typical
LAMBDA_PAYLOAD = LAMBDA_SYNC_PAYLOAD


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Kinesis's per-shard limits (scaled for local validation; 1.0 is AWS)."""

    scale: float = 1.0

    @property
    def write_bytes(self) -> float:
        return MIB * self.scale

    @property
    def write_records(self) -> float:
        return 1000 * self.scale

    @property
    def read_bytes(self) -> float:
        return 2 * MIB * self.scale

    @property
    def read_calls(self) -> float:
        return 5 * self.scale


@dataclass(frozen=True, kw_only=True)
class Inputs:
    shards: int | None = 1
    target_rate: float | None = None  # solve for shards instead
    record_size: float = 1024.0  # payload bytes of one user record
    key_bytes: float = 16.0
    records_per_second: float = 100.0
    burst_rate: float | None = None
    burst_seconds: float = 0.0
    aggregation: float | Literal["auto"] = 1.0
    batch_size: int = 100
    duration: float | None = None  # seconds per batch (the talk's figure), or model it:
    per_record_ms: float = 0.0
    per_batch_ms: float = 0.0
    invoke_overhead_ms: float = 20.0  # polling hand-off and invoke, per batch
    parallelization_factor: int = 1
    consumers: int = 1  # polling consumers (the Lambda event source mapping counts as one)
    efo_consumers: int = 0
    partition_keys: int = 1000
    key_skew: float = 0.0  # Zipf exponent: 0 = uniform
    key_shares: tuple[float, ...] = ()  # explicit per-key shares (from --keys-file), overrides skew
    retention_hours: float = 24.0
    max_record_age: float | None = None  # seconds
    failure_rate: float = 0.0  # probability a user record fails its first processing
    mode: Literal["provisioned", "on-demand", "on-demand-advantage"] = "provisioned"
    #: On-demand: write MiB/s the stream is kept warm for (On-demand Advantage's WarmThroughputMiBps).
    warm_throughput_mibps: float | None = None
    #: USER_PARTITION_KEY, or AUTO: the service places records (keys ignored, no KPL aggregation, no order).
    distribution: Literal["USER_PARTITION_KEY", "AUTO"] = "USER_PARTITION_KEY"
    #: The stream's maximum record size (data + partition key), MaxRecordSizeInKiB x 1024.
    max_record_size: float = RECORD_MAX_BYTES
    lambda_memory_mb: int = 128
    arm64: bool = False
    #: The account's concurrent executions in the region (AWS's default quota is 1,000).
    account_concurrency: int = LAMBDA_ACCOUNT_CONCURRENCY_DEFAULT
    #: A dispatcher fanning out to a Lambda target: lanes per invocation, each one more concurrent execution.
    dispatcher_lanes: int = 0
    #: Shards after a reshard (or a burst that multiplies them): how long Lambda's scaling takes to follow.
    reshard_to: int | None = None
    #: A measured Init Duration (seconds), to count what the new environments' cold starts cost.
    init_duration: float | None = None
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        positive = {"record_size": self.record_size, "records_per_second": self.records_per_second,
                    "batch_size": self.batch_size}
        for name, value in positive.items():
            if value <= 0:
                raise ConfigurationError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.shards is None and self.target_rate is None:
            raise ConfigurationError("give --shards or --target-rate")
        if self.shards is not None and self.shards < 1:
            raise ConfigurationError(f"--shards must be at least 1, got {self.shards}")
        if not 1 <= self.parallelization_factor <= 10:
            raise ConfigurationError("--parallelization-factor must be 1..10")
        if not 1 <= self.batch_size <= ESM_BATCH_SIZE_MAX:
            raise ConfigurationError("--batch-size must be 1..10000")
        if self.duration is not None and self.duration <= 0:
            raise ConfigurationError("--duration must be positive")
        if not 0 <= self.failure_rate < 1:
            raise ConfigurationError("--failure-rate must be in [0, 1)")
        if self.aggregation != "auto" and float(self.aggregation) < 1:
            raise ConfigurationError("--aggregation must be at least 1 (or auto)")
        if self.partition_keys < 1:
            raise ConfigurationError("--partition-keys must be at least 1")
        if not RECORD_MAX_BYTES <= self.max_record_size <= RECORD_MAX_BYTES_LARGEST:
            raise ConfigurationError("--max-record-size must be 1 MiB to 10 MiB (MaxRecordSizeInKiB 1024..10240)")
        if self.distribution == "AUTO" and self.mode == "provisioned":
            raise ConfigurationError("--distribution auto needs an on-demand --mode (AWS allows it there only)")
        if self.consumers < 0 or self.efo_consumers < 0 or self.consumers + self.efo_consumers < 1:
            raise ConfigurationError("need at least one consumer (--consumers or --efo-consumers)")
        if self.account_concurrency < 1 or self.dispatcher_lanes < 0:
            raise ConfigurationError("--account-concurrency must be at least 1 and --dispatcher-lanes at least 0")
        if not LAMBDA_MEMORY_MIN_MB <= self.lambda_memory_mb <= LAMBDA_MEMORY_MAX_MB:
            raise ConfigurationError(f"--lambda-memory-mb must be {LAMBDA_MEMORY_MIN_MB}..{LAMBDA_MEMORY_MAX_MB}")


def zipf_shares(keys: int, exponent: float) -> list[float]:
    """Share of traffic of each key, hottest first, under a Zipf law (exponent 0 = uniform)."""
    weights = [1.0 / (i + 1) ** exponent for i in range(keys)]
    total = sum(weights)
    return [w / total for w in weights]


def hot_shard_share(shares: list[float], shards: int) -> float:
    """Expected share of the busiest shard when keys hash uniformly at random onto `shards`.

    Greedy expectation: each key's traffic spreads over shards as MD5 does on average, except that a
    key never splits; the busiest shard carries at least the hottest key and at least 1/shards.
    Keys beyond the hottest are spread evenly (law of large numbers for many keys).
    """
    if shards <= 1:
        return 1.0
    hottest = shares[0]
    rest = 1.0 - hottest
    # The hottest key's shard gets it plus an even share of the rest.
    return max(1.0 / shards, hottest + rest / shards)


def _aggregation(inp: Inputs) -> float:
    if inp.distribution == "AUTO":
        return 1.0  # no KPL aggregation on a stream that places records itself (readers drop aggregates there)
    if inp.aggregation != "auto":
        return float(inp.aggregation)
    per = inp.record_size + PER_SUBRECORD + 2
    return max(1.0, math.floor((MIB - AGG_OVERHEAD - inp.key_bytes) / per))


def _kinesis_record_bytes(inp: Inputs, a: float) -> float:
    if a <= 1:
        return inp.record_size + inp.key_bytes
    return AGG_OVERHEAD + a * (inp.record_size + PER_SUBRECORD) + inp.key_bytes


def _evaluate(inp: Inputs, shards: int) -> dict[str, Any]:
    lim = inp.limits
    a = _aggregation(inp)
    s_k = _kinesis_record_bytes(inp, a)  # bytes of one Kinesis record (data + key)
    bytes_per_user = s_k / a  # what one user record costs in shard bytes
    if inp.distribution == "AUTO":
        shares = [1.0 / max(shards, 1)] * max(shards, 1)  # placed by the service, evenly: no key is hot
    else:
        shares = list(inp.key_shares) if inp.key_shares else zipf_shares(inp.partition_keys, inp.key_skew)
    p_max = shares[0]
    h = hot_shard_share(shares, shards)
    polling = inp.consumers
    # Lambda batch: Kinesis records per invocation, within BatchSize and the 6 MiB payload.
    payload_fit = math.floor(LAMBDA_PAYLOAD / (4 / 3 * (s_k - inp.key_bytes) + EVENT_RECORD_OVERHEAD + inp.key_bytes))
    b = max(1, min(inp.batch_size, ESM_BATCH_SIZE_MAX, payload_fit))
    user_per_batch = a * b
    if inp.duration is not None:
        cycle = inp.duration
    else:
        cycle = (inp.invoke_overhead_ms + inp.per_batch_ms + inp.per_record_ms * user_per_batch) / 1000
    # Failures: a batch with a failing record runs again (in-function retries make it a re-run too).
    fail_batch = 1 - (1 - inp.failure_rate) ** user_per_batch if inp.failure_rate else 0.0
    attempts = 1 / (1 - fail_batch) if fail_batch < 1 else math.inf
    mu_function = inp.parallelization_factor * user_per_batch / (cycle * attempts)  # per shard
    read_share = lim.read_bytes / max(1, polling) if polling else lim.read_bytes
    mu_read = read_share / bytes_per_user
    mu_shard = min(mu_function, mu_read)
    lane_rate = mu_function / inp.parallelization_factor
    caps = {
        "shard write bytes": shards * lim.write_bytes / bytes_per_user / (h * shards),
        "shard write records": shards * lim.write_records * a / (h * shards),
        "shard read": (mu_read / h) if polling else math.inf,
        "function time": mu_function / h,
        "hot key": math.inf if inp.distribution == "AUTO" else
        min(lim.write_bytes / bytes_per_user, lim.write_records * a, lane_rate) / p_max,
    }
    if b < inp.batch_size:
        caps["Lambda payload cap"] = caps.pop("function time")
    from streamkit.estimator.memory import concurrency

    quota = concurrency(shards=shards, parallelization_factor=inp.parallelization_factor,
                        account_concurrency=inp.account_concurrency, dispatcher_lanes=inp.dispatcher_lanes)
    if quota["quota_share"] < 1:  # fewer lanes run than the mapping wants: the function's rate shrinks with them
        caps["account concurrency"] = caps.get("function time", caps.get("Lambda payload cap", math.inf)) * \
            quota["quota_share"]
    binding = min(caps, key=lambda k: caps[k])
    sustainable = caps[binding]  # the binding limit is, by construction, the one that gives this rate
    # The busiest shard is busy mostly with one key: more shards barely help (said apart from the binding limit).
    hot_key_dominates = p_max >= 0.5 * h and shards > 1
    return dict(a=a, s_k=s_k, bytes_per_user=bytes_per_user, h=h, p_max=p_max, b=b, cycle=cycle,
                mu_function=mu_function, mu_read=mu_read, mu_shard=mu_shard, caps=caps, binding=binding,
                sustainable=sustainable, attempts=attempts, hot_key_dominates=hot_key_dominates)


def _shards_needed(inp: Inputs, rate: float) -> dict[str, int]:
    """Shards needed for `rate` by each constraint (uniform keys), and with skew."""
    lim = inp.limits
    a = _aggregation(inp)
    bpu = _kinesis_record_bytes(inp, a) / a
    write = math.ceil(max(rate * bpu / lim.write_bytes, rate / a / lim.write_records) - 1e-9)
    read = math.ceil(inp.consumers * rate * bpu / lim.read_bytes - 1e-9) if inp.consumers else 0
    ev = _evaluate(inp, 1)
    consumer = math.ceil(rate / ev["mu_function"] - 1e-9)
    needed = max(1, write, read, consumer)
    skew = -1
    if ev["caps"]["hot key"] >= rate:  # otherwise no number of shards helps: the hottest key binds
        lo, hi = needed, needed
        while _evaluate(inp, hi)["sustainable"] < rate and hi < 1_000_000:
            lo, hi = hi, hi * 2
        if _evaluate(inp, hi)["sustainable"] >= rate:
            while lo < hi:  # smallest n that sustains the rate (sustainable rate grows with n)
                mid = (lo + hi) // 2
                if _evaluate(inp, mid)["sustainable"] >= rate:
                    hi = mid
                else:
                    lo = mid + 1
            skew = hi
    return {"write": max(1, write), "read": max(0, read), "consumer": max(1, consumer), "with_skew": skew}


def estimate(inp: Inputs) -> dict[str, Any]:
    """The whole estimate as plain JSON types."""
    lim = inp.limits
    shards = _shard_count(inp)
    ev = _evaluate(inp, shards)
    a, b, cycle = ev["a"], ev["b"], ev["cycle"]
    rate = inp.records_per_second
    warnings = _warnings(inp, ev)
    growth, loss_after, burst = _backlog(inp, shards, ev)
    polls_per_shard = inp.consumers * 1.0  # each polling consumer ~1 call/s per shard when caught up
    quota = _concurrency(inp, shards, warnings)
    return {
        "inputs": {k: v for k, v in asdict(inp).items() if k not in ("limits", "key_shares")},
        "shards": shards,
        "seed": _seed(inp, shards, ev),
        "aggregation": a,
        "kinesis_record_bytes": ev["s_k"],
        "lambda_batch_records": b,
        "lambda_batch_user_records": a * b,
        "batch_seconds": cycle,
        "service_rate_per_shard": ev["mu_shard"],
        "sustainable_rate": ev["sustainable"],
        "binding_limit": ev["binding"],
        "warnings": warnings,
        "limits": ev["caps"],
        "hot_shard_share": ev["h"],
        "hot_key_share": ev["p_max"],
        "shards_needed": _shards_needed(inp, rate),
        "getrecords_calls_per_shard_per_s": polls_per_shard,
        "getrecords_calls_ok": polls_per_shard <= lim.read_calls,
        "lambda_concurrency": shards * inp.parallelization_factor,
        "concurrency": quota,
        "latency_s": 0.5 + cycle,  # half a poll interval on average, then one batch
        "keeps_up": rate <= ev["sustainable"],
        "iterator_age_growth_s_per_s": growth,
        "data_loss_after_s": loss_after,
        "burst": burst,
        "cost_monthly_usd": _cost(inp, shards, a, ev["s_k"], b, cycle),
        "advice": _advice(inp, shards, ev),
        "prices_note": PRICES_NOTE,
    }


def _shard_count(inp: Inputs) -> int:
    """The shards given, or those the target rate needs (with the key skew, when it binds)."""
    if inp.shards is not None:
        return inp.shards
    assert inp.target_rate is not None
    need = _shards_needed(inp, inp.target_rate)
    return need["with_skew"] if need["with_skew"] > 0 else max(need.values())


def _seed(inp: Inputs, shards: int, ev: dict[str, Any]) -> dict[str, float]:
    """The talk's two figures. A batch holds what Lambda can be handed (the payload cap) and a shard can
    be read (2 MiB per second): "effective" never exceeds "maximum theoretical"."""
    duration = inp.duration if inp.duration is not None else ev["cycle"]
    batch_bytes = min(inp.batch_size * inp.record_size, ev["b"] * ev["a"] * inp.record_size)
    theoretical = shards * 2 * MIB / duration
    return {
        "max_theoretical_bytes_per_s": theoretical,
        "effective_bytes_per_s": min(theoretical, shards * batch_bytes / duration),
        "duration_s": duration,
        "batch_bytes": batch_bytes,
    }


def _warnings(inp: Inputs, ev: dict[str, Any]) -> list[str]:
    """What the records, the stream's mode and the keys say about the plan."""
    warnings = []
    if inp.record_size + inp.key_bytes > inp.max_record_size:
        warnings.append(f"a user record of {inp.record_size + inp.key_bytes:,.0f} bytes (data + key) is over the stream's "
                        f"maximum record size of {inp.max_record_size:,.0f} bytes: Kinesis refuses it (a stream "
                        "can allow up to 10 MiB: MaxRecordSizeInKiB)")
    if inp.distribution == "AUTO":
        warnings.append("an AUTO stream keeps no order (not even per key) and takes no KPL aggregates: records "
                        "are placed by the service, so no key can be hot")
        if inp.aggregation != "auto" and float(inp.aggregation) > 1:
            warnings.append("--aggregation is ignored on an AUTO stream")
    if inp.record_size + inp.key_bytes > MIB:
        per_shard = inp.limits.write_bytes / (inp.record_size + inp.key_bytes)
        warnings.append(f"records above 1 MiB draw on each shard's burst tank (up to the stream's maximum record "
                        f"size, refilled at 1 MiB/s): sustained, a shard takes {per_shard:.2f} such records/s; AWS "
                        "means them for under 2% of the traffic")
    if inp.mode != "provisioned":
        warm = max(4.0, inp.warm_throughput_mibps or 0.0)
        ingest_mibps = inp.records_per_second * ev["bytes_per_user"] / MIB
        if ingest_mibps > warm:
            warnings.append(f"the ingest rate ({ingest_mibps:.1f} MiB/s) is above the {warm:g} MiB/s an on-demand "
                            "stream handles without scaling (4 MiB/s at creation, or its warm throughput): expect "
                            "throttling while it scales up (up to twice the previous peak at a time)")
    if ev["hot_key_dominates"] and inp.distribution != "AUTO":
        warnings.append(f"one key carries {ev['p_max']:.0%} of the traffic and most of the busiest shard's: more "
                        "shards barely help (salt the key)")
    return warnings


def _backlog(inp: Inputs, shards: int, ev: dict[str, Any]) -> tuple[float, float | None, dict[str, Any]]:
    """(iterator age growth per second, seconds until data loss or None, the burst's backlog and drain)."""
    total_service = ev["mu_shard"] * shards
    # Arrival on the busiest shard, against its service rate.
    hot_arrival = inp.records_per_second * ev["h"]
    growth = max(0.0, 1 - ev["mu_shard"] / hot_arrival) if hot_arrival > 0 else 0.0
    limit_age = inp.retention_hours * 3600
    if inp.max_record_age is not None:
        limit_age = min(limit_age, inp.max_record_age)
    loss_after = limit_age / growth if growth > 0 else None
    burst: dict[str, Any] = {}
    if inp.burst_rate is not None and inp.burst_seconds > 0:
        excess = inp.burst_rate - min(total_service, ev["sustainable"])
        backlog = max(0.0, excess) * inp.burst_seconds
        headroom = min(total_service, ev["sustainable"]) - inp.records_per_second
        burst = {"backlog_records": backlog,
                 "drain_seconds": (backlog / headroom) if backlog and headroom > 0 else (0.0 if not backlog else None),
                 "peak_iterator_age_s": backlog / min(total_service, ev["sustainable"]) if backlog else 0.0}
    return growth, loss_after, burst


def _concurrency(inp: Inputs, shards: int, warnings: list[str]) -> dict[str, Any]:
    """The concurrent executions the mapping needs against the account's; a shortfall is added to `warnings`."""
    from streamkit.estimator.memory import concurrency as concurrency_needed

    quota = concurrency_needed(shards=shards, parallelization_factor=inp.parallelization_factor,
                               account_concurrency=inp.account_concurrency, dispatcher_lanes=inp.dispatcher_lanes,
                               burst_multiplier=(inp.reshard_to / shards) if inp.reshard_to else 1.0,
                               init_seconds=inp.init_duration)
    if not quota["fits"]:
        warnings.append(f"the mapping needs {quota['needed']:,} concurrent executions (shards x ParallelizationFactor"
                        f"{' + the dispatcher fan-out' if inp.dispatcher_lanes else ''}) and the account allows "
                        f"{inp.account_concurrency:,} (--account-concurrency): a binding limit of its own")
    if "burst" in quota and not quota["burst"]["fits_after"]:
        warnings.append(f"after the reshard to {inp.reshard_to} shards the mapping needs "
                        f"{quota['burst']['needed_after']:,} concurrent executions, over the account's "
                        f"{inp.account_concurrency:,}")
    return quota


def _cost(inp: Inputs, shards: int, a: float, s_k: float, b: int, cycle: float) -> dict[str, float]:
    rate = inp.records_per_second
    k_rate = rate / a
    seconds = HOURS_PER_MONTH * 3600
    payload_units = k_rate * math.ceil(s_k / (25 * 1024)) * seconds
    provisioned = shards * 0.015 * HOURS_PER_MONTH + payload_units / 1e6 * 0.014
    gb_in_ondemand = k_rate * math.ceil(s_k / 1024) * 1024 * seconds / 1e9
    consumers = inp.consumers + inp.efo_consumers
    on_demand = 0.04 * HOURS_PER_MONTH + gb_in_ondemand * 0.08 + gb_in_ondemand * 0.04 * consumers
    # On-demand Advantage: no per-stream charge; ingest and retrieval "at least 60% lower" than Standard
    # (AWS's documentation; no price list here): 40% of Standard's, an upper bound.
    advantage = (gb_in_ondemand * 0.08 + gb_in_ondemand * 0.04 * consumers) * 0.4
    efo = inp.efo_consumers * (shards * 0.015 * HOURS_PER_MONTH + rate * s_k / a * seconds / 1e9 * 0.013)
    invocations = k_rate / b * seconds
    gb_s = invocations * cycle * inp.lambda_memory_mb / 1024
    lambda_cost = invocations / 1e6 * 0.20 + gb_s * (0.0000133334 if inp.arm64 else 0.0000166667)
    stream = {"provisioned": provisioned + efo, "on-demand": on_demand, "on-demand-advantage": advantage}[inp.mode]
    return {"provisioned": round(provisioned + efo, 2), "on_demand": round(on_demand, 2),
            "on_demand_advantage": round(advantage, 2), "lambda": round(lambda_cost, 2),
            "total": round(stream + lambda_cost, 2)}


def _advice(inp: Inputs, shards: int, ev: dict[str, Any]) -> list[dict[str, Any]]:
    """What would raise the sustainable rate most, ranked by effect."""
    base = ev["sustainable"]
    options: list[tuple[str, Inputs | None, int]] = []
    from dataclasses import replace

    need = _shards_needed(inp, inp.records_per_second)["with_skew"]
    if need > shards:
        options.append((f"use {need} shards", replace(inp, shards=need), need))
    else:
        options.append((f"double the shards to {shards * 2}", replace(inp, shards=shards * 2), shards * 2))
    if inp.aggregation != "auto" and float(inp.aggregation) <= 1:
        options.append(("aggregate records (KPL format, streamkit's producer)", replace(inp, aggregation="auto"), shards))
    if inp.batch_size < ESM_BATCH_SIZE_MAX and inp.duration is None:
        bigger = min(ESM_BATCH_SIZE_MAX, inp.batch_size * 4)
        options.append((f"raise BatchSize to {bigger}", replace(inp, batch_size=bigger), shards))
    if inp.parallelization_factor < 10:
        options.append(("raise ParallelizationFactor to 10", replace(inp, parallelization_factor=10), shards))
    if inp.consumers > 1:
        options.append((f"move {inp.consumers - 1} polling consumers to enhanced fan-out",
                        replace(inp, consumers=1, efo_consumers=inp.efo_consumers + inp.consumers - 1), shards))
    if ev["p_max"] > 1 / max(1, shards) and (inp.key_skew > 0 or inp.key_shares):
        salted = tuple(sorted((x / 8 for x in (inp.key_shares or tuple(zipf_shares(inp.partition_keys, inp.key_skew)))
                               for _ in range(8)), reverse=True))
        options.append(("salt hot keys (key#0..7) and reorder downstream", replace(inp, key_shares=salted), shards))
    ranked = []
    for text, new, n in options:
        if new is None:
            continue
        rate = _evaluate(new, n)["sustainable"]
        ranked.append({"advice": text, "sustainable_rate": rate, "gain": (rate / base) if base > 0 else math.inf})
    if inp.failure_rate > 0 and inp.max_record_age is None:
        ranked.append({"advice": "set MaximumRetryAttempts or MaximumRecordAgeInSeconds (and an OnFailure "
                                 "destination): without them a poison record blocks its shard until it expires",
                       "sustainable_rate": base, "gain": 1.0})
    ranked.sort(key=lambda r: -r["gain"])
    return ranked
