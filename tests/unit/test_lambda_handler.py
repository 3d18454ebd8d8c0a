"""kinesis_handler: decoding, deaggregation, retries within the time left, dead letters, batch failures."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import streamkit
from streamkit.aws_lambda import HandlerOptions, kinesis_handler, parse_event, process_event
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.destinations import DeadLetter
from streamkit.records import StreamRecord
from streamkit.testing import FakeClock

EVENTS = Path(__file__).resolve().parents[1] / "events"


def event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"kinesis_{name}.json").read_text()))


class Context:
    def __init__(self, remaining_ms: float = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> float:
        return self.remaining_ms


def test_the_contract_name_is_exported_from_streamkit() -> None:
    assert streamkit.kinesis_handler is kinesis_handler


def test_plain_records_are_decoded_and_passed_in_order_with_metadata() -> None:
    seen: list[StreamRecord] = []

    @kinesis_handler(body="json")
    def handler(record: StreamRecord) -> None:
        seen.append(record)

    assert handler(event("plain"), Context()) == {"batchItemFailures": []}
    assert [r.body["sensor_id"] for r in seen] == ["s-0", "s-1", "s-2"]
    r = seen[0]
    assert r.shard_id == "shardId-000000000000" and r.sub_sequence_number is None
    assert r.event_source_arn.endswith("stream/sensors") and r.approximate_arrival_timestamp == 1700000000.123
    with pytest.raises(AttributeError):
        r.partition_key = "x"  # type: ignore[misc]


def test_aggregates_are_expanded_with_parent_sequence_and_sub_sequence_numbers() -> None:
    records = parse_event(event("aggregated"), body="json")
    seq = event("aggregated")["Records"][0]["kinesis"]["sequenceNumber"]
    assert [(r.sequence_number, r.sub_sequence_number, r.partition_key) for r in records] == [
        (seq, 0, "s-0"), (seq, 1, "s-1"), (seq, 2, "s-0"), (seq, 3, "s-1")]
    assert [r.body["seq"] for r in records] == [0, 1, 2, 3]


def test_plain_function_decorator_form_and_text_bodies() -> None:
    seen: list[str] = []

    @kinesis_handler
    def handler(record: StreamRecord) -> None:
        seen.append(record.data.decode())

    handler(event("plain"), None)
    assert len(seen) == 3


def test_a_failure_is_retried_then_reported_and_nothing_after_it_runs() -> None:
    calls: list[str] = []

    @kinesis_handler(body="json", max_attempts=3, backoff_base=0.001)
    def handler(record: StreamRecord) -> None:
        calls.append(record.body["sensor_id"])
        if record.body["sensor_id"] == "s-1":
            raise RuntimeError("downstream down")

    ev = event("plain")
    out = handler(ev, Context())
    assert out == {"batchItemFailures": [{"itemIdentifier": ev["Records"][1]["kinesis"]["sequenceNumber"]}]}
    assert calls == ["s-0", "s-1", "s-1", "s-1"]


def test_a_failure_with_a_destination_goes_there_with_its_payload_and_processing_goes_on() -> None:
    letters: list[DeadLetter] = []
    calls: list[str] = []

    @kinesis_handler(body="json", max_attempts=2, on_failure=letters.extend, backoff_base=0.001)
    def handler(record: StreamRecord) -> None:
        calls.append(record.body["sensor_id"])
        if record.body["sensor_id"] == "s-1":
            raise ValueError("bad reading")

    assert handler(event("plain"), Context()) == {"batchItemFailures": []}
    assert calls == ["s-0", "s-1", "s-1", "s-2"]
    (letter,) = letters
    doc = letter.to_json()
    assert json.loads(base64.b64decode(doc["data"]))["sensor_id"] == "s-1"
    assert doc["attempts"] == 2 and "bad reading" in doc["error"] and doc["partition_key"] == "s-1"
    assert doc["event_source_arn"].endswith("stream/sensors") and doc["shard_id"] == "shardId-000000000000"
    assert doc["approximate_arrival_timestamp"] == 1700000000.123 and doc["sub_sequence_number"] is None


def test_a_file_destination(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"

    @kinesis_handler(on_failure=f"file:{dead}", max_attempts=1)
    def handler(record: StreamRecord) -> None:
        raise RuntimeError("x")

    handler(event("plain"), Context())
    assert len(dead.read_text().splitlines()) == 3


def test_an_undecodable_body_fails_that_record_only_without_retries() -> None:
    letters: list[DeadLetter] = []
    seen: list[str] = []

    @kinesis_handler(body="json", max_attempts=5, on_failure=letters.extend)
    def handler(record: StreamRecord) -> None:
        seen.append(record.body["sensor_id"])

    assert handler(event("mixed"), Context()) == {"batchItemFailures": []}
    assert seen == ["s-9", "s-0", "s-1", "s-0", "s-1"]
    (letter,) = letters
    assert letter.attempts == 1 and "not valid JSON" in letter.error and letter.record.data == b"not json at all"


class DeadlineContext:
    """A context whose remaining time runs down with the clock, like Lambda's."""

    def __init__(self, remaining_ms: float, clock: FakeClock) -> None:
        self.clock = clock
        self.deadline = clock.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> float:
        return (self.deadline - self.clock.monotonic()) * 1000


