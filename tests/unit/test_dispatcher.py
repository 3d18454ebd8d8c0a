"""The dispatcher with local workers: exactly once, per-key order, unordered shown unordered, failures."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from collections.abc import Sequence

import pytest

from dispatcher import Dispatcher, LocalTarget
from dispatcher.core import lane_of
from streamkit.destinations import DeadLetter
from streamkit.errors import ConfigurationError
from streamkit.records import StreamRecord


def records(n: int, keys: int = 20) -> list[StreamRecord]:
    return [StreamRecord(b"%d" % i, f"k{i % keys}", str(1000 + i), None, "shardId-000000000000") for i in range(n)]


def jitter_worker(log: dict[str, list[int]], lock: threading.Lock, seed: int = 1) -> object:
    rng = random.Random(seed)

    def work(r: StreamRecord) -> None:
        for _ in range(rng.randrange(2000)):  # uneven work, so lanes finish in varied orders (no sleeping)
            pass
        with lock:
            log[r.partition_key].append(int(r.data))

    return work


def test_every_record_is_delivered_exactly_once_in_both_modes() -> None:
    for mode in ("unordered", "per-key"):
        seen: Counter[bytes] = Counter()
        lock = threading.Lock()

        def work(r: StreamRecord, seen: Counter[bytes] = seen, lock: threading.Lock = lock) -> None:
            with lock:
                seen[r.data] += 1

        d = Dispatcher(LocalTarget(work, workers=8), mode=mode)  # type: ignore[arg-type]
        result = d.dispatch(records(500))
        d.close()
        assert result.delivered == 500 and not result.failed
        assert set(seen.values()) == {1} and len(seen) == 500


def test_per_key_mode_keeps_each_keys_order() -> None:
    log: dict[str, list[int]] = defaultdict(list)
    d = Dispatcher(LocalTarget(jitter_worker(log, threading.Lock()), workers=8), mode="per-key")  # type: ignore[arg-type]
    d.dispatch(records(400))
    d.close()
    assert all(v == sorted(v) for v in log.values())


def test_unordered_mode_breaks_key_order_as_documented() -> None:
    log: dict[str, list[int]] = defaultdict(list)
    lock = threading.Lock()
    later_done = threading.Event()

    def work(r: StreamRecord) -> None:
        value = int(r.data)
        if value == 0:
            assert later_done.wait(10)  # the first record waits until a later one of its key is done
        with lock:
            log[r.partition_key].append(value)
        if value >= 200 and r.partition_key == "k0":
            later_done.set()

    d = Dispatcher(LocalTarget(work, workers=16), mode="unordered")
    d.dispatch(records(400, keys=2))
    d.close()
    assert log["k0"] != sorted(log["k0"])  # nothing in unordered mode waits for a key's earlier records


def test_a_key_always_maps_to_the_same_lane() -> None:
    assert {lane_of("sensor-7", 8) for _ in range(10)} == {lane_of("sensor-7", 8)}


def test_failures_are_retried_then_reported_at_the_lowest_sequence_number() -> None:
    attempts: Counter[bytes] = Counter()
    lock = threading.Lock()

    def work(r: StreamRecord) -> None:
        with lock:
            attempts[r.data] += 1
        if r.partition_key == "k3":
            raise RuntimeError("target down for k3")

    d = Dispatcher(LocalTarget(work, workers=4), mode="per-key", max_attempts=3, backoff_base=0.001)
    result = d.dispatch(records(40, keys=5))
    d.close()
    assert {int(r.data) % 5 for r in result.failed} == {3}
    assert result.delivered == 32  # every record of the other keys got through
    assert result.batch_item_failures() == [{"itemIdentifier": "1003"}]
    assert attempts[b"3"] == 3 and attempts[b"0"] == 1


def test_failures_go_to_the_dead_letter_destination_with_their_payload() -> None:
    letters: list[DeadLetter] = []

    def work(r: StreamRecord) -> None:
        if r.data == b"7":
            raise ValueError("bad")

    d = Dispatcher(LocalTarget(work, workers=4), mode="unordered", max_attempts=2, backoff_base=0.001,
                   dead_letter=letters.extend)
    result = d.dispatch(records(20))
    d.close()
    assert result.dead_lettered == 1 and not result.failed and result.batch_item_failures() == []
    assert letters[0].record.data == b"7" and "bad" in letters[0].error


def test_bad_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="mode"):
        Dispatcher(LocalTarget(lambda r: None), mode="sideways")  # type: ignore[arg-type]


def test_per_key_mode_holds_a_failing_keys_later_records_back() -> None:
    delivered: list[bytes] = []
    lock = threading.Lock()

    def work(r: StreamRecord) -> None:
        if r.data == b"3":
            raise RuntimeError("no")
        with lock:
            delivered.append(r.data)

    d = Dispatcher(LocalTarget(work, workers=2), mode="per-key", lanes=2, max_attempts=2, backoff_base=0.001)
    result = d.dispatch(records(20, keys=5))  # key k3 holds 3, 8, 13, 18
    d.close()
    assert sorted(int(r.data) for r in result.failed) == [3, 8, 13, 18]
    assert not {b"8", b"13", b"18"} & set(delivered)
    assert result.batch_item_failures() == [{"itemIdentifier": "1003"}]


class CountingTarget(LocalTarget):
    def __init__(self, worker: object, workers: int) -> None:
        super().__init__(worker, workers=workers)  # type: ignore[arg-type]
        self.calls = 0
        self.lock = threading.Lock()

    def deliver(self, lane: int, records: Sequence[StreamRecord]) -> list[tuple[StreamRecord, str]]:
        with self.lock:
            self.calls += 1
        return super().deliver(lane, records)


def test_per_key_lanes_deliver_runs_of_distinct_keys_in_one_call_each() -> None:
    log: dict[str, list[int]] = defaultdict(list)
    target = CountingTarget(jitter_worker(log, threading.Lock()), workers=4)
    d = Dispatcher(target, mode="per-key")
    result = d.dispatch(records(400, keys=100))  # each lane sees each of its ~25 keys 4 times: 4 runs
    d.close()
    assert result.delivered == 400 and all(v == sorted(v) for v in log.values())
    assert target.calls <= 4 * 4


def test_per_key_mode_refuses_a_target_that_does_not_keep_order() -> None:
    class Unordered(LocalTarget):
        preserves_order = False

    with pytest.raises(ConfigurationError, match="per-key' needs a target that keeps order"):
        Dispatcher(Unordered(lambda r: None), mode="per-key")
    Dispatcher(Unordered(lambda r: None), mode="unordered").close()


def test_retry_pauses_go_through_the_injected_sleep() -> None:
    pauses: list[float] = []

    def work(r: StreamRecord) -> None:
        raise RuntimeError("down")

    d = Dispatcher(LocalTarget(work, workers=1), mode="unordered", max_attempts=3, backoff_base=0.05,
                   sleep=pauses.append)
    result = d.dispatch(records(1))
    d.close()
    assert len(result.failed) == 1 and len(pauses) == 2 and all(0 <= p <= 2.0 for p in pauses)
