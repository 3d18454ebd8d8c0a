"""Tumbling windows in the emulator, with the handler-side helper `streamkit.aws_lambda.windows`: one final
aggregate per shard per window equal to a direct computation, early termination past the state limit, a
failed final invocation retried, a split closing the parent's window. FakeKinesis and a FakeClock; ~8 s."""

from __future__ import annotations

import base64
import json
import threading
from collections import defaultdict
from typing import Any

from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.aws_lambda.windows import WindowResult, tumbling_window
from streamkit.records import StreamRecord
from streamkit.testing import FakeClock, FakeKinesis


def add(state: dict[str, Any], record: StreamRecord) -> dict[str, Any]:
    return {"n": state.get("n", 0) + 1, "sum": state.get("sum", 0) + record.body["temp_c"]}


def collector() -> tuple[list[WindowResult], Any]:
    results: list[WindowResult] = []
    lock = threading.Lock()

    def store(window: WindowResult) -> None:
        with lock:
            results.append(window)
    return results, store


def test_a_60_s_window_gives_one_aggregate_per_shard_per_window_equal_to_a_direct_computation() -> None:
    clock = FakeClock(scale=0.01)
    kinesis = FakeKinesis(clock=clock, auto_create=False)
    kinesis.create_stream("s", 2)
    for i in range(200):  # one reading a second for 200 s: windows [0, 60), [60, 120), ... of the wall clock
        kinesis.put("s", json.dumps({"sensor": f"s{i % 7}", "temp_c": i % 13}).encode(), f"s{i % 7}")
        clock.advance(1)
    expected: dict[tuple[str, float], tuple[int, int]] = defaultdict(lambda: (0, 0))
    for shard in kinesis.list_shards("s"):
        for r in kinesis._shard("s", shard.shard_id).records:
            start = r["ApproximateArrivalTimestamp"] - r["ApproximateArrivalTimestamp"] % 60
            n, total = expected[(shard.shard_id, start)]
            expected[(shard.shard_id, start)] = (n + 1, total + json.loads(r["Data"])["temp_c"])
    results, store = collector()
    esm = EventSourceMapping("s", tumbling_window(add, store), client=kinesis, clock=clock,
                             config=EsmConfig(starting_position="TRIM_HORIZON", tumbling_window=60, batch_size=25))
    stats = esm.run(stop_after_idle=1.5)
    got = {(w.shard_id, w.start): (w.state["n"], w.state["sum"]) for w in results}
    assert len(got) == len(results) == len(expected)  # one final aggregate per shard per window
    from streamkit.aws_lambda.esm_invoke import window_time

    assert got == {(sid, window_time(start)): v for (sid, start), v in expected.items()}
    assert not any(w.terminated_early for w in results) and stats.windows_closed == len(expected)


def test_a_state_past_1_mb_ends_the_window_early_in_partial_results_that_add_up() -> None:
    clock = FakeClock(scale=0.01)
    kinesis = FakeKinesis(clock=clock)
    for i in range(30):
        kinesis.put("s", json.dumps({"i": i, "pad": "x" * 100_000}).encode(), "k")  # ~100 KB each: 1 MB by ~11
    results, store = collector()
    early_events: list[bool] = []

    def keep_all(state: dict[str, Any], record: StreamRecord) -> dict[str, Any]:
        return {"items": [*state.get("items", []), record.body]}

    inner = tumbling_window(keep_all, store)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["isFinalInvokeForWindow"]:
            early_events.append(event["isWindowTerminatedEarly"])
        return inner(event, context)

    stats = EventSourceMapping("s", handler, client=kinesis, clock=clock,
                               config=EsmConfig(starting_position="TRIM_HORIZON", tumbling_window=900,
                                                batch_size=1)).run(stop_after_idle=1.5)
    assert stats.windows_terminated_early >= 2 and True in early_events and early_events[-1] is False
    seen = sorted(item["i"] for w in results for item in w.state.get("items", []))
    assert seen == list(range(30))  # every record in exactly one partial result
    assert all(len(json.dumps(w.state)) <= 1024 * 1024 + 110_000 for w in results)