def test_retries_never_run_into_the_margin_before_the_invocation_deadline() -> None:
    calls = 0

    def handler(record: StreamRecord) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("slow dependency")

    clock = FakeClock()
    options = HandlerOptions(max_attempts=1000, backoff_base=0.05, backoff_max=0.1, time_margin_ms=1000, clock=clock)
    ev = event("plain")
    t0 = clock.monotonic()
    out = process_event(ev, DeadlineContext(1500, clock), handler, options)
    elapsed = clock.monotonic() - t0
    assert out["batchItemFailures"][0]["itemIdentifier"] == ev["Records"][0]["kinesis"]["sequenceNumber"]
    assert 1 < calls < 1000
    assert elapsed <= 0.5 + 0.05  # stopped before the last 1,000 ms of the 1,500 ms left


def test_a_failing_sub_record_without_a_progress_store_redelivers_earlier_ones() -> None:
    seen: list[int] = []
    fail = {"on": True}

    @kinesis_handler(body="json", max_attempts=1)
    def handler(record: StreamRecord) -> None:
        if record.body["seq"] == 2 and fail["on"]:
            raise RuntimeError("once")
        seen.append(record.body["seq"])

    ev = event("aggregated")
    assert handler(ev, Context())["batchItemFailures"]
    fail["on"] = False
    handler(ev, Context())  # Lambda redelivers from the aggregate's sequence number
    assert seen == [0, 1, 0, 1, 2, 3]


def test_a_progress_store_skips_sub_records_that_already_succeeded() -> None:
    seen: list[int] = []
    fail = {"on": True}
    store = MemoryCheckpointStore()

    @kinesis_handler(body="json", max_attempts=1, progress_store=store)
    def handler(record: StreamRecord) -> None:
        if record.body["seq"] == 2 and fail["on"]:
            raise RuntimeError("once")
        seen.append(record.body["seq"])

    ev = event("aggregated")
    assert handler(ev, Context())["batchItemFailures"]
    fail["on"] = False
    assert handler(ev, Context()) == {"batchItemFailures": []}
    assert seen == [0, 1, 2, 3]


def test_batch_mode_passes_the_whole_list_and_reports_its_first_record_on_failure() -> None:
    batches: list[int] = []

    @kinesis_handler(batch=True, max_attempts=2, backoff_base=0.001)
    def handler(records: list[StreamRecord]) -> None:
        batches.append(len(records))
        raise RuntimeError("no")

    ev = event("mixed")
    out = handler(ev, Context())
    assert batches == [6, 6]
    assert out == {"batchItemFailures": [{"itemIdentifier": ev["Records"][0]["kinesis"]["sequenceNumber"]}]}


def test_the_sqs_client_is_created_once_per_container() -> None:
    created: list[object] = []

    class FakeSqs:  # the SQS adapter's shape (streamkit.aws.sqs.BotoSqs): the entries refused
        def send_message_batch(self, queue_url: str, entries: list[dict[str, str]]) -> list[dict[str, str]]:
            return []

    import streamkit.aws.clients as clients

    original = clients.aws_client

    def counting(service: str, **kwargs: Any) -> Any:
        created.append(service)
        return FakeSqs()

    clients.aws_client = counting  # type: ignore[assignment]
    try:
        @kinesis_handler(on_failure="sqs:https://sqs.us-east-1.amazonaws.com/123/dlq", max_attempts=1)
        def handler(record: StreamRecord) -> None:
            raise RuntimeError("x")

        assert created == []  # nothing at import/decoration time
        for _ in range(3):
            handler(event("plain"), Context())
    finally:
        clients.aws_client = original  # type: ignore[assignment]
    assert created == ["sqs"]
