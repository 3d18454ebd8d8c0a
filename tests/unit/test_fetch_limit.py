"""Bounded consumer memory: each GetRecords Limit sized to the reader's byte cap (shard_reader.FetchLimit)."""

from __future__ import annotations

import threading
from typing import Any

from streamkit.checkpoints.model import Checkpoint
from streamkit.shard_reader import FetchLimit, ReaderSettings, ShardReader, fetched_bytes
from streamkit.testing import FakeClock, FakeKinesis

MIB = 1024 * 1024


def test_the_limit_starts_at_what_the_cap_holds_of_1_mib_records_grows_by_10x_and_is_cut_by_a_large_response() -> None:
    f = FetchLimit(10 * MIB, 10_000)
    assert f.limit == 10
    f.after(10, 1_000)  # small records: grow towards what the cap holds of them
    assert f.limit == 100
    f.after(100, 10_000)
    assert f.limit == 1_000
    f.after(1_000, 100_000)
    assert f.limit == 10_000
    f.after(10_000, 100 * MIB)  # then a run of large ones: cut to the count that would have fitted
    assert f.limit == 1_000
    f.after(3, 20 * MIB)  # a response that was not full (the shard ran out): the limit is not raised
    assert f.limit == 1
    f.after(0, 0)
    assert f.limit == 1
    assert FetchLimit(10 * MIB, 500, first=2_000).limit == 500


def test_a_reader_never_holds_much_more_than_its_cap_whatever_the_server_returns() -> None:
    kinesis = FakeKinesis(shards=1)  # like kinesalite: returns up to Limit records, whatever their size
    blob = b"x" * (512 * 1024)
    for i in range(60):
        kinesis.put("s", blob, f"k{i}")
    for i in range(2000):
        kinesis.put("s", b"small", f"k{i}")
    stop = threading.Event()
    shard = kinesis.list_shards("s")[0].shard_id
    reader = ShardReader(kinesis, "s", shard, Checkpoint("TRIM_HORIZON"), stop=stop, clock=FakeClock(),
                         settings=ReaderSettings(max_fetch_bytes=4 * MIB))
    largest, got = 0, 0
    for batch in reader.batches():
        largest = max(largest, fetched_bytes(batch.records))
        got += len(batch.records)
        if batch.caught_up:
            break
    assert got == 2060
    assert largest <= 4 * MIB + 512 * 1024  # the cap, give or take one record


def test_lag_is_derived_from_arrival_where_the_server_says_0_but_a_read_came_back_full() -> None:
    class Kinesalite(FakeKinesis):  # MillisBehindLatest 0 always, as kinesalite reports it
        def get_records(self, iterator: str, limit: int) -> Any:
            out = super().get_records(iterator, limit)
            out.millis_behind_latest = 0
            return out

    clock = FakeClock()
    kinesis = Kinesalite(shards=1, clock=clock)
    for i in range(50):
        kinesis.put("s", b"r%d" % i, "k")
    clock.advance(30.0)  # the records are 30 s old when read
    shard = kinesis.list_shards("s")[0].shard_id
    reader = ShardReader(kinesis, "s", shard, Checkpoint("TRIM_HORIZON"), stop=threading.Event(), clock=clock,
                         settings=ReaderSettings(first_limit=20))
    lags = []
    for batch in reader.batches():
        lags.append((len(batch.records), batch.millis_behind_latest))
        if batch.caught_up:
            break
    # Full reads (20 of 20): behind by the last record's age; the short one read to the tip: 0.
    assert lags[0] == (20, 30_000)
    assert [n for n, _lag in lags][-1] == 0 and all(lag == 0 for n, lag in lags if 0 < n < 20)
    assert lags[-1] == (0, 0)
