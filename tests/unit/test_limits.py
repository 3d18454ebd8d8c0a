"""Token buckets and per-shard limit decisions (the proxy's pure core), on an injected clock."""

from __future__ import annotations

from streamkit.ratelimit import KinesisLimits, ShardLimiter, TokenBucket


def test_bucket_refills_at_its_rate_up_to_capacity() -> None:
    b = TokenBucket.full(rate=10, now=0.0)
    assert b.try_take(10, 0.0) and not b.try_take(1, 0.0)
    assert b.try_take(5, 0.5) and not b.try_take(1, 0.5)
    b.refill(100.0)
    assert b.tokens == 10


def test_a_steady_writer_gets_exactly_the_record_rate_after_the_first_second() -> None:
    lim = ShardLimiter(KinesisLimits())
    accepted = 0
    for tick in range(10_000):  # 5,000 records/s offered for 2 s, 1 KiB each
        if lim.admit_write("s", 10, tick / 5000):
            accepted += 1
    assert 2990 <= accepted <= 3010  # 1,000 burst + 1,000/s * 2 s


def test_byte_limit_binds_first_for_large_records_and_counts_each_byte() -> None:
    lim = ShardLimiter(KinesisLimits())
    big = 100 * 1024
    admitted = sum(lim.admit_write("s", big, 0.0) for _ in range(20))
    assert admitted == 10  # 1 MiB / 100 KiB
    assert lim.admit_write("s", big, 0.1)  # 0.1 s refills ~104,857 bytes


def test_limits_scale() -> None:
    lim = ShardLimiter(KinesisLimits(scale=0.1))
    assert sum(lim.admit_write("s", 1, 0.0) for _ in range(500)) == 100


def test_every_scale_in_zero_to_one_serves_reads_and_writes() -> None:
    """A scaled-down shard still admits one call and one record at a time (0.1 x 5 calls/s is 0.5 of a call)."""
    for scale in (0.001, 0.01, 0.1, 0.15, 0.5, 1.0):
        lim = ShardLimiter(KinesisLimits(scale=scale))
        assert lim.admit_read_call("s", 0.0), scale
        assert lim.admit_write("s", 1, 0.0), scale
        calls = sum(lim.admit_read_call("s", t / 10) for t in range(1, 10_001))  # 1,000 s at 10 tries/s
        # at the scaled rate (a bucket of one call loses what refills between tries while it is full)
        assert 0.9 * 1000 * 5 * scale - 1 <= calls <= 1000 * 5 * scale + 5, (scale, calls)  # + the first full bucket


def test_shards_have_separate_budgets() -> None:
    lim = ShardLimiter(KinesisLimits(scale=0.01))
    assert sum(lim.admit_write("a", 1, 0.0) for _ in range(50)) == 10
    assert sum(lim.admit_write("b", 1, 0.0) for _ in range(50)) == 10


def test_five_read_calls_per_second() -> None:
    lim = ShardLimiter(KinesisLimits())
    assert [lim.admit_read_call("s", 0.0) for _ in range(6)] == [True] * 5 + [False]
    assert lim.admit_read_call("s", 0.2)


def test_a_large_read_throttles_later_calls_until_paid_off() -> None:
    lim = ShardLimiter(KinesisLimits())
    assert lim.admit_read_call("s", 0.0)
    lim.charge_read("s", 10 * 1024 * 1024, 0.0)  # 10 MiB: 2 MiB budget -> 8 MiB in debt -> 4 s
    assert not lim.admit_read_call("s", 3.9)
    assert lim.admit_read_call("s", 4.1)
