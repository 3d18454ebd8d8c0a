"""The shard-end contract, as the KCL's: in `shard_ended`, ``checkpointer.checkpoint()`` records SHARD_END
and the children start; ``checkpoint_shard_end()`` keeps working. FakeKinesis + FakeClock, well under 1 s."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig, ProcessRecordsInput, RecordProcessor, ShardEndedInput
from streamkit.errors import CheckpointError
from streamkit.testing import FakeClock, FakeKinesis


def split_stream_run(at_shard_end: Callable[[ShardEndedInput], None]) -> tuple[list[str], MemoryCheckpointStore,
                                                                                 str]:
    """30 records before and 30 after a split; the processor checkpoints each batch and calls `at_shard_end`."""
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    parent = kinesis.list_shards("s")[0].shard_id
    for i in range(30):
        kinesis.put("s", f"before-{i}".encode(), f"k{i % 5}")
    kinesis.split_shard("s", parent)
    for i in range(30):
        kinesis.put("s", f"after-{i}".encode(), f"k{i % 5}")
    got: list[str] = []

    class Processor(RecordProcessor):
        def process_records(self, input: ProcessRecordsInput) -> None:
            got.extend(r.data.decode() for r in input.records)
            input.checkpointer.checkpoint()

        def shard_ended(self, input: ShardEndedInput) -> None:
            at_shard_end(input)

    store = MemoryCheckpointStore()
    Consumer("s", Processor, application_name="app", checkpoint_store=store, client=kinesis, clock=clock,
             config=ConsumerConfig()).run(install_signal_handlers=False, stop_after_idle=3)
    return got, store, parent


@pytest.mark.parametrize("how", ["checkpoint()", "checkpoint_shard_end()"])
def test_checkpointing_in_shard_ended_records_shard_end_and_the_children_start(how: str) -> None:
    def at_shard_end(input: ShardEndedInput) -> None:
        if how == "checkpoint()":
            input.checkpointer.checkpoint()  # the KCL's spelling
        else:
            input.checkpointer.checkpoint_shard_end()

    got, store, parent = split_stream_run(at_shard_end)
    assert sorted(got) == sorted([f"before-{i}" for i in range(30)] + [f"after-{i}" for i in range(30)])
    leases = {lease.shard_id: lease for lease in store.list_leases("app/s")}
    assert leases[parent].checkpoint.is_shard_end
    assert len(leases) == 3 and all(not lease.checkpoint.is_sentinel for sid, lease in leases.items()
                                    if sid != parent)


def test_the_default_shard_ended_records_shard_end() -> None:
    got, store, parent = split_stream_run(lambda input: RecordProcessor.shard_ended(RecordProcessor(), input))
    assert len(got) == 60
    assert {lease.shard_id: lease for lease in store.list_leases("app/s")}[parent].checkpoint.is_shard_end


def test_checkpoint_shard_end_before_the_end_is_refused() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    kinesis.put("s", b"x", "k")
    refused: list[Exception] = []

    class Early(RecordProcessor):
        def process_records(self, input: ProcessRecordsInput) -> None:
            try:
                input.checkpointer.checkpoint_shard_end()
            except CheckpointError as exc:
                refused.append(exc)
            input.checkpointer.checkpoint()  # an open shard: the last record, not SHARD_END

    store = MemoryCheckpointStore()
    Consumer("s", Early, application_name="app", checkpoint_store=store, client=kinesis, clock=clock,
             config=ConsumerConfig()).run(install_signal_handlers=False, stop_after_idle=3)
    assert len(refused) == 1
    (lease,) = store.list_leases("app/s")
    assert not lease.checkpoint.is_sentinel
