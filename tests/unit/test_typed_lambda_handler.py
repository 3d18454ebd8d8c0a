"""kinesis_handler(body=Model): records validated into the model; an invalid one is that record's failure,
never retried, dead-lettered with its errors; RecordsInvalid in EMF and Prometheus. No server (~1 s)."""

from __future__ import annotations

import base64
import logging
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pydantic
import pytest

from streamkit.aggregation import UserRecord, encode
from streamkit.aws_lambda import kinesis_handler
from streamkit.destinations import DeadLetter
from streamkit.errors import BatchFailedError
from streamkit.metrics import Metrics
from streamkit.metrics.emf import EmfSink
from streamkit.metrics.prometheus import PrometheusSink
from streamkit.records import StreamRecord
from tests.unit.test_metrics import check_emf

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/sensors"


class Reading(msgspec.Struct):
    sensor: str
    temp: float


class PReading(pydantic.BaseModel):
    sensor: str
    temp: float


def event(*blobs: bytes) -> dict[str, Any]:
    return {"Records": [
        {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "k", "sequenceNumber": str(100 + i),
                     "data": base64.b64encode(b).decode(), "approximateArrivalTimestamp": 1_700_000_000.5},
         "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"shardId-000000000000:{100 + i}",
         "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/r",
         "awsRegion": "us-east-1", "eventSourceARN": ARN} for i, b in enumerate(blobs)]}


def reading(i: int, temp: object = None) -> bytes:
    return orjson.dumps({"sensor": f"s-{i}", "temp": i if temp is None else temp})


@pytest.mark.parametrize("model", [Reading, PReading], ids=["msgspec", "pydantic"])
def test_a_model_round_trips_through_the_wrapper(model: Any) -> None:
    seen: list[Any] = []

    @kinesis_handler(body=model, on_failure=lambda letters: None)
    def handle(record: StreamRecord[Any]) -> None:
        seen.append(record.body)

    assert handle(event(*(reading(i) for i in range(5))), None) == {"batchItemFailures": []}
    assert all(isinstance(b, model) for b in seen) and [b.sensor for b in seen] == [f"s-{i}" for i in range(5)]


def test_an_invalid_record_among_valid_ones_is_dead_lettered_once_with_its_errors_and_not_retried() -> None:
    seen: list[str] = []
    letters: list[DeadLetter] = []

    @kinesis_handler(body=Reading, max_attempts=5, on_failure=letters.extend)
    def handle(record: StreamRecord[Reading]) -> None:
        seen.append(record.body.sensor)

    blobs = [reading(i, "warm" if i == 2 else None) for i in range(5)]
    assert handle(event(*blobs), None) == {"batchItemFailures": []}
    assert seen == ["s-0", "s-1", "s-3", "s-4"]
    assert len(letters) == 1 and letters[0].attempts == 1 and letters[0].record.data == blobs[2]
    doc = letters[0].to_json()
    assert doc["validation_errors"] == [{"field": "temp", "message": "Expected `float`, got `str`"}]
    assert base64.b64decode(doc["data"]) == blobs[2]  # the payload travels with the errors


def test_aggregated_records_are_validated_per_sub_record() -> None:
    seen: list[int | None] = []
    letters: list[DeadLetter] = []

    @kinesis_handler(body=PReading, on_failure=letters.extend)
    def handle(record: StreamRecord[PReading]) -> None:
        seen.append(record.sub_sequence_number)

    blob = encode([UserRecord(reading(i, [1] if i == 3 else None), f"k{i}") for i in range(6)])
    assert handle(event(blob), None) == {"batchItemFailures": []}
    assert seen == [0, 1, 2, 4, 5]
    assert [x.record.sub_sequence_number for x in letters] == [3]
    assert letters[0].validation_errors[0][0] == "temp"


def test_without_a_destination_the_invalid_record_is_reported_in_order_and_said_at_start(
        caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    with caplog.at_level(logging.WARNING, logger="streamkit.lambda"):
        @kinesis_handler(body=Reading, max_attempts=3)
        def handle(record: StreamRecord[Reading]) -> None:
            seen.append(record.body.sensor)

        said = [r.getMessage() for r in caplog.records if "without on_failure" in r.getMessage()]
        assert len(said) == 1 and "body=Reading" in said[0] and "block" in said[0]
    out = handle(event(*(reading(i, "x" if i == 2 else None) for i in range(5))), None)
    assert out == {"batchItemFailures": [{"itemIdentifier": "102"}]} and seen == ["s-0", "s-1"]


def test_without_report_batch_item_failures_an_invalid_record_fails_the_invocation() -> None:
    @kinesis_handler(body=Reading, report_batch_item_failures=False)
    def handle(record: StreamRecord[Reading]) -> None:
        return None

    with pytest.raises(BatchFailedError):
        handle(event(reading(0), b"{}"), None)


def test_batch_mode_hands_the_valid_models_and_sets_the_invalid_aside() -> None:
    batches: list[list[str]] = []
    letters: list[DeadLetter] = []

    @kinesis_handler(body=Reading, batch=True, on_failure=letters.extend)
    def handle(records: list[StreamRecord[Reading]]) -> None:
        batches.append([r.body.sensor for r in records])

    assert handle(event(*(reading(i, "x" if i in (1, 3) else None) for i in range(5))), None) == \
        {"batchItemFailures": []}
    assert batches == [["s-0", "s-2", "s-4"]] and [x.record.sequence_number for x in letters] == ["101", "103"]


def test_batch_mode_without_a_destination_processes_the_records_before_the_invalid_one_then_reports_it() -> None:
    batches: list[list[str]] = []

    @kinesis_handler(body=Reading, batch=True)
    def handle(records: list[StreamRecord[Reading]]) -> None:
        batches.append([r.body.sensor for r in records])

    out = handle(event(*(reading(i, "x" if i == 3 else None) for i in range(5))), None)
    assert out == {"batchItemFailures": [{"itemIdentifier": "103"}]} and batches == [["s-0", "s-1", "s-2"]]


def test_records_invalid_is_published_beside_records_dead_lettered_in_emf(tmp_path: Path) -> None:
    out = tmp_path / "emf.jsonl"

    @kinesis_handler(body=Reading, on_failure=lambda letters: None, metrics=Metrics(EmfSink(out), background=False))
    def handle(record: StreamRecord[Reading]) -> None:
        return None

    handle(event(reading(0), b"not json", reading(2)), None)
    (doc,) = [orjson.loads(line) for line in out.read_text().splitlines()]
    values = check_emf(doc)
    assert values["RecordsInvalid"] == values["RecordsDeadLettered"] == 1 and values["RecordsProcessed"] == 2


def test_records_invalid_in_the_prometheus_exposition() -> None:
    sink = PrometheusSink(0)
    try:
        @kinesis_handler(body=Reading, on_failure=lambda letters: None,
                         metrics=Metrics(sink, background=False, level="summary"))
        def handle(record: StreamRecord[Reading]) -> None:
            return None

        handle(event(reading(0), b'{"sensor": 1}'), None)
        with urllib.request.urlopen(f"http://127.0.0.1:{sink.port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    finally:
        sink.close()
    lines = [line for line in text.splitlines() if line.startswith(("streamkit_records_invalid_total",
                                                                     "streamkit_records_dead_lettered_total"))]
    assert len(lines) == 2 and all(line.endswith(" 1.0") for line in lines), lines
