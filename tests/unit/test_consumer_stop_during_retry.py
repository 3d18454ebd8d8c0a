"""Regression (issue 13): a consumer stopped while a failing record waits for its retry must not checkpoint past it.

The reported run: 1 shard, 1,000 records, a handler that always fails, max_attempts=10 and backoff_base=1.0,
stopped after 2.5 s; a second consumer on the same SQLite file with a working handler saw 0 of 1,000.
Here the same run goes through FakeKinesis and a FakeClock: no server, no sleeps.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from streamkit.checkpoints import SqliteCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.errors import ShardFailedError
from streamkit.records import StreamRecord
from streamkit.testing import FakeClock, FakeKinesis


def fill(kinesis: FakeKinesis, n: int) -> list[bytes]:
    sent = [f"reading-{i}".encode() for i in range(n)]
    for i, data in enumerate(sent):
        kinesis.put("sensors", data, f"sensor-{i % 7}")
    return sent


def config(**kw: object) -> ConsumerConfig:
    base: dict[str, object] = dict(initial_position="TRIM_HORIZON", max_attempts=10, backoff_base=1.0, lease_duration=2)
    return ConsumerConfig(**{**base, **kw})  # type: ignore[arg-type]


def stop_during_first_retry_pause(consumer: Consumer, clock: FakeClock, failures: list[StreamRecord]) -> None:
    """Stop the consumer in the shard's first pause after a failure: the pause before the retry."""
    def on_wait(seconds: float) -> None:
        if failures and threading.current_thread().name.startswith("shard-"):
            consumer.stop()
    clock.on_wait = on_wait


def test_a_stop_while_a_record_waits_for_its_retry_loses_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    sent = fill(kinesis, 1000)
    db = tmp_path / "checkpoints.db"

    failures: list[StreamRecord] = []

    def downstream_down(record: StreamRecord) -> None:
        failures.append(record)
        raise ConnectionError("downstream down")

    first = Consumer("sensors", downstream_down, application_name="app", checkpoint_store=SqliteCheckpointStore(db),
                     client=kinesis, config=config(), clock=clock)
    stop_during_first_retry_pause(first, clock, failures)
    first.run(install_signal_handlers=False)
    assert sum(s.records for s in first.final_stats) == 0

    got: list[bytes] = []
    clock.on_wait = None
    clock.advance(10)  # the first worker released its lease on stop; expiry would be 2 s anyway
    second = Consumer("sensors", lambda r: got.append(r.data), application_name="app",
                      checkpoint_store=SqliteCheckpointStore(db), client=kinesis, config=config(), clock=clock)
    second.run(install_signal_handlers=False, stop_after_idle=5)
    assert got == sent  # 1,000 of 1,000, in order


def test_another_shards_failure_stopping_the_consumer_checkpoints_nothing_unprocessed(tmp_path: Path) -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(shards=2, clock=clock)
    fill(kinesis, 200)
    store = SqliteCheckpointStore(tmp_path / "c.db")
    def handler(record: StreamRecord) -> None:
        raise RuntimeError(f"down ({record.shard_id})")

    c = Consumer("sensors", handler, application_name="app", checkpoint_store=store, client=kinesis,
                 config=config(max_attempts=2, backoff_base=0.01), clock=clock)
    with pytest.raises(ShardFailedError):
        c.run(install_signal_handlers=False)
    # No shard moved: every record of both shards is still to be processed.
    for lease in store.list_leases("app/sensors"):
        assert lease.checkpoint.is_sentinel, lease
