"""Admission by drain time on the real clock: under overload the caller is slowed, no record expires untried.

The shard's rate here is the producer's own pacing (`rate_limit=0.05`: 52 KB/s), so admission knows
it from the start; tests/unit/test_admission.py covers the rate learnt from throttles, and
bench/overload.py the whole path through the limit-enforcing proxy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from producer import ProducerConfig
from streamkit.errors import BufferFullError, RecordExpiredError
from streamkit.testing import FakeKinesis
from tests.unit.producer_kinds import KINDS

# One shard paced at 52 KB/s, records of 100 B in aggregates of at most 8 KB, a TTL of 1 s: a budget of
# ~26 KB (half the TTL's worth). 200 KB offered at once take ~3 s to drain.
SLOW = dict(rate_limit=0.05, record_ttl=1.0, max_record_size=8192, aggregation_max_size=8192,
            record_max_buffered_time=0.01, backoff_base=0.01, backoff_max=0.05)
READINGS = 2000


def offer(p: Any, n: int = READINGS) -> None:
    for i in range(n):
        p.send(b"%-94d" % i, f"k{i % 20:02d}")


@pytest.fixture(params=sorted(KINDS))
def make(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return KINDS[request.param]


def test_overload_holds_the_caller_back_and_nothing_expires(make: Callable[..., Any]) -> None:
    client = FakeKinesis(shards=1)
    failed: list[Any] = []
    t0 = time.monotonic()
    with make("s", client=client, config=ProducerConfig(**SLOW, on_failure=failed.append)) as p:
        offer(p)
        offered = time.monotonic() - t0
        p.flush()
        m = p.metrics()
    assert failed == [] and m["user_records_failed"] == 0
    assert m["user_records_written"] == READINGS
    assert m["admission_waits"] > 0 and m["admission_wait_s"] > 0.5
    assert offered > 1.0  # the loop was slowed to what the shard drains (unheld, it offers 2,000 in ~10 ms)


def test_expire_keeps_the_old_behaviour_records_expire_before_any_attempt(make: Callable[..., Any]) -> None:
    client = FakeKinesis(shards=1)
    failed: list[Any] = []
    with make("s", client=client, config=ProducerConfig(**SLOW, buffer_full="expire", on_failure=failed.append)) as p:
        offer(p)
        p.flush()
        m = p.metrics()
    assert m["admission_waits"] == 0
    assert failed and all(f.attempts == 0 and "record_ttl" in f.error for f in failed)
    assert m["user_records_written"] + m["user_records_failed"] == READINGS


def test_raise_says_which_shard_is_full_and_loses_nothing_it_took(make: Callable[..., Any]) -> None:
    client = FakeKinesis(shards=1)
    taken = 0
    with make("s", client=client, config=ProducerConfig(**SLOW, buffer_full="raise")) as p:
        with pytest.raises(BufferFullError, match=r"shard shardId-000000000000 holds \d+ bytes.*half its record_ttl"):
            for i in range(READINGS):
                p.send(b"%-94d" % i, "k")
                taken += 1
        p.flush()
        m = p.metrics()
    assert 0 < taken < READINGS
    assert m["user_records_written"] == taken and m["user_records_failed"] == 0


def test_a_put_future_under_overload_resolves_and_never_expires(make: Callable[..., Any]) -> None:
    client = FakeKinesis(shards=1)
    with make("s", client=client, config=ProducerConfig(**SLOW)) as p:
        futures = [p.put(b"%-94d" % i, f"k{i % 20:02d}") for i in range(READINGS // 2)]
        p.flush()
    errors = [f.exception() for f in futures if f.exception() is not None]
    assert not any(isinstance(e, RecordExpiredError) for e in errors) and errors == []
