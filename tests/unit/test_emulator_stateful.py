"""Model-based test of the event source mapping emulator's stored position, on FakeKinesis with a FakeClock.

Each `run_mapping` step starts an `EventSourceMapping` on the shared checkpoint store (a restart) with a
handler that succeeds, fails now and then, reports partial failures or is down, over 1 or 2 lanes per
shard (parallelization), with retries and bisection, a data filter or none, a record age limit or none,
an OnFailure destination that is down at first or not, until an event at its k-th pause: a stop, a crash
of one of its threads, the iterator expiring (the clock jumps 400 s: records age), throttling. Checked
after every step: the stored position never passes a record that neither succeeded, nor was filtered
out, nor went to the OnFailure destination; at the end a healthy mapping delivers every record at least
once.

The mapping runs its own threads (pollers and lanes) as it does in production, so the order of their
steps varies from run to run; waits are on the fake clock, so nothing sleeps.
"""

from __future__ import annotations

import os
import random
import threading
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.errors import AwsServiceError, ThrottledError
from streamkit.testing import FakeClock, FakeKinesis

DEEP = os.environ.get("STREAMKIT_DEEP") == "1"
STREAM = "s"
FUNCTION = "f"
NS = f"esm:{FUNCTION}:{STREAM}"
KEEP = '{"data": {"keep": [true]}}'


class Crash(BaseException):
    """A thread of the mapping dies here."""


class EmulatorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.kinesis = FakeKinesis(clock=self.clock, auto_create=False)
        self.kinesis.create_stream(STREAM, 2)
        self.store = MemoryCheckpointStore()
        self.expected: dict[str, list[int]] = {s.shard_id: [] for s in self.kinesis.list_shards(STREAM)}
        self.handled: set[int] = set()  # succeeded, or sent to the OnFailure destination (by sequence number)
        self.lock = threading.Lock()

    @rule(n=st.integers(1, 20), keys=st.integers(1, 5))
    def write(self, n: int, keys: int) -> None:
        for i in range(n):
            data = b'{"i": %d, "keep": %s}' % (i, b"true" if i % 3 else b"false")
            seq = int(self.kinesis.put(STREAM, data, f"key-{i % keys}"))
            shard = next(sid for sid, recs in self.kinesis.written.items() if recs and int(recs[-1][0]) == seq)
            self.expected[shard].append(seq)

    @rule(handler=st.sampled_from(["ok", "flaky", "partial", "down"]), seed=st.integers(0, 2**16),
          lanes=st.integers(1, 3), bisect=st.booleans(), retries=st.sampled_from([-1, 0, 2]),
          event=st.sampled_from(["stop", "crash", "expire", "throttle", "none"]), at_pause=st.integers(1, 40),
          filtered=st.booleans(), max_age=st.sampled_from([-1, 60]), destination_down=st.integers(0, 3))
    def run_mapping(self, handler: str, seed: int, lanes: int, bisect: bool, retries: int, event: str,
                    at_pause: int, filtered: bool, max_age: int, destination_down: int) -> None:
        rng = random.Random(seed)
        rng_lock = threading.Lock()

        def fn(ev: dict[str, Any], context: Any) -> Any:
            seqs = [int(r["kinesis"]["sequenceNumber"]) for r in ev["Records"]]
            with rng_lock:
                roll = rng.random()
                cut = rng.randrange(len(seqs)) if seqs else 0
            if handler == "down" or (handler == "flaky" and roll < 0.4):
                raise RuntimeError("downstream failed")
            if handler == "partial" and seqs and roll < 0.5:
                with self.lock:
                    self.handled.update(seqs[:cut])
                return {"batchItemFailures": [{"itemIdentifier": str(ev["Records"][cut]["kinesis"]["sequenceNumber"])}]}
            with self.lock:
                self.handled.update(seqs)
            return {"batchItemFailures": []}

        pauses = [0]
        throttled = [False]
        mapping_box: list[EventSourceMapping] = []

        def on_wait(seconds: float) -> None:
            with self.lock:
                pauses[0] += 1
                n = pauses[0]
            if n == at_pause:
                if event == "stop":
                    mapping_box[0].stop()
                elif event == "crash":
                    raise Crash()
                elif event == "expire":
                    self.clock.advance(400)
                elif event == "throttle":
                    throttled[0] = True
            elif n == at_pause + 5:
                throttled[0] = False
            if n >= 400:
                mapping_box[0].stop()  # a run ends by itself

        def fault(op: str, detail: dict[str, Any]) -> BaseException | None:
            if throttled[0] and op == "GetRecords":
                return ThrottledError("ProvisionedThroughputExceededException", code="ProvisionedThroughputExceededException")
            return None

        down = [destination_down]

        def destination(documents: list[dict[str, Any]]) -> None:
            if down[0] > 0:  # the destination does not answer its first writes: the shard must wait
                down[0] -= 1
                raise AwsServiceError("the destination does not answer", code="ServiceUnavailable", retryable=True)

        config = EsmConfig(batch_size=4, starting_position="TRIM_HORIZON", parallelization_factor=lanes,
                           bisect_on_error=bisect, max_retry_attempts=retries, report_batch_item_failures=True,
                           on_failure=destination, function_name=FUNCTION, retry_delay=0.01,
                           filter_criteria=(KEEP,) if filtered else (), max_record_age=max_age)
        mapping = _Recording(self, STREAM, fn, client=self.kinesis, config=config, checkpoint_store=self.store,
                             clock=self.clock)
        mapping_box.append(mapping)
        self.kinesis.fault = fault
        self.clock.on_wait = on_wait
        try:
            mapping.run(stop_after_idle=3.0)
        except (Crash, Exception):
            pass  # a crash, or the run's own error: what matters is the stored position
        finally:
            self.clock.on_wait = None
            self.kinesis.fault = None

    @invariant()
    def position_never_passes_an_unhandled_record(self) -> None:
        for shard, seqs in self.expected.items():
            lease = self.store.get_lease(NS, shard)
            if lease is None or lease.checkpoint.is_sentinel:
                continue
            at = int(lease.checkpoint.sequence_number)
            with self.lock:
                unhandled = [s for s in seqs if s <= at and s not in self.handled]
            assert not unhandled, f"{shard}: position {at} passed {unhandled[:5]}, never handled"

    def teardown(self) -> None:
        def ok(ev: dict[str, Any], context: Any) -> Any:
            with self.lock:
                self.handled.update(int(r["kinesis"]["sequenceNumber"]) for r in ev["Records"])
            return None

        mapping = EventSourceMapping(STREAM, ok, client=self.kinesis, checkpoint_store=self.store, clock=self.clock,
                                     config=EsmConfig(batch_size=10, starting_position="TRIM_HORIZON",
                                                      function_name=FUNCTION))
        mapping.run(stop_after_idle=3.0)
        missing = [s for seqs in self.expected.values() for s in seqs if s not in self.handled]
        assert not missing, f"never delivered: {missing[:5]}"


class _Recording(EventSourceMapping):
    """The mapping, noting which records it hands to the OnFailure destination (whose record has only a range)."""

    def __init__(self, machine: EmulatorMachine, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.machine = machine

    def _on_failure(self, lane: Any, outcome: Any) -> None:
        super()._on_failure(lane, outcome)  # returns once the destination took the record
        with self.machine.lock:
            self.machine.handled.update(int(r.sequence_number) for r in outcome.discard)

    def _select(self, shard_id: str, records: list[Any]) -> list[Any]:
        kept = super()._select(shard_id, records)
        ids = {id(r) for r in kept}
        with self.machine.lock:  # filtered out: handled as AWS handles it (not delivered, passed)
            self.machine.handled.update(int(r.sequence_number) for r in records if id(r) not in ids)
        return kept


EmulatorMachine.TestCase.settings = settings(
    max_examples=300 if DEEP else 60, stateful_step_count=12 if DEEP else 10, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestEmulatorInterleavings = EmulatorMachine.TestCase
