"""Memory advice and concurrency in the estimator (streamkit.estimator.memory): pure arithmetic (~0.1 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamkit.estimator.measure import measure_handler
from streamkit.estimator.memory import concurrency, cpu_share, memory_advice
from streamkit.estimator.model import Inputs, estimate


def advice(**overrides: object) -> dict[str, object]:
    args: dict[str, object] = dict(batch_seconds=0.8, overhead_seconds=0.0, measured_at_mb=256, records_per_batch=100,
                                   parallelization_factor=1, demand_per_shard=300.0)
    args.update(overrides)
    return memory_advice(**args)  # type: ignore[arg-type]


def rows_by_memory(result: dict[str, object]) -> dict[int, dict[str, float]]:
    return {r["memory_mb"]: r for r in result["rows"]}  # type: ignore[attr-defined, index]


def test_cpu_grows_with_memory_up_to_one_vcpu_at_1769_mb() -> None:
    assert cpu_share(1769) == 1.0 and cpu_share(10_240) == 1.0 and cpu_share(884.5) == pytest.approx(0.5)


def test_a_cpu_bound_handler_halves_its_time_when_memory_doubles_and_stops_at_one_vcpu() -> None:
    rows = rows_by_memory(advice())
    assert rows[512]["batch_seconds"] == pytest.approx(0.4)
    assert rows[128]["batch_seconds"] == pytest.approx(1.6)
    assert rows[1769]["batch_seconds"] == pytest.approx(0.8 * 256 / 1769)
    assert rows[10_240]["batch_seconds"] == rows[1769]["batch_seconds"]  # one thread uses one vCPU at most


def test_the_invoke_overhead_does_not_scale_with_memory() -> None:
    rows = rows_by_memory(advice(batch_seconds=0.82, overhead_seconds=0.02))
    assert rows[512]["batch_seconds"] == pytest.approx(0.02 + 0.4)


def test_billed_duration_rounds_up_to_the_millisecond_and_prices_gb_seconds() -> None:
    rows = rows_by_memory(advice(batch_seconds=0.1234, measured_at_mb=1024))
    assert rows[1024]["billed_ms"] == 124
    assert rows[1024]["usd_per_million_records"] == pytest.approx((0.20 / 1e6 + 0.124 * 1.0 * 0.0000166667) * 1e4)


def test_the_recommendation_is_the_cheapest_size_that_keeps_up() -> None:
    result = advice(demand_per_shard=300.0)  # 512 MB: 250 rec/s; 1,024 MB: 500 rec/s
    assert result["recommended_mb"] == 1024 and result["keeps_up"]
    assert "CPU-bound, single-threaded" in result["notes"][0]  # type: ignore[index]


def test_when_no_size_keeps_up_the_fastest_is_recommended_and_it_is_said() -> None:
    result = advice(demand_per_shard=1e6)
    assert result["recommended_mb"] == 1769 and not result["keeps_up"]
    assert any("no size keeps up" in n for n in result["notes"])  # type: ignore[attr-defined]


def test_a_handler_that_mostly_waits_is_said_to_look_io_bound_and_gains_little() -> None:
    result = advice(cpu_fraction=0.2)
    assert any("looks I/O-bound" in n for n in result["notes"])  # type: ignore[attr-defined]
    assert rows_by_memory(result)[512]["batch_seconds"] == pytest.approx(0.8 * (0.2 * 0.5 + 0.8))


def test_measure_reports_the_share_of_time_on_cpu(tmp_path: Path) -> None:
    sample = tmp_path / "s.jsonl"
    sample.write_text('{"a": 1}\n')
    wall, cpu = [0.0], [0.0]

    def waits_mostly(_record: object) -> None:  # 10 ms per record, 2 of them on CPU
        wall[0] += 0.010
        cpu[0] += 0.002

    measured = measure_handler(waits_mostly, sample, clock=lambda: wall[0], cpu_clock=lambda: cpu[0])
    assert measured["cpu_fraction"] == pytest.approx(0.2) and measured["per_record_ms"] == pytest.approx(10.0)


def test_concurrency_over_the_account_quota_is_a_binding_limit_of_its_own() -> None:
    r = estimate(Inputs(shards=600, records_per_second=200_000, duration=0.8, parallelization_factor=2))
    assert r["concurrency"]["needed"] == 1200 and not r["concurrency"]["fits"]
    assert r["binding_limit"] == "account concurrency"
    assert r["limits"]["account concurrency"] == pytest.approx(r["limits"]["function time"] * 1000 / 1200)
    assert any("a binding limit of its own" in w for w in r["warnings"])
    assert estimate(Inputs(shards=600, records_per_second=200_000, duration=0.8, parallelization_factor=2,
                           account_concurrency=2000))["binding_limit"] != "account concurrency"


def test_a_dispatcher_fanning_out_to_lambda_adds_its_lanes() -> None:
    c = concurrency(shards=10, parallelization_factor=2, dispatcher_lanes=16)
    assert (c["mapping"], c["dispatcher_fan_out"], c["needed"]) == (20, 320, 340)


def test_a_reshard_scales_at_1000_environments_per_10_s_with_one_cold_start_each() -> None:
    c = concurrency(shards=100, parallelization_factor=10, account_concurrency=5000, burst_multiplier=4,
                    init_seconds=0.3)
    burst = c["burst"]
    assert burst["needed_after"] == 4000 and burst["new_environments"] == 3000
    assert burst["seconds_to_scale"] == 30 and burst["cold_starts"] == 3000
    assert burst["cold_start_seconds"] == pytest.approx(900.0)
