"""The tail engine on the in-memory fakes (no server; a fake clock whose pauses take 1% of their length):
order per shard, aggregates unpacked, parents before children, at-sequence, --shard, limit, stop,
throttling reported and paced (about 2 s in all)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from streamkit.aggregation import UserRecord, encode
from streamkit.errors import ConfigurationError, NoProgressError, StreamNotFoundError, ThrottledError
from streamkit.positions import parse_position
from streamkit.tail import Tail, TailConfig, decode_body
from streamkit.testing import FakeClock, FakeKinesis


def fake(shards: int = 2) -> tuple[FakeKinesis, FakeClock]:
    clock = FakeClock(scale=0.01)
    kinesis = FakeKinesis(shards=shards, clock=clock, auto_create=False)
    kinesis.create_stream("s", shards)
    return kinesis, clock


def tail(kinesis: FakeKinesis, clock: FakeClock, **config: Any) -> Tail:
    config.setdefault("position", parse_position("trim-horizon"))
    return Tail("s", client=kinesis, config=TailConfig(**config), clock=clock)


def test_every_record_of_every_shard_comes_out_in_order_per_shard_then_it_ends_caught_up() -> None:
    kinesis, clock = fake()
    for i in range(50):
        kinesis.put("s", b"%d" % i, f"k{i % 5}")
    t = tail(kinesis, clock)
    got = list(t.records())
    assert sorted(int(r.data) for r in got) == list(range(50))
    for key in {r.partition_key for r in got}:
        mine = [int(r.data) for r in got if r.partition_key == key]
        assert mine == sorted(mine)
    assert t.stats.ended_by == "caught up" and t.stats.shards_read == {s.shard_id for s in kinesis.list_shards("s")}


def test_aggregates_are_unpacked_into_user_records_with_sub_sequence_numbers() -> None:
    kinesis, clock = fake(1)
    blob = encode([UserRecord(b'{"n": %d}' % i, f"k{i}") for i in range(4)])
    kinesis.put("s", blob, "agg")
    got = list(tail(kinesis, clock).records())
    assert [(r.partition_key, r.sub_sequence_number, decode_body(r.data)) for r in got] == \
        [(f"k{i}", i, ("json", {"n": i})) for i in range(4)]


def test_a_split_is_followed_into_the_children_after_the_parent() -> None:
    kinesis, clock = fake(1)
    parent = kinesis.list_shards("s")[0].shard_id
    kinesis.put("s", b"before", "k")
    children = kinesis.split_shard("s", parent)
    for i in range(10):
        kinesis.put("s", b"after-%d" % i, f"k{i}")
    got = list(tail(kinesis, clock).records())
    assert got[0].data == b"before" and got[0].shard_id == parent
    assert sorted(r.data for r in got[1:]) == sorted(b"after-%d" % i for i in range(10))
    assert {r.shard_id for r in got[1:]} <= {c.shard_id for c in children}


def test_follow_keeps_reading_new_records_until_stopped() -> None:
    kinesis, clock = fake(1)
    t = tail(kinesis, clock, follow=True, position=parse_position("latest"))
    seen: list[bytes] = []

    def read() -> None:
        for rec in t.records():
            seen.append(rec.data)
            if len(seen) == 3:
                t.stop()

    reader = threading.Thread(target=read)
    reader.start()
    while t.stats.shards_read == set():  # the shard's reader has started (its LATEST iterator next)
        threading.Event().wait(0.01)
    for i in range(200):  # put until three arrive: those put before the iterator existed are not expected
        if not reader.is_alive():
            break
        kinesis.put("s", b"%d" % i, "k")
        threading.Event().wait(0.01)
    reader.join(10)
    assert not reader.is_alive() and len(seen) == 3 and t.stats.ended_by == "stopped"
    assert [int(x) for x in seen] == sorted(int(x) for x in seen)


def test_at_sequence_starts_at_that_record_of_the_shard_given() -> None:
    kinesis, clock = fake(1)
    shard = kinesis.list_shards("s")[0].shard_id
    seqs = [kinesis.put("s", b"%d" % i, "k") for i in range(5)]
    got = list(tail(kinesis, clock, position=parse_position(f"at-sequence:{seqs[2]}"), shards=(shard,)).records())
    assert [r.data for r in got] == [b"2", b"3", b"4"]
    with pytest.raises(ConfigurationError, match="--shard"):
        TailConfig(position=parse_position(f"at-sequence:{seqs[2]}"))


def test_only_the_chosen_shard_is_read_and_an_unknown_one_is_refused_before_reading() -> None:
    kinesis, clock = fake(2)
    _first, second = (s.shard_id for s in kinesis.list_shards("s"))
    for i in range(30):
        kinesis.put("s", b"%d" % i, f"k{i}")
    got = list(tail(kinesis, clock, shards=(second,)).records())
    assert got and {r.shard_id for r in got} == {second}
    with pytest.raises(ConfigurationError, match="no shard shardId-9"):
        tail(kinesis, clock, shards=("shardId-9",)).check()
    with pytest.raises(StreamNotFoundError):
        Tail("missing", client=kinesis, clock=clock).check()


def test_limit_ends_the_reading_at_n_records() -> None:
    kinesis, clock = fake(2)
    for i in range(40):
        kinesis.put("s", b"%d" % i, f"k{i}")
    t = tail(kinesis, clock, limit=7)
    assert len(list(t.records())) == 7 and t.stats.ended_by == "limit"


def test_throttling_is_reported_backed_off_and_nothing_is_lost() -> None:
    calls = {"n": 0}

    def fault(op: str, _params: dict[str, Any]) -> BaseException | None:
        if op == "GetRecords":
            calls["n"] += 1
            if calls["n"] <= 3:
                return ThrottledError("ProvisionedThroughputExceededException: slow down",
                                      code="ProvisionedThroughputExceededException")
        return None

    kinesis, clock = fake(1)
    for i in range(20):
        kinesis.put("s", b"%d" % i, "k")
    kinesis.fault = fault
    told: list[tuple[str, int]] = []
    t = Tail("s", client=kinesis, config=TailConfig(position=parse_position("trim-horizon")), clock=clock,
             on_read_error=lambda shard, err, n: told.append((shard, n)))
    assert [int(r.data) for r in t.records()] == list(range(20))
    assert [n for _s, n in told] == [1, 2, 3] and t.stats.throttled == 3


def test_reads_are_paced_to_the_viewers_share_of_the_shard_bandwidth() -> None:
    kinesis, clock = fake(1)
    for _ in range(4):
        kinesis.put("s", b"x" * (1024 * 1024 - 1), "k")  # 4 MiB: at half of 2 MiB/s, about 3 s of waiting
    start = clock.monotonic()
    assert len(list(tail(kinesis, clock, max_fetch_bytes=1024 * 1024).records())) == 4
    assert clock.monotonic() - start >= 3.0  # fake seconds: what the reader waited, not how long the test took


def test_a_server_that_stops_answering_is_said_and_ends_the_reading_with_no_progress() -> None:
    kinesis, clock = fake(1)
    kinesis.put("s", b"first", "k")
    failures: list[int] = []
    t = Tail("s", client=kinesis, config=TailConfig(position=parse_position("trim-horizon"), follow=True,
                                                    give_up_after=20.0), clock=clock,
             on_read_error=lambda shard, err, n: failures.append(n))
    got = []
    with pytest.raises(NoProgressError, match="no answer from Kinesis"):
        for rec in t.records():
            got.append(rec.data)
            kinesis.unreachable = True  # the server dies after the first record
    assert got == [b"first"] and failures[:3] == [1, 2, 3]
