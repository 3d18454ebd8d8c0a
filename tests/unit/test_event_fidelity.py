"""Fidelity fixtures: Kinesis events in the shapes public sources give (the Lambda documentation's example, the
SAM CLI's generated event, Powertools' tumbling-window test event; our own values in their shapes, under
tests/events/fidelity/) pass through `kinesis_handler` and the typed views, and the emulator's events have
AWS's documented shape field for field: the same keys, and values of the same types. Runs in ~2 s."""

from __future__ import annotations

import base64
import json
import typing
from pathlib import Path
from typing import Any

import pytest

from streamkit import kinesis_handler
from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.aws_lambda.events import KinesisEvent, KinesisEventRecord, KinesisRecordPayload, parse_event
from streamkit.records import StreamRecord
from streamkit.testing import FakeClock, FakeKinesis

FIXTURES = Path(__file__).resolve().parents[1] / "events" / "fidelity"
ALL = sorted(p.name for p in FIXTURES.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def shape(value: Any) -> Any:
    """Keys and value types, recursively (lists by their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__


@pytest.mark.parametrize("name", ALL)
def test_each_public_shape_passes_through_kinesis_handler(name: str) -> None:
    event = load(name)
    seen: list[StreamRecord] = []
    response = kinesis_handler(body="bytes")(seen.append)(event, None)
    assert response == {"batchItemFailures": []}
    assert [r.sequence_number for r in seen] == [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    assert [r.data for r in seen] == [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
    assert [r.partition_key for r in seen] == [r["kinesis"]["partitionKey"] for r in event["Records"]]
    assert all(isinstance(r.approximate_arrival_timestamp, float) for r in seen)


@pytest.mark.parametrize("name", ALL)
def test_each_public_shape_matches_the_typed_views(name: str) -> None:
    event = load(name)
    assert set(event) <= set(typing.get_type_hints(KinesisEvent))
    for record in event["Records"]:
        assert set(record) == set(typing.get_type_hints(KinesisEventRecord))
        assert set(record["kinesis"]) <= set(typing.get_type_hints(KinesisRecordPayload))
    assert [r.shard_id for r in parse_event(event)] == [r["eventID"].split(":")[0] for r in event["Records"]]


def _emulated(tumbling_window: float = 0) -> list[dict[str, Any]]:
    clock = FakeClock(scale=0.01)
    kinesis = FakeKinesis(clock=clock)
    kinesis.put("readings", b'{"sensor_id": "sensor-7", "temp_c": 21.5}', "sensor-7")
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append(event)
        return {"state": {"7": 1}}

    EventSourceMapping("readings", handler, client=kinesis, clock=clock,
                       config=EsmConfig(starting_position="TRIM_HORIZON",
                                        tumbling_window=tumbling_window)).run(stop_after_idle=1.5)
    return events


def test_the_emulators_event_has_the_documented_shape_field_for_field() -> None:
    (event,) = _emulated()
    assert shape(event) == shape(load("lambda_docs_shape.json"))


def test_the_emulators_window_event_has_powertools_window_shape() -> None:
    first = _emulated(tumbling_window=60)[0]
    expected = shape(load("powertools_window_shape.json"))
    assert shape(first) | {"state": expected["state"]} == expected
