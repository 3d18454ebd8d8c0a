"""Model-based test of the producer's invariant: interleavings of put, send, flush, close, throttling, server
death, a stop signal and process exit, on FakeKinesis with a FakeClock, written against the public API only.

The invariant, checked after every step: every record `put`/`send` accepted (returned without raising) ends
exactly once as acknowledged (in the stream; its future resolves to where it is) or handed over (to
`on_failure`, payload included; its future fails), and never both; nothing appears that was not accepted;
once the producer is closed (by `close()`, by a stop signal's `stop_accepting()` + `close(grace)`, or by
interpreter exit's `flush_open_producers()`), nothing is left pending and every call raises
`ProducerClosedError`. Without an `on_failure`, the records neither written nor pending are exactly the
ones `metrics()` counts as failed.

The producer runs its own threads; the fake clock moves only when a rule advances it (or while a flush or
close waits, see `_advancing`), so TTLs, lingers and backoffs are explored deterministically in fake time.

Runtime: ~15 s in `make test`; ``STREAMKIT_DEEP=1`` (``make test-deep``) runs many more examples.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from producer import FailedRecord, Producer, ProducerConfig, PutResult
from producer.producer import flush_open_producers
from streamkit.aggregation import decode
from streamkit.errors import BufferFullError, ProducerClosedError, StreamkitError
from streamkit.testing import FakeClock, FakeKinesis

DEEP = os.environ.get("STREAMKIT_DEEP") == "1"
STATS: dict[str, int] = {}  # what the machine explored (printed by make test-deep)
THROTTLED = "ProvisionedThroughputExceededException"


def _count(event: str) -> None:
    STATS[event] = STATS.get(event, 0) + 1


class ProducerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.throttle_next = 0
        self.kinesis = FakeKinesis(shards=2, clock=self.clock, entry_error=self._entry_error)
        self.handed: list[FailedRecord] = []
        self.handed_lock = threading.Lock()
        self.accepted: list[bytes] = []
        self.futures: dict[bytes, Future[PutResult]] = {}
        self.closed = False
        self.n = 0
        self.p: Producer | None = None
        self.with_on_failure = True

    # -- set-up ----------------------------------------------------------------------------------
    @initialize(with_on_failure=st.booleans(), aggregation=st.booleans(), ordered=st.booleans())
    def start(self, with_on_failure: bool, aggregation: bool, ordered: bool) -> None:
        self.with_on_failure = with_on_failure
        config = ProducerConfig(rate_limit=0, record_max_buffered_time=0.05, record_ttl=3.0, backoff_base=0.05,
                                backoff_max=0.5, buffer_full="raise", aggregation=aggregation, ordered=ordered,
                                exit_flush_timeout=1.0, max_connections=4,
                                on_failure=self._on_failure if with_on_failure else None)
        self.p = Producer("s", client=self.kinesis, clock=self.clock, config=config)
        self.p.start()

    def _on_failure(self, record: FailedRecord) -> None:
        with self.handed_lock:
            self.handed.append(record)

    def _entry_error(self, _call: int, _index: int, _entry: dict[str, Any]) -> str | None:
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return THROTTLED
        return None

    @property
    def producer(self) -> Producer:
        assert self.p is not None
        return self.p

    # -- records ---------------------------------------------------------------------------------
    def _offer(self, n: int, keys: int, call: Callable[[bytes, str], Any]) -> None:
        for _ in range(n):
            data = b"r%d" % self.n
            self.n += 1
            try:
                out = call(data, f"k{self.n % keys}")
            except ProducerClosedError:
                assert self.closed, "a producer still open refused a record"
                _count("refused (closed)")
                continue
            except BufferFullError:
                _count("refused (buffer full)")
                continue
            assert not self.closed, "a closed producer accepted a record"
            self.accepted.append(data)
            if out is not None:
                self.futures[data] = out

    @rule(n=st.integers(1, 30), keys=st.integers(1, 5))
    def put(self, n: int, keys: int) -> None:
        _count("put")
        self._offer(n, keys, self.producer.put)

    @rule(n=st.integers(1, 30), keys=st.integers(1, 5))
    def send(self, n: int, keys: int) -> None:
        _count("send")
        self._offer(n, keys, self.producer.send)

    # -- time and faults -------------------------------------------------------------------------
    @rule(seconds=st.sampled_from([0.01, 0.06, 0.5, 2.0, 4.0]))
    def advance(self, seconds: float) -> None:
        _count("advance")
        self.clock.advance(seconds)
        time.sleep(0.002)  # (real time for the sender's threads to act on it; not a pass/fail timing)

    @rule(k=st.integers(1, 20))
    def throttle(self, k: int) -> None:
        _count("throttle")
        self.throttle_next = k

    @rule(alive=st.booleans())
    def server(self, alive: bool) -> None:
        """The Kinesis server dies (every call fails as connection refused) or comes back."""
        _count("server returns" if alive else "server dies")
        self.kinesis.unreachable = not alive

    # -- endings ---------------------------------------------------------------------------------
    def _advancing(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` (a flush or close) in a thread while fake time passes, 50 ms per real millisecond."""
        out: list[Any] = []
        error: list[BaseException] = []

        def run() -> None:
            try:
                out.append(fn())
            except BaseException as exc:
                error.append(exc)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        for _ in range(20_000):  # bounded: 1,000 fake seconds, far past every TTL
            t.join(0.001)
            if not t.is_alive():
                break
            self.clock.advance(0.05)
        assert not t.is_alive(), "flush/close did not return within 1,000 fake seconds"
        if error:
            raise error[0]
        return out[0] if out else None

    @rule(timeout=st.sampled_from([None, 0.0, 0.5, 5.0]))
    def flush(self, timeout: float | None) -> None:
        _count("flush")
        if self.closed:
            with pytest.raises(ProducerClosedError):
                self.producer.flush(timeout)
            return
        if self._advancing(lambda: self.producer.flush(timeout)):
            assert all(f.done() for f in self.futures.values()), "flush returned True with records pending"

    @rule(how=st.sampled_from(["close", "stop signal", "process exit"]), now=st.integers(0, 3),
          timeout=st.sampled_from([None, 0.0, 0.5, 5.0]))
    def end(self, how: str, now: int, timeout: float | None) -> None:
        """The producer's life ends: `close(timeout)`; what `produce` does on SIGTERM (`stop_accepting`,
        then `close(grace)`); or interpreter exit with it never closed (what threading's exit hook runs).
        Taken one time in four when drawn (``now == 0``), so that runs are long before they end."""
        if now or self.closed:
            return
        _count(how)
        if how == "close":
            self._advancing(lambda: self.producer.close(timeout))
        elif how == "stop signal":
            self.producer.stop_accepting()
            self.closed = True
            with pytest.raises(ProducerClosedError):
                self.producer.send(b"after the signal", "k")
            self._advancing(lambda: self.producer.close(timeout or 0.0))
        else:
            self._advancing(flush_open_producers)
        self.closed = True
        self._check_all_accounted_for()

    # -- the invariant ---------------------------------------------------------------------------
    def _written(self) -> dict[bytes, tuple[str, str]]:
        """Every user record in the stream: data -> (shard, sequence number); none twice."""
        out: dict[bytes, tuple[str, str]] = {}
        for shard, entries in list(self.kinesis.written.items()):
            for seq, e in list(entries):
                for r in decode(e["Data"], e.get("PartitionKey")):
                    assert r.data not in out, f"{r.data!r} written twice"
                    out[r.data] = (shard, seq)
        return out

    @invariant()
    def each_record_ends_once_as_acknowledged_or_handed_over(self) -> None:
        if self.p is None:
            return
        # Futures first, then what was handed over, then the stream: a record is written before its
        # future resolves, and handed over before its future fails, so this order never reads a
        # resolution without what must come before it.
        settled = [(data, fut) for data, fut in list(self.futures.items()) if fut.done()]
        with self.handed_lock:
            handed = [r.data for r in self.handed]
        written = self._written()
        accepted = set(self.accepted)
        assert len(handed) == len(set(handed)), "a record handed over twice"
        assert not set(handed) & set(written), "a record both written and handed over"
        assert set(written) <= accepted and set(handed) <= accepted, "a record nobody accepted"
        for data, fut in settled:
            exc = fut.exception()
            if exc is None:
                result = fut.result()
                assert data in written, "acknowledged but not in the stream"
                shard, seq = written[data]
                assert (result.shard_id, result.sequence_number) == (shard, seq)
            else:
                assert isinstance(exc, StreamkitError)
                assert data not in written
                if self.with_on_failure:
                    assert data in handed, "a failed future whose record never reached on_failure"

    def _check_all_accounted_for(self) -> None:
        written = self._written()
        with self.handed_lock:
            handed = {r.data for r in self.handed}
        pending = [d for d in self.accepted if d not in written and d not in handed]
        m = self.producer.metrics()
        assert m["buffered_records"] == 0
        assert all(f.done() for f in self.futures.values()), "a future left pending after close"
        if self.with_on_failure:
            assert not pending, f"{len(pending)} accepted record(s) neither written nor handed over"
        else:
            assert m["user_records_failed"] == len(pending), "failed records not counted"
        assert m["user_records_written"] == len(written)
        for call in (lambda: self.producer.put(b"x", "k"), lambda: self.producer.send(b"x", "k"), self.producer.flush):
            with pytest.raises(ProducerClosedError):
                call()

    def teardown(self) -> None:
        if self.p is None:
            return
        if not self.closed:
            self.kinesis.unreachable = False
            self.throttle_next = 0
            self._advancing(self.producer.close)
            self.closed = True
            self._check_all_accounted_for()