def test_a_failed_final_invocation_is_retried_until_it_succeeds() -> None:
    clock = FakeClock(scale=0.01)
    kinesis = FakeKinesis(clock=clock)
    kinesis.put("s", b'{"temp_c": 5}', "k")
    results, store = collector()
    failures = [RuntimeError("storage down"), RuntimeError("storage down")]

    def flaky_store(window: WindowResult) -> None:
        if failures:
            raise failures.pop()
        store(window)

    stats = EventSourceMapping("s", tumbling_window(add, flaky_store), client=kinesis, clock=clock,
                               config=EsmConfig(starting_position="TRIM_HORIZON", tumbling_window=60,
                                                retry_delay=0.01)).run(stop_after_idle=30)
    assert [w.state for w in results] == [{"n": 1, "sum": 5}] and stats.windows_closed == 1


def test_a_split_closes_the_parents_window_and_the_children_start_afresh() -> None:
    clock = FakeClock(scale=0.01)
    kinesis = FakeKinesis(clock=clock)
    for i in range(5):
        kinesis.put("s", json.dumps({"temp_c": 1}).encode(), f"k{i}")
    (parent,) = kinesis.list_shards("s")
    kinesis.split_shard("s", parent.shard_id)
    for i in range(6):
        kinesis.put("s", json.dumps({"temp_c": 10}).encode(), f"k{i}")
    results, store = collector()
    EventSourceMapping("s", tumbling_window(add, store), client=kinesis, clock=clock,
                       config=EsmConfig(starting_position="TRIM_HORIZON", tumbling_window=900)).run(stop_after_idle=1.5)
    by_shard = {w.shard_id: w.state for w in results}
    assert by_shard[parent.shard_id] == {"n": 5, "sum": 5}  # closed at the split, not merged with the children
    children = [s for sid, s in by_shard.items() if sid != parent.shard_id]
    assert sum(s.get("n", 0) for s in children) == 6 and all(s.get("sum", 0) == 10 * s.get("n", 0) for s in children)


def test_events_carry_the_window_fields_aws_documents() -> None:
    clock = FakeClock(scale=0.01)
    kinesis = FakeKinesis(clock=clock)
    kinesis.put("s", b'{"temp_c": 1}', "k")
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append(event)
        return {"state": {"seen": len(event["Records"])}}

    EventSourceMapping("s", handler, client=kinesis, clock=clock,
                       config=EsmConfig(starting_position="TRIM_HORIZON", tumbling_window=60)).run(stop_after_idle=1.5)
    first, final = events[0], events[-1]
    keys = {"Records", "window", "state", "shardId", "eventSourceARN", "isFinalInvokeForWindow", "isWindowTerminatedEarly"}
    assert keys == set(first) == set(final)
    assert final["isFinalInvokeForWindow"] is True and final["Records"] == [] and final["state"] == {"seen": 1}
    assert base64.b64decode(first["Records"][0]["kinesis"]["data"]) == b'{"temp_c": 1}'


def test_a_window_with_report_batch_item_failures_counts_each_record_once() -> None:
    # The function folds the records before the failed one into the state it returns with batchItemFailures;
    # the mapping retries from the failed record with that state, so the final aggregate counts each once.
    clock = FakeClock(scale=0.01)
    kinesis = FakeKinesis(clock=clock)
    for i in range(6):
        kinesis.put("s", json.dumps({"temp_c": i}).encode(), "k")
    failed_once: set[str] = set()
    results, store = collector()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        state = dict(event["state"])
        if event["isFinalInvokeForWindow"]:
            store(WindowResult(start=event["window"]["start"], end=event["window"]["end"], shard_id=event["shardId"],
                               state=state, terminated_early=event["isWindowTerminatedEarly"]))
            return {"state": {}}
        for r in event["Records"]:
            seq = r["kinesis"]["sequenceNumber"]
            if json.loads(base64.b64decode(r["kinesis"]["data"]))["temp_c"] == 3 and seq not in failed_once:
                failed_once.add(seq)
                return {"state": state, "batchItemFailures": [{"itemIdentifier": seq}]}
            state = {"n": state.get("n", 0) + 1, "sum": state.get("sum", 0) + 1}
        return {"state": state, "batchItemFailures": []}

    stats = EventSourceMapping("s", handler, client=kinesis, clock=clock,
                               config=EsmConfig(starting_position="TRIM_HORIZON", tumbling_window=900, batch_size=6,
                                                report_batch_item_failures=True,
                                                retry_delay=0.01)).run(stop_after_idle=30)
    assert [w.state["n"] for w in results] == [6] and stats.partial_failures == 1
