"""Admission by drain time (producer.admission and the accumulator's use of it): pure, time passed in."""

from __future__ import annotations

import pytest

from producer.accumulator import Accumulator, Pending
from producer.admission import ADMIT_SHARE, FLOOR_SHARE, MARGIN_MIN, DrainRate, nominal_rates
from producer.config import ProducerConfig
from streamkit.hashing import MAX_HASH_KEY, ShardInfo, ShardMap
from streamkit.limits import MIB

ONE_SHARD = ShardMap([ShardInfo(shard_id="A", starting_hash_key=0, ending_hash_key=MAX_HASH_KEY)])


def rate(**kw: float) -> DrainRate:
    nb, nr = nominal_rates(1.5)
    return DrainRate(nominal_bytes=nb, nominal_records=nr, bytes_per_record=kw.pop("bytes_per_record", MIB), **kw)


def rec(size: int, t: float = 0.0, key: str = "k") -> Pending:
    return Pending(b"x" * (size - len(key)), key, None, t, size)


def test_nominal_rates_follow_the_shard_limits_rate_limit_shards_and_warm_throughput() -> None:
    assert nominal_rates(1.5) == (MIB, 1000)  # pacing above the limits: the limits are what a shard accepts
    assert nominal_rates(0) == (MIB, 1000)  # pacing off: the limits
    assert nominal_rates(0.5) == (MIB / 2, 500)
    assert nominal_rates(1.0, shards=4) == (4 * MIB, 4000)  # an AUTO stream's one queue: all its shards
    assert nominal_rates(1.0, shards=4, warm_mibps=10) == (10 * MIB, 4000)
    assert nominal_rates(1.0, shards=4, warm_mibps=2) == (4 * MIB, 4000)  # warm throughput below the shards'


def test_before_anything_is_measured_the_budget_is_half_the_ttl_at_the_nominal_rate() -> None:
    r = rate()
    assert r.budget(0.0, ttl=30.0) == pytest.approx(MIB * 30 * ADMIT_SHARE)
    # Plain records of 100 B: 1,000 records/s is the limit that binds, not 1 MiB/s.
    plain = rate(bytes_per_record=0)
    assert plain.sealed(100) is True and plain.sealed(100) is False
    assert plain.budget(0.0, ttl=30.0) == pytest.approx(1000 * 100 * 30 * ADMIT_SHARE)


def test_a_throttled_shard_counts_as_accepting_what_it_accepted() -> None:
    r = rate()
    for i in range(10):  # 100 KB/s accepted, and throttled throughout: a shard shared with another writer
        r.observe(float(i), 100_000, 100_000, throttled=False, sent=float(i))
        r.observe(float(i) + 0.5, 0, 100_000, throttled=True, sent=float(i) + 0.5)
    assert r.rate(9.5) == pytest.approx(1_000_000 / 9.5)
    # Unthrottled, the same acceptance is just what was offered: the nominal rate stands.
    calm = rate()
    for i in range(10):
        calm.observe(float(i), 100_000, 100_000, throttled=False, sent=float(i))
    assert calm.rate(9.0) == MIB
    # A server without limits that accepts more than the nominal rate: what it accepts.
    fast = rate()
    for i in range(10):
        fast.observe(float(i), 4 * MIB, 4 * MIB, throttled=False, sent=float(i))
    assert fast.rate(9.0) == pytest.approx(40 * MIB / 9.0)


def test_a_shard_that_accepts_nothing_keeps_a_floor_and_the_window_forgets() -> None:
    r = rate()
    for i in range(5):
        r.observe(float(i), 0, MIB, throttled=True, sent=float(i))
    assert r.rate(4.0) == pytest.approx(MIB * FLOOR_SHARE)
    r.observe(20.0, MIB, MIB, throttled=False, sent=20.0)  # the throttles left the 10 s window
    assert r.throttles == 0 and r.rate(20.0) == MIB


def test_room_at_says_when_the_last_second_of_writes_leaves_room() -> None:
    r = rate()
    r.observe(10.1, 600_000, 600_000, throttled=False, sent=10.0)
    r.observe(10.3, 400_000, 400_000, throttled=False, sent=10.2)
    assert r.room_at(10.5, 40_000) is None  # 1,000,000 + 40,000 bytes fit in 1 MiB
    # 600,000 more need the first write out of the second: at 11.0 (sent time), plus the margin.
    assert r.room_at(10.5, 600_000) == pytest.approx(11.0 + MARGIN_MIN)
    assert r.room_at(10.5, MIB) == pytest.approx(11.2 + MARGIN_MIN)
    assert r.room_at(11.25, MIB) is None  # both writes have left the second


def test_the_margin_grows_when_a_timed_retry_is_throttled_and_eases_back() -> None:
    r = rate()
    r.observe(1.0, 0, MIB, throttled=True, sent=1.0)
    assert r.margin == MARGIN_MIN
    r.observe(2.0, 0, MIB, throttled=True, sent=2.0)  # throttled again although timed: the shard admits later
    assert r.margin == 2 * MARGIN_MIN
    for t in range(3, 40):
        r.observe(float(t), MIB, MIB, throttled=False, sent=float(t))
    assert r.margin == MARGIN_MIN


