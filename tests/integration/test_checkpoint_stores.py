"""Every CheckpointStore keeps the same contract: conditional updates fence stale writers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamkit.checkpoints import (
    SHARD_END,
    TRIM_HORIZON,
    Checkpoint,
    CheckpointStore,
    DynamoDBCheckpointStore,
    Lease,
    MemoryCheckpointStore,
    SqliteCheckpointStore,
)
from streamkit.checkpoints.base import NO_OWNER_CHECK

NS = "app/stream"


@pytest.fixture(params=["memory", "sqlite", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CheckpointStore]:
    if request.param == "memory":
        yield MemoryCheckpointStore()
    elif request.param == "sqlite":
        s = SqliteCheckpointStore(tmp_path / "cp.db")
        yield s
        s.close()
    else:
        request.applymarker(pytest.mark.integration)
        client: Any = request.getfixturevalue("dynamodb_client")
        yield DynamoDBCheckpointStore(f"leases-{uuid.uuid4().hex[:8]}", client=client)


def test_create_is_idempotent_and_listing_is_per_namespace(store: CheckpointStore) -> None:
    assert store.create_lease(NS, Lease(shard_id="s-1", parent_shard_ids=("p-0",)))
    assert not store.create_lease(NS, Lease(shard_id="s-1", owner="someone"))
    assert store.create_lease("other/ns", Lease(shard_id="s-1"))
    (lease,) = store.list_leases(NS)
    assert lease == Lease(shard_id="s-1", parent_shard_ids=("p-0",))
    assert store.get_lease(NS, "nope") is None


def test_update_applies_changes_and_increments_the_counter(store: CheckpointStore) -> None:
    store.create_lease(NS, Lease(shard_id="s"))
    taken = store.update_lease(NS, "s", expected_counter=0, expected_owner=None, owner="w1", owner_switches=1)
    assert taken is not None and (taken.owner, taken.counter, taken.owner_switches) == ("w1", 1, 1)
    cp = Checkpoint("49590338271490256608559692538361571095921575989136588898", 7)
    moved = store.update_lease(NS, "s", expected_counter=1, expected_owner="w1", checkpoint=cp)
    assert moved is not None and moved.checkpoint == cp and moved.owner == "w1" and moved.counter == 2
    plain = store.update_lease(NS, "s", expected_counter=2, expected_owner="w1", checkpoint=Checkpoint("123"))
    assert plain is not None and plain.checkpoint == Checkpoint("123") and plain.checkpoint.sub_sequence_number is None
    assert store.get_lease(NS, "s") == plain


def test_a_stale_counter_or_owner_is_fenced(store: CheckpointStore) -> None:
    store.create_lease(NS, Lease(shard_id="s"))
    store.update_lease(NS, "s", expected_counter=0, expected_owner=None, owner="w1")
    # w2 takes the lease over (it saw counter 1); w1's next checkpoint, made with counter 1, must fail.
    assert store.update_lease(NS, "s", expected_counter=1, expected_owner=NO_OWNER_CHECK, owner="w2") is not None
    assert store.update_lease(NS, "s", expected_counter=1, expected_owner="w1", checkpoint=SHARD_END) is None
    assert store.update_lease(NS, "s", expected_counter=2, expected_owner="w1", checkpoint=SHARD_END) is None
    lease = store.get_lease(NS, "s")
    assert lease is not None and lease.owner == "w2" and lease.checkpoint == TRIM_HORIZON


def test_releasing_clears_the_owner(store: CheckpointStore) -> None:
    store.create_lease(NS, Lease(shard_id="s", owner="w1"))
    released = store.update_lease(NS, "s", expected_counter=0, expected_owner="w1", owner=None)
    assert released is not None and released.owner is None


def test_only_one_of_many_racing_takers_wins(store: CheckpointStore) -> None:
    store.create_lease(NS, Lease(shard_id="s"))
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def take(worker: str) -> None:
        barrier.wait()
        if store.update_lease(NS, "s", expected_counter=0, expected_owner=None, owner=worker) is not None:
            winners.append(worker)

    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_timestamps_round_trip(store: CheckpointStore) -> None:
    store.create_lease(NS, Lease(shard_id="s", checkpoint=Checkpoint("AT_TIMESTAMP", timestamp=1700000000.25)))
    lease = store.get_lease(NS, "s")
    assert lease is not None and lease.checkpoint.timestamp == 1700000000.25


def test_deleting_a_lease_removes_only_that_shard(store: CheckpointStore) -> None:
    store.create_lease("app", Lease(shard_id="a"))
    store.create_lease("app", Lease(shard_id="b"))
    store.delete_lease("app", "a")
    assert store.get_lease("app", "a") is None
    assert [lease.shard_id for lease in store.list_leases("app")] == ["b"]
    store.delete_lease("app", "a")  # deleting what is gone is not an error


def test_a_handoff_moves_the_actual_owner_and_fences_everyone_else(store: CheckpointStore) -> None:
    store.create_lease(NS, Lease(shard_id="s"))
    held = store.update_lease(NS, "s", expected_counter=0, expected_owner=None, owner="old")
    assert held is not None
    asked = store.update_lease(NS, "s", expected_counter=1, expected_owner="old", owner="new", checkpoint_owner="old")
    assert asked is not None and (asked.owner, asked.checkpoint_owner, asked.actual_owner) == ("new", "old", "old")
    # While pending, only the checkpoint owner may write: the taker's own condition fails.
    assert store.update_lease(NS, "s", expected_counter=2, expected_owner="new") is None
    assert store.update_lease(NS, "s", expected_counter=2, expected_owner=None, owner="third") is None
    cp = store.update_lease(NS, "s", expected_counter=2, expected_owner="old", checkpoint=Checkpoint("42", 1),
                            throughput_kbps=12.5)
    assert cp is not None and cp.checkpoint == Checkpoint("42", 1) and cp.throughput_kbps == 12.5
    done = store.update_lease(NS, "s", expected_counter=3, expected_owner="old", checkpoint_owner=None)
    assert done is not None and (done.owner, done.checkpoint_owner, done.actual_owner) == ("new", None, "new")
    assert done.throughput_kbps == 12.5  # kept until someone measures again
    assert store.update_lease(NS, "s", expected_counter=4, expected_owner="old") is None  # fenced
    assert store.update_lease(NS, "s", expected_counter=4, expected_owner="new") is not None
    assert store.get_lease(NS, "s") == done.with_changes(counter=5)


def test_leases_of_several_streams_are_keyed_by_stream_and_shard(store: CheckpointStore) -> None:
    a = Lease(shard_id="shardId-000000000000", stream="123456789012:a:1700000000")
    b = Lease(shard_id="shardId-000000000000", stream="123456789012:b:1700000001", parent_shard_ids=("p",))
    assert store.create_lease("app", a) and store.create_lease("app", b)
    assert not store.create_lease("app", a)
    assert sorted(store.list_leases("app"), key=lambda x: x.key) == [a, b]
    assert store.get_lease("app", b.key) == b
    moved = store.update_lease("app", a.key, expected_counter=0, expected_owner=None, owner="w")
    assert moved is not None and moved.stream == a.stream and moved.shard_id == a.shard_id
    store.delete_lease("app", a.key)
    assert store.list_leases("app") == [b]


def test_an_older_sqlite_file_gains_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE leases (namespace TEXT NOT NULL, shard_id TEXT NOT NULL, owner TEXT, counter INTEGER "
               "NOT NULL, checkpoint TEXT NOT NULL, sub_sequence INTEGER, checkpoint_timestamp REAL, parent_shard_ids "
               "TEXT NOT NULL, owner_switches INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (namespace, shard_id))")
    db.execute("INSERT INTO leases VALUES ('app/s', 'shard-1', NULL, 3, '99', 2, NULL, '[]', 0)")
    db.commit()
    db.close()
    store = SqliteCheckpointStore(path)
    (lease,) = store.list_leases("app/s")
    assert lease == Lease(shard_id="shard-1", counter=3, checkpoint=Checkpoint("99", 2))
    assert store.update_lease("app/s", "shard-1", expected_counter=3, expected_owner=None, throughput_kbps=1.0)
    store.close()