SETTINGS = settings(max_examples=400 if DEEP else 25, stateful_step_count=30 if DEEP else 15, deadline=None,
                    suppress_health_check=list(HealthCheck))


def test_every_accepted_record_ends_once_acknowledged_or_handed_over() -> None:
    run_state_machine_as_test(ProducerMachine, settings=SETTINGS)
    if DEEP:
        print("producer state machine explored:", dict(sorted(STATS.items())))


def test_the_machine_finds_a_planted_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted: `close()` forgets what is still buffered when its timeout runs out (no on_failure, no
    failed future). The machine must find an interleaving that shows it (a dead server, then close)."""
    from producer.sender import Sender

    monkeypatch.setattr(Sender, "fail_leftovers", lambda self, *a, **k: None)
    # Up to 4 searches of 300 random examples. One search missed in about 1 run in 20 (CI's machine once
    # ran 300 that never reached "a dead server, then a close whose timeout runs out"), and a fixed
    # sequence (derandomize) missed too, as the sender's threads decide whether records are still buffered.
    found: BaseException | None = None
    for _search in range(4):
        try:
            run_state_machine_as_test(ProducerMachine, settings=settings(
                SETTINGS, max_examples=300, phases=[Phase.generate], print_blob=False))
        except Exception as exc:  # (which kind: checked below)
            found = exc
            break
    assert found is not None, "the machine did not find the planted bug in 1,200 examples"
    # The invariant's AssertionError, or hypothesis's Flaky* when replaying it (the sender's threads make
    # the replay's timing differ), which it raises only after a failing run.
    assert isinstance(found, AssertionError) or "Flaky" in type(found).__name__, found