def test_the_accumulator_refuses_a_record_its_shard_cannot_drain_in_time_and_takes_it_into_an_empty_one() -> None:
    acc = Accumulator(ProducerConfig(record_ttl=2.0, rate_limit=0), ONE_SHARD)  # budget: 1 s at 1 MiB/s
    assert acc.add_fields(rec(600_000), b"", "k", None, 0.0, 600_000) is not None
    assert acc.add_fields(rec(500_000), b"", "k", None, 0.0, 500_000) is None  # would hold 1.1 MB: over 1 MiB
    assert acc.buffered_records == 1
    assert acc.add(rec(500_000)) is not None  # `add` is for records admitted already (moves, reroutes)
    assert acc.buffered_records == 2
    acc.seal_all()
    batch = acc.take_batch(0.0, flush=True)
    for e in batch:
        acc.finished(e)
    acc.seal_all()
    for e in acc.take_batch(0.0, flush=True):
        acc.finished(e)
    q = acc.queue_for("k", None)
    assert q.held_bytes == 0
    # An empty shard takes any record, whatever its budget says.
    big = Accumulator(ProducerConfig(record_ttl=0.01, rate_limit=0), ONE_SHARD)
    assert big.add_fields(rec(900_000), b"", "k", None, 0.0, 900_000) is not None


def test_expire_mode_has_no_admission_by_drain_time() -> None:
    acc = Accumulator(ProducerConfig(record_ttl=0.01, rate_limit=0, buffer_full="expire"), ONE_SHARD)
    for _ in range(5):
        assert acc.add_fields(rec(500_000), b"", "k", None, 0.0, 500_000) is not None


def test_after_a_throttle_pacing_waits_for_room_in_the_shards_second() -> None:
    acc = Accumulator(ProducerConfig(rate_limit=1.5, aggregation=False), ONE_SHARD)
    acc.add(rec(700_000, key="a"))
    (first,) = acc.take_batch(0.0, flush=True)
    first.sent_at = 0.0
    acc.observe(first, 0.05, accepted=True, throttled=False)
    acc.finished(first)
    acc.add(rec(700_000, 0.4, key="b"))
    (second,) = acc.take_batch(0.5, flush=True)  # 1.5 x pacing lets it go at once
    second.sent_at = 0.5
    acc.observe(second, 0.55, accepted=False, throttled=True)
    acc.retry_later(second, 0.55, "throttled", "ProvisionedThroughputExceededException")
    fits = acc.throttled_retry_at(second, 0.55)
    assert fits == pytest.approx(1.0 + MARGIN_MIN)
    assert acc.take_batch(0.9, flush=True) == []  # paced by the second's room now, not just the bucket
    assert acc.take_batch(1.0 + MARGIN_MIN + 0.001, flush=True) == [second]


def test_an_untried_record_past_its_ttl_waits_while_its_shard_makes_progress_and_expires_once_it_is_stuck() -> None:
    acc = Accumulator(ProducerConfig(record_ttl=10.0, rate_limit=0, aggregation=False), ONE_SHARD)
    acc.add(rec(1000, 0.0, key="a"))
    acc.add(rec(999, 0.0, key="a"))
    (head,) = acc.take_batch(0.0, flush=True)  # ordered: one record of a key in flight; the second waits untried
    acc.observe(head, 5.0, accepted=True, throttled=False)  # the shard accepted a record at 5 s
    acc.finished(head)
    assert acc.expire(12.0, 10.0) == []  # the second is past its TTL, untried, but the shard is not stuck
    assert [e.size for e in acc.expire(15.0, 10.0)] == [999]  # nothing accepted for 10 s: stuck


def test_a_tried_record_past_its_ttl_waits_while_its_shard_accepts_and_expire_mode_expires_untried_ones_too() -> None:
    # README, "Overload slows the caller; it does not expire records": a record whose shard keeps accepting
    # records is written late rather than given up. (This test asserted the opposite for a throttled record
    # until 395ffb6 made the accumulator keep that guarantee: 6,083 of 30,000 readings went to on_failure.)
    acc = Accumulator(ProducerConfig(record_ttl=10.0, rate_limit=0, aggregation=False), ONE_SHARD)
    acc.add(rec(1000, 0.0, key="a"))
    (head,) = acc.take_batch(0.0, flush=True)
    acc.observe(head, 0.1, accepted=False, throttled=True)
    acc.retry_later(head, 0.2, "throttled", "ProvisionedThroughputExceededException")
    acc.observe(head, 9.0, accepted=True, throttled=False)  # (another record of the shard got through)
    assert acc.expire(10.5, 10.0) == []  # past its TTL, but its shard accepted a record 1.5 s ago
    assert acc.expire(19.5, 10.0) == [head]  # nothing accepted for 10 s: stuck, given up
    old = Accumulator(ProducerConfig(record_ttl=10.0, rate_limit=0, aggregation=False, buffer_full="expire"),
                      ONE_SHARD)
    old.add(rec(1000, 0.0, key="a"))
    old.add(rec(1000, 0.0, key="a"))
    old.take_batch(0.0, flush=True)
    assert len(old.expire(10.5, 10.0)) == 1
