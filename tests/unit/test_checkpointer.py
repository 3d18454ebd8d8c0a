"""The Checkpointer: only delivered positions are stored, fenced by the lease."""

from __future__ import annotations

import pytest

from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.checkpoints.model import Checkpoint, Lease
from streamkit.consumer import Checkpointer
from streamkit.consumer.leases import LeaseHolder
from streamkit.errors import CheckpointError
from streamkit.records import StreamRecord


def checkpointer() -> tuple[Checkpointer, MemoryCheckpointStore]:
    store = MemoryCheckpointStore()
    store.create_lease("ns", Lease(shard_id="s0", owner="w1"))
    lease = store.get_lease("ns", "s0")
    assert lease is not None
    return Checkpointer(LeaseHolder(store, "ns", lease, "w1")), store


def record(seq: str, sub: int | None = None) -> StreamRecord:
    return StreamRecord(b"x", "k", seq, sub, "s0")


def test_checkpoint_stores_the_last_delivered_position_and_refuses_later_ones() -> None:
    cp, store = checkpointer()
    cp.checkpoint()  # nothing delivered yet: nothing stored
    assert store.get_lease("ns", "s0").checkpoint.is_sentinel  # type: ignore[union-attr]
    with pytest.raises(CheckpointError, match="not delivered yet"):
        cp.checkpoint_at("100")
    cp.last_delivered = record("200", 3)
    cp.checkpoint()
    assert store.get_lease("ns", "s0").checkpoint == Checkpoint("200", 3)  # type: ignore[union-attr]
    cp.checkpoint_at("150")
    assert cp.last_checkpoint == Checkpoint("150")
    for later in (lambda: cp.checkpoint(record("200", 4)), lambda: cp.checkpoint_at("201")):
        with pytest.raises(CheckpointError, match="not delivered yet"):
            later()
    assert store.get_lease("ns", "s0").checkpoint == Checkpoint("150")  # type: ignore[union-attr]
