"""A lease-table write applied but never answered (the soak's dynalite SIGKILL) costs no duplicates.

Issue 24 (Deliver 8): the worker's next conditional write saw a counter it did not expect, took the lease
as lost, stopped the shard and read it again from its last checkpoint. The lease still names the worker,
so the worker carries on from it. Fakes and the fake clock; under a second.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.checkpoints.base import NO_OWNER_CHECK
from streamkit.checkpoints.model import Lease
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.errors import CheckpointError
from streamkit.records import StreamRecord
from streamkit.testing import FakeClock, FakeKinesis


class LosesAnswers(MemoryCheckpointStore):
    """Applies the `nth` .. `nth + count - 1` owner-checked writes, then fails as a store that died before answering."""

    def __init__(self, nth: int, count: int = 1) -> None:
        super().__init__()
        self.writes, self.nth, self.count = 0, nth, count

    def update_lease(self, namespace: str, key: str, **kwargs: Any) -> Lease | None:
        out = super().update_lease(namespace, key, **kwargs)
        if out is not None and kwargs.get("expected_owner") not in (None, NO_OWNER_CHECK):
            self.writes += 1
            if self.nth <= self.writes < self.nth + self.count:
                raise CheckpointError("connection reset before the answer", retryable=True)
        return out


@pytest.mark.parametrize("nth", [1, 2, 3, 5, 8])
def test_a_lost_answer_to_a_lease_write_reads_nothing_twice(nth: int) -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(shards=1, clock=clock)
    for i in range(300):
        kinesis.put("s", b"%d" % i, "k")
    seen: Counter[bytes] = Counter()

    def handle(record: StreamRecord) -> None:
        seen[record.data] += 1

    store = LosesAnswers(nth)
    Consumer("s", handle, application_name="app", checkpoint_store=store, client=kinesis, clock=clock,
             config=ConsumerConfig(max_records=20)).run(install_signal_handlers=False, stop_after_idle=2)
    assert store.writes >= nth  # the fault happened
    assert set(seen) == {b"%d" % i for i in range(300)}
    assert [d for d, n in seen.items() if n > 1] == []
