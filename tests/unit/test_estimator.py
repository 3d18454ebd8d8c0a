"""The estimator's formulas on hand-computed cases, and the monotonicity they must have."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamkit.errors import ConfigurationError
from streamkit.estimator import Inputs, estimate, simulate
from streamkit.estimator.model import hot_shard_share, zipf_shares

MIB = 1024 * 1024


def test_seed_figures_are_the_talks_two_formulas() -> None:
    r = estimate(Inputs(shards=4, record_size=1024, batch_size=100, duration=0.2))
    assert r["seed"]["max_theoretical_bytes_per_s"] == 4 * 2 * MIB / 0.2
    assert r["seed"]["effective_bytes_per_s"] == 4 * 100 * 1024 / 0.2


def test_function_bound_rate_is_batch_over_duration_per_shard() -> None:
    # 1 shard, uniform keys: 100 records per 0.25 s = 400 records/s.
    r = estimate(Inputs(shards=1, record_size=100, batch_size=100, duration=0.25, records_per_second=1000))
    assert r["sustainable_rate"] == pytest.approx(400)
    assert r["binding_limit"] == "function time" and not r["keeps_up"]
    assert r["iterator_age_growth_s_per_s"] == pytest.approx(1 - 400 / 1000)
    assert r["data_loss_after_s"] == pytest.approx(24 * 3600 / 0.6)


def test_write_record_limit_binds_small_records_without_aggregation() -> None:
    r = estimate(Inputs(shards=2, record_size=100, key_bytes=16, batch_size=10_000, per_record_ms=0.001,
                        records_per_second=1000, partition_keys=100_000))
    assert r["binding_limit"] == "shard write records"
    h = hot_shard_share(zipf_shares(100_000, 0), 2)
    assert r["sustainable_rate"] == pytest.approx(1000 / h)


def test_write_byte_limit_binds_large_records() -> None:
    r = estimate(Inputs(shards=1, record_size=100 * 1024, key_bytes=16, batch_size=1, per_record_ms=0.001,
                        records_per_second=5, partition_keys=1))
    assert r["binding_limit"] == "shard write bytes"
    assert r["sustainable_rate"] == pytest.approx(MIB / (100 * 1024 + 16))


def test_lambda_payload_cap_limits_the_batch() -> None:
    r = estimate(Inputs(shards=1, record_size=100 * 1024, key_bytes=16, batch_size=1000, per_record_ms=1))
    b = math.floor(6 * 1024 * 1024 / (4 / 3 * 100 * 1024 + 530 + 16))  # Lambda enforces "6 MB" as 6 MiB
    assert r["lambda_batch_records"] == b < 1000


def test_a_hot_key_caps_the_stream_whatever_the_shard_count() -> None:
    shares = (0.5,) + (0.5 / 1000,) * 1000
    base = Inputs(shards=4, record_size=100, key_shares=shares, partition_keys=1001, batch_size=10_000,
                  per_record_ms=0.0001, aggregation=1)
    r4, r64 = estimate(base), estimate(replace(base, shards=64))
    # The hot key's shard fills first: its write limit binds, and the estimate says one key dominates.
    assert r4["binding_limit"] == r64["binding_limit"] == "shard write records"
    assert all(any("one key carries 50%" in w for w in r["warnings"]) for r in (r4, r64))
    assert r4["sustainable_rate"] == pytest.approx(1000 / (0.5 + 0.5 / 4))
    assert r64["sustainable_rate"] <= 1000 / 0.5  # 16x the shards, and never past what the key alone allows
    assert r64["shards_needed"]["with_skew"] == -1 or r64["sustainable_rate"] < 2000


def test_aggregation_auto_packs_to_the_record_limit() -> None:
    r = estimate(Inputs(shards=1, record_size=100, aggregation="auto"))
    assert 9000 < r["aggregation"] < 10_000
    assert r["kinesis_record_bytes"] <= MIB


def test_burst_backlog_and_drain_time() -> None:
    r = estimate(Inputs(shards=1, record_size=100, batch_size=100, duration=0.1, records_per_second=500,
                        burst_rate=1500, burst_seconds=10))
    mu = 100 / 0.1
    assert r["burst"]["backlog_records"] == pytest.approx((1500 - mu) * 10)
    assert r["burst"]["drain_seconds"] == pytest.approx((1500 - mu) * 10 / (mu - 500))


def test_failures_slow_service_and_poison_advice_is_given() -> None:
    clean = estimate(Inputs(shards=1, record_size=100, batch_size=10, duration=0.1))
    flaky = estimate(Inputs(shards=1, record_size=100, batch_size=10, duration=0.1, failure_rate=0.01))
    assert flaky["sustainable_rate"] < clean["sustainable_rate"]
    assert any("MaximumRetryAttempts" in a["advice"] for a in flaky["advice"])


def test_target_rate_solves_for_shards() -> None:
    r = estimate(Inputs(shards=None, target_rate=5000, records_per_second=5000, record_size=1024, batch_size=500,
                        per_record_ms=0.1, partition_keys=100_000))
    assert r["sustainable_rate"] >= 5000
    smaller = estimate(Inputs(shards=r["shards"] - 1, records_per_second=5000, record_size=1024, batch_size=500,
                              per_record_ms=0.1, partition_keys=100_000))
    assert smaller["sustainable_rate"] < 5000


def test_cost_of_provisioned_shards() -> None:
    r = estimate(Inputs(shards=2, record_size=1024, records_per_second=1, batch_size=100, duration=0.1))
    assert r["cost_monthly_usd"]["provisioned"] >= 2 * 0.015 * 730


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match="parallelization-factor"):
        Inputs(parallelization_factor=11)
    with pytest.raises(ConfigurationError, match="failure-rate"):
        Inputs(failure_rate=1.0)


def test_simulation_matches_the_closed_form_service_rate() -> None:
    inp = Inputs(shards=2, record_size=200, batch_size=50, per_record_ms=2, per_batch_ms=10,
                 records_per_second=2000, partition_keys=10_000)
    r = estimate(inp)
    sim = simulate(inp, seconds=120)
    assert sim.throughput == pytest.approx(r["sustainable_rate"], rel=0.05)


inputs = st.builds(
    Inputs,
    shards=st.integers(1, 64),
    record_size=st.floats(10, 500_000),
    records_per_second=st.floats(1, 100_000),
    batch_size=st.integers(1, 10_000),
    duration=st.floats(0.01, 60),
    parallelization_factor=st.integers(1, 10),
    partition_keys=st.integers(1, 2000),
    key_skew=st.floats(0, 2),
)


@settings(max_examples=150, deadline=None)
@given(inputs, st.integers(1, 64))
def test_more_shards_never_lower_capacity(inp: Inputs, extra: int) -> None:
    assert estimate(replace(inp, shards=inp.shards + extra))["sustainable_rate"] >= \
        estimate(inp)["sustainable_rate"] * (1 - 1e-9)  # type: ignore[operator]


@settings(max_examples=150, deadline=None)
@given(inputs, st.floats(1.0, 10.0))
def test_a_longer_duration_never_raises_capacity(inp: Inputs, factor: float) -> None:
    assert estimate(replace(inp, duration=inp.duration * factor))["sustainable_rate"] <= \
        estimate(inp)["sustainable_rate"] * (1 + 1e-9)  # type: ignore[operator]


# -- sanity (issue 13): the figures never contradict each other ---------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(shards=st.integers(1, 64), record_size=st.floats(1, 2 * 1024 * 1024), rate=st.floats(1, 1e6),
       batch=st.integers(1, 10_000), per_record=st.floats(0, 5), skew=st.floats(0, 2), keys=st.integers(1, 10_000),
       aggregation=st.sampled_from([1.0, "auto"]), duration=st.one_of(st.none(), st.floats(0.01, 60)))
def test_the_binding_limit_gives_the_sustainable_rate_and_effective_never_exceeds_theoretical(
        shards: int, record_size: float, rate: float, batch: int, per_record: float, skew: float, keys: int,
        aggregation: object, duration: float | None) -> None:
    r = estimate(Inputs(shards=shards, record_size=record_size, records_per_second=rate, batch_size=batch,
                        per_record_ms=per_record, key_skew=skew, partition_keys=keys, aggregation=aggregation,  # type: ignore[arg-type]
                        duration=duration))
    assert r["limits"][r["binding_limit"]] == r["sustainable_rate"]
    assert r["seed"]["effective_bytes_per_s"] <= r["seed"]["max_theoretical_bytes_per_s"]


def test_a_record_over_the_streams_maximum_is_flagged() -> None:
    r = estimate(Inputs(shards=1, record_size=2 * 1024 * 1024))
    assert any("over the stream's maximum record size" in w for w in r["warnings"])
    ok = estimate(Inputs(shards=1, record_size=2 * 1024 * 1024, max_record_size=10 * 1024 * 1024))
    assert not any("over the stream's maximum record size" in w for w in ok["warnings"])


# -- Kinesis today (issue 15) ----------------------------------------------------------------------
def test_an_auto_stream_has_no_hot_key_no_aggregation_and_says_it_keeps_no_order() -> None:
    skewed = dict(shards=4, record_size=100, key_skew=2.0, partition_keys=100, mode="on-demand")
    keyed = estimate(Inputs(**skewed))  # type: ignore[arg-type]
    auto = estimate(Inputs(**skewed, distribution="AUTO", aggregation="auto"))  # type: ignore[arg-type]
    assert auto["sustainable_rate"] > keyed["sustainable_rate"]  # the hot key's shard binds the keyed stream
    assert auto["limits"]["hot key"] == math.inf and auto["binding_limit"] != "hot key" and auto["aggregation"] == 1.0
    assert any("keeps no order" in w for w in auto["warnings"])
    with pytest.raises(ConfigurationError, match="on-demand"):
        Inputs(shards=1, distribution="AUTO")


def test_large_records_are_flagged_with_their_sustained_rate_per_shard() -> None:
    r = estimate(Inputs(shards=2, record_size=4 * 1024 * 1024, max_record_size=10 * 1024 * 1024))
    (w,) = [w for w in r["warnings"] if "burst tank" in w]
    assert "0.25 such records/s" in w


def test_on_demand_advantage_is_priced_below_standard_and_warm_throughput_is_checked() -> None:
    base = dict(shards=4, record_size=1024, records_per_second=8000)
    std = estimate(Inputs(**base, mode="on-demand"))  # type: ignore[arg-type]
    adv = estimate(Inputs(**base, mode="on-demand-advantage", warm_throughput_mibps=20))  # type: ignore[arg-type]
    assert adv["cost_monthly_usd"]["on_demand_advantage"] <= 0.4 * std["cost_monthly_usd"]["on_demand"]
    assert "Advantage" in adv["prices_note"] and "2024" in adv["prices_note"]
    assert any("without scaling" in w for w in std["warnings"])  # ~8 MiB/s over the 4 MiB/s a new stream takes
    assert not any("without scaling" in w for w in adv["warnings"])  # kept warm for 20 MiB/s
