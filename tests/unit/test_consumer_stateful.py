"""Model-based test of the shard consumer: interleavings of writes, failing handlers, stops, lease losses,
crashes, expired iterators and throttling, all on FakeKinesis with a FakeClock (deterministic, no sleeps).

Each `run_worker` step takes the shard's lease (as after the previous owner's lease expired), and runs a
ShardConsumer in this thread until an event fires at its k-th pause: a graceful stop, a crash (the process
dies there: nothing more happens, no shutdown hook), the lease taken by another worker, the iterator
expiring, or throttling. Checked after every step:

- **the invariant**: the stored checkpoint never passes a record that was neither processed successfully
  nor handed to the failure destination;
- order: within a run, the handler sees records in stream order;
- typed bodies (``body=Reading``, a msgspec Struct): a record that does not validate never reaches the
  handler and is dead-lettered at its first attempt with its validation errors (or stops the shard);
- and at the end, a healthy worker delivers every record at least once.

``STREAMKIT_DEEP=1`` (``make test-deep``) runs many more examples.
"""

from __future__ import annotations

import os
import random
import threading
from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from streamkit.aggregation import UserRecord, encode
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.checkpoints.model import Lease
from streamkit.consumer.config import ConsumerConfig
from streamkit.consumer.leases import take_lease
from streamkit.consumer.processor import FunctionProcessor
from streamkit.consumer.shard_consumer import ShardConsumer
from streamkit.errors import ThrottledError
from streamkit.records import StreamRecord
from streamkit.testing import FakeClock, FakeKinesis

DEEP = os.environ.get("STREAMKIT_DEEP") == "1"
NS = "app/s"
STREAM = "s"
Position = tuple[int, int]  # (sequence number, sub-sequence number or -1 for a plain record)
STATS = {"runs": 0, "steps": 0, "events": {}}  # what the machine explored (printed by make test-deep)


class Reading(msgspec.Struct):
    n: int


class Crash(BaseException):
    """The worker process dies at this point: not an Exception, so nothing in the consumer handles it."""


def position(r: StreamRecord) -> Position:
    return int(r.sequence_number), -1 if r.sub_sequence_number is None else r.sub_sequence_number


class ConsumerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.kinesis = FakeKinesis(clock=self.clock, auto_create=False)
        self.kinesis.create_stream(STREAM, 1)
        self.shard = self.kinesis.list_shards(STREAM)[0].shard_id
        self.store = MemoryCheckpointStore()
        self.store.create_lease(NS, Lease(shard_id=self.shard))
        self.expected: list[Position] = []  # every user record written, in stream order
        self.handled: set[Position] = set()  # processed successfully or dead-lettered, at least once
        self.invalid: set[Position] = set()  # records whose body is not a Reading
        self.workers = 0

    # -- writes ----------------------------------------------------------------------------------
    @rule(n=st.integers(1, 12), aggregated=st.booleans(), bad=st.integers(-1, 11))
    def write(self, n: int, aggregated: bool, bad: int) -> None:
        """`n` records; the `bad`-th (if any) has a body that is not a Reading."""
        def data(i: int) -> bytes:
            number = len(self.expected) + i
            return f'{{"n":"r{number}"}}'.encode() if i == bad else f'{{"n":{number}}}'.encode()

        if aggregated:
            blob = encode([UserRecord(data(i), f"k{i}") for i in range(n)])
            seq = int(self.kinesis.put(STREAM, blob, "agg"))
            written = [(seq, i) for i in range(n)]
        else:
            written = [(int(self.kinesis.put(STREAM, data(i), "k")), -1) for i in range(n)]
        if 0 <= bad < n:
            self.invalid.add(written[bad])
        self.expected.extend(written)

    # -- a worker's life -------------------------------------------------------------------------
    @rule(handler=st.sampled_from(["ok", "flaky", "down"]), seed=st.integers(0, 2**16),
          dead_letter=st.booleans(), max_attempts=st.integers(1, 3),
          event=st.sampled_from(["stop", "crash", "lease_lost", "expire", "throttle", "none"]),
          at_pause=st.integers(0, 12), typed=st.booleans())
    def run_worker(self, handler: str, seed: int, dead_letter: bool, max_attempts: int, event: str,
                   at_pause: int, typed: bool) -> None:
        STATS["runs"] += 1  # type: ignore[operator]
        events: dict[str, int] = STATS["events"]  # type: ignore[assignment]
        events[event] = events.get(event, 0) + 1
        self.workers += 1
        me = f"w{self.workers}"
        lease = self.store.get_lease(NS, self.shard)
        assert lease is not None
        if lease.checkpoint.is_shard_end:
            return
        holder = take_lease(self.store, NS, lease, me)  # the previous owner's lease expired
        assert holder is not None
        rng = random.Random(seed)
        seen: list[Position] = []

        # Broken promises are noted, not asserted here: the consumer would take an AssertionError raised
        # in a handler or a destination for that record's failure.
        broken: list[str] = []

        def func(record: StreamRecord) -> None:
            if typed and (position(record) in self.invalid or not isinstance(record.body, Reading)):
                broken.append(f"{position(record)} reached the handler without a valid body")
            if handler == "down" or (handler == "flaky" and rng.random() < 0.4):
                raise RuntimeError("downstream failed")
            seen.append(position(record))
            self.handled.add(position(record))

        def dead_letters(letters: list[Any]) -> None:
            for letter in letters:
                if typed and position(letter.record) in self.invalid and (
                        letter.attempts != 1 or [f for f, _m in letter.validation_errors] != ["n"]):
                    broken.append(f"{position(letter.record)} dead-lettered after {letter.attempts} attempts "
                                  f"with errors {letter.validation_errors}")
                self.handled.add(position(letter.record))

        stopping = threading.Event()
        pauses = 0
        throttled = [False]

        def on_wait(seconds: float) -> None:
            nonlocal pauses
            pauses += 1
            if pauses == at_pause:
                if event == "stop":
                    stopping.set()
                elif event == "crash":
                    raise Crash()
                elif event == "lease_lost":
                    current = self.store.get_lease(NS, self.shard)
                    assert current is not None
                    take_lease(self.store, NS, current, f"thief-of-{me}")
                elif event == "expire":
                    self.clock.advance(400)  # past the 5-minute iterator lifetime
                elif event == "throttle":
                    throttled[0] = True
            elif event == "throttle" and pauses == at_pause + 3:
                throttled[0] = False
            if pauses >= 60:
                stopping.set()  # a run ends by itself

        def fault(op: str, detail: dict[str, Any]) -> BaseException | None:
            if throttled[0] and op == "GetRecords":
                return ThrottledError("ProvisionedThroughputExceededException: Rate exceeded",
                                      code="ProvisionedThroughputExceededException")
            return None

        self.kinesis.fault = fault
        self.clock.on_wait = on_wait
        config = ConsumerConfig(max_attempts=max_attempts, backoff_base=0.05, backoff_max=0.2, max_records=7,
                                on_failure=dead_letters if dead_letter else "stop", body=Reading if typed else "bytes")
        sc = ShardConsumer(transport=self.kinesis, stream=STREAM, stream_arn=None, holder=holder,
                           processor=FunctionProcessor(func, validate=typed), config=config, stopping=stopping,
                           on_shard_end=lambda sid, children: None,
                           destination=None if not dead_letter else _Letters(dead_letters), clock=self.clock)
        try:
            sc.run()
        finally:
            self.kinesis.fault = None
            self.clock.on_wait = None
        assert seen == sorted(seen), "records handled out of order within one run"
        assert not broken, broken[0]

    # -- what must hold after every step ---------------------------------------------------------
    @invariant()
    def checkpoint_never_passes_an_unhandled_record(self) -> None:
        STATS["steps"] += 1  # type: ignore[operator]
        lease = self.store.get_lease(NS, self.shard)
        assert lease is not None
        cp = lease.checkpoint
        if cp.is_sentinel:
            return
        at = (int(cp.sequence_number), -1 if cp.sub_sequence_number is None else cp.sub_sequence_number)
        for pos in self.expected:
            if _before_or_at(pos, at):
                assert pos in self.handled, f"checkpoint {cp} passed {pos}, which was never handled"

    def teardown(self) -> None:
        """A healthy worker, long enough, delivers everything: at least once overall."""
        lease = self.store.get_lease(NS, self.shard)
        assert lease is not None
        holder = take_lease(self.store, NS, lease, "final")
        assert holder is not None
        stopping = threading.Event()
        pauses = [0]

        def on_wait(seconds: float) -> None:
            pauses[0] += 1
            if pauses[0] > 10 * len(self.expected) + 20:
                stopping.set()

        self.clock.on_wait = on_wait

        broken: list[str] = []

        def ok(record: StreamRecord) -> None:
            if position(record) in self.invalid:
                broken.append(f"{position(record)} reached the handler without a valid body")
            self.handled.add(position(record))

        def letters(sent: list[Any]) -> None:
            broken.extend(f"{position(x.record)}: a valid record dead-lettered" for x in sent
                          if position(x.record) not in self.invalid)
            self.handled.update(position(letter.record) for letter in sent)

        sc = ShardConsumer(transport=self.kinesis, stream=STREAM, stream_arn=None, holder=holder,
                           processor=FunctionProcessor(ok, validate=True),
                           config=ConsumerConfig(max_records=7, body=Reading, on_failure=letters), stopping=stopping,
                           on_shard_end=lambda sid, children: None, destination=_Letters(letters), clock=self.clock)
        sc.run()
        assert not broken, broken[0]
        missing = [p for p in self.expected if p not in self.handled]
        assert not missing, f"never delivered: {missing[:5]}"


class _Letters:
    def __init__(self, func: Any) -> None:
        self.func = func

    def send(self, letters: Any) -> None:
        self.func(letters)

    def send_json(self, documents: Any) -> None:  # pragma: no cover - the consumer sends letters
        raise AssertionError("not used")


def _before_or_at(pos: Position, cp: Position) -> bool:
    """Whether a checkpoint at `cp` counts `pos` as done (a plain record's checkpoint covers its whole sequence)."""
    seq, sub = pos
    cseq, csub = cp
    if seq != cseq:
        return seq < cseq
    return csub == -1 or sub <= csub


ConsumerMachine.TestCase.settings = settings(
    max_examples=400 if DEEP else 40, stateful_step_count=25 if DEEP else 12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestConsumerInterleavings = ConsumerMachine.TestCase
