"""What AWS was recorded doing, with the recorded values as the expected ones.

Source: LocalStack's Kinesis event-source-mapping snapshots, responses recorded against AWS
(tests/aws/services/lambda_/event_source_mapping/test_lambda_integration_kinesis.snapshot.json in
localstack/localstack), and Lambda's tumbling-window page for the window format. Each test failed on the
emulator before these were modelled. FakeKinesis and a FakeClock; runs in ~6 s. Runs whose handler keeps
failing use stop_after_idle=30: every thread's pauses advance the shared fake clock, so under load 1.5 fake
seconds of failures can pass between two invocations and end the run with NoProgressError.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from streamkit.aws_lambda.emulator import EsmConfig, EsmStats, EventSourceMapping
from streamkit.testing import FakeClock, FakeKinesis


def fakes() -> tuple[FakeKinesis, FakeClock]:
    clock = FakeClock(scale=0.01)  # a fake second takes 10 real ms
    return FakeKinesis(clock=clock), clock


def esm(kinesis: FakeKinesis, clock: FakeClock, handler: Any, **config: Any) -> EventSourceMapping:
    return EventSourceMapping("s", handler, client=kinesis, clock=clock,
                              config=EsmConfig(starting_position="TRIM_HORIZON", **config))


def letters(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_expired_records_are_never_invoked_even_when_the_function_would_succeed(tmp_path: Path) -> None:
    # Recorded: test_kinesis_maximum_record_age_exceeded[expire-before-ingestion] -- MaximumRecordAgeInSeconds 60,
    # the record older than that when polled: OnFailure RecordAgeExceeded, approximateInvokeCount 1, no responseContext.
    kinesis, clock = fakes()
    kinesis.put("s", b"stale", "k")
    clock.advance(120)
    kinesis.put("s", b"fresh", "k")
    seen: list[bytes] = []
    dead = tmp_path / "onfailure.jsonl"
    stats = esm(kinesis, clock, lambda e, c: seen.extend(base64.b64decode(r["kinesis"]["data"]) for r in e["Records"]),
                batch_size=10, max_record_age=60, max_retry_attempts=0, on_failure=f"file:{dead}").run(stop_after_idle=1.5)
    assert seen == [b"fresh"]
    (doc,) = letters(dead)
    assert doc["requestContext"]["condition"] == "RecordAgeExceeded"
    assert doc["requestContext"]["approximateInvokeCount"] == 1
    assert "responseContext" not in doc and doc["KinesisBatchInfo"]["batchSize"] == 1
    assert stats.records_discarded == 1 and stats.records_succeeded == 1


def test_a_failing_batch_is_retried_with_backoff_8_times_in_the_first_minute() -> None:
    # Recorded: over ~60 s AWS invoked a failing batch 8 times; the emulator re-invoked every 0.2 s (~300).
    # The lane's own pauses are read off the fake clock (other threads advance it too), so the count is exact.
    kinesis, clock = fakes()
    kinesis.put("s", b"poison", "k")
    pauses: list[float] = []
    calls: list[int] = []

    def on_wait(seconds: float) -> None:
        if "lane" in threading.current_thread().name:
            pauses.append(seconds)

    def handler(event: dict[str, Any], context: Any) -> None:
        calls.append(1)
        if len(calls) >= 12:
            mapping.stop()
        raise RuntimeError("always")

    mapping = esm(kinesis, clock, handler)
    clock.on_wait = on_wait
    mapping.run(stop_after_idle=None)
    starts = [sum(pauses[:i]) for i in range(len(pauses) + 1)]  # each invocation's start after the first
    assert pauses[:8] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert len([t for t in starts if t <= 60]) == 8


def test_on_failure_records_say_null_function_error_for_a_reported_failure(tmp_path: Path) -> None:
    # Recorded: test_kinesis_report_batch_item_failure_scenarios[item_identifier_not_present_failure] (functionError
    # null) and [unhandled_exception_in_function] ("Unhandled"), MaximumRetryAttempts 2: approximateInvokeCount 3.
    kinesis, clock = fakes()
    kinesis.put("s", b"reported", "a")
    kinesis.put("s", b"raises", "b")

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        (record,) = event["Records"]
        if base64.b64decode(record["kinesis"]["data"]) == b"raises":
            raise RuntimeError("unhandled")
        return {"batchItemFailures": [{"itemIdentifier": record["kinesis"]["sequenceNumber"]}]}

    dead = tmp_path / "onfailure.jsonl"
    esm(kinesis, clock, handler, batch_size=1, max_retry_attempts=2, report_batch_item_failures=True,
        on_failure=f"file:{dead}", retry_delay=0.01).run(stop_after_idle=30)
    reported, raised = letters(dead)
    assert reported["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": None}
    assert raised["responseContext"]["functionError"] == "Unhandled"
    assert reported["requestContext"]["approximateInvokeCount"] == raised["requestContext"]["approximateInvokeCount"] == 3


def test_a_partial_failure_retries_the_rest_as_a_new_batch(tmp_path: Path) -> None:
    # Recorded: test_kinesis_report_batch_item_failures -- BatchSize 3, MaximumRetryAttempts 3, the 6th of 6
    # records reported failed each time: delivered 5 times, OnFailure approximateInvokeCount 4, functionError null.
    kinesis, clock = fakes()
    for i in range(6):
        kinesis.put("s", json.dumps({"should_fail": i == 5}).encode(), f"test_{i}")
    deliveries: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failed = []
        for r in event["Records"]:
            with lock:
                deliveries[r["kinesis"]["partitionKey"]] += 1
            if json.loads(base64.b64decode(r["kinesis"]["data"]))["should_fail"]:
                failed.append({"itemIdentifier": r["kinesis"]["sequenceNumber"]})
        return {"batchItemFailures": failed}

    dead = tmp_path / "onfailure.jsonl"
    esm(kinesis, clock, handler, batch_size=3, max_retry_attempts=3, report_batch_item_failures=True,
        on_failure=f"file:{dead}", retry_delay=0.01).run(stop_after_idle=30)
    assert deliveries["test_5"] == 5 and all(deliveries[f"test_{i}"] == 1 for i in range(5))
    (doc,) = letters(dead)
    assert doc["requestContext"]["approximateInvokeCount"] == 4 and doc["responseContext"]["functionError"] is None


def test_a_tumbling_window_response_without_state_is_a_failed_invocation() -> None:
    kinesis, clock = fakes()
    kinesis.put("s", b"1", "k")
    calls: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        calls.append(event)  # returns no state

    stats: EsmStats = esm(kinesis, clock, handler, tumbling_window=60, max_retry_attempts=1,
                          retry_delay=0.01).run(stop_after_idle=30)
    records = [c for c in calls if c["Records"]]
    assert len(records) == 2 and stats.function_errors == 2 and stats.records_discarded == 1


def test_window_bounds_are_written_as_aws_writes_them() -> None:
    # Lambda's tumbling-window page: "window": {"start": "2020-07-30T17:00:00Z", "end": "2020-07-30T17:05:00Z"}.
    kinesis, clock = fakes()
    kinesis.put("s", b"1", "k")
    windows: list[dict[str, str]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        windows.append(event["window"])
        return {"state": {}}

    esm(kinesis, clock, handler, tumbling_window=60).run(stop_after_idle=1.5)
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
    assert windows and all(stamp.match(w["start"]) and stamp.match(w["end"]) for w in windows)
