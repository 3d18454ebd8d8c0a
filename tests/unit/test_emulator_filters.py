"""FilterCriteria in the event source mapping emulator, as AWS documents them for Kinesis, on FakeKinesis with
a FakeClock (no server). Runs in ~3 s."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from streamkit.aggregation import UserRecord, encode
from streamkit.aws_lambda.emulator import EsmConfig, EsmStats, EventSourceMapping
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.errors import ConfigurationError
from streamkit.testing import FakeClock, FakeKinesis

HOT = '{"data": {"temp_c": [{"numeric": [">", 30]}]}}'


def readings(kinesis: FakeKinesis, temps: list[float]) -> list[str]:
    return [kinesis.put("s", json.dumps({"sensor": f"s{i % 3}", "temp_c": t}).encode(), f"s{i % 3}")
            for i, t in enumerate(temps)]


def run(kinesis: FakeKinesis, clock: FakeClock, **config: Any) -> tuple[EsmStats, list[bytes], EventSourceMapping]:
    delivered: list[bytes] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        delivered.extend(base64.b64decode(r["kinesis"]["data"]) for r in event["Records"])

    esm = EventSourceMapping("s", handler, client=kinesis, clock=clock,
                             config=EsmConfig(starting_position="TRIM_HORIZON", **config))
    return esm.run(stop_after_idle=1.5), delivered, esm


def fakes() -> tuple[FakeKinesis, FakeClock]:
    clock = FakeClock(scale=0.01)
    return FakeKinesis(clock=clock), clock


def test_only_matching_records_are_delivered_and_the_position_passes_the_rest() -> None:
    kinesis, clock = fakes()
    temps = [20.5, 31.0, 45, 30, 12, 33.3]
    sequence_numbers = readings(kinesis, temps)
    store = MemoryCheckpointStore()
    delivered: list[bytes] = []
    esm = EventSourceMapping("s", lambda e, c: delivered.extend(base64.b64decode(r["kinesis"]["data"])
                                                                 for r in e["Records"]),
                             client=kinesis, clock=clock, checkpoint_store=store,
                             config=EsmConfig(starting_position="TRIM_HORIZON", filter_criteria=(HOT,)))
    stats = esm.run(stop_after_idle=1.5)
    assert [json.loads(d)["temp_c"] for d in delivered] == [t for t in temps if t > 30]
    assert stats.records_polled == 6 and stats.records_filtered_out == 3 and stats.records_delivered == 3
    # The stored position is the stream's last record (a filtered-out one): a restart reads nothing again.
    lease = store.get_lease(esm.namespace, "shardId-000000000000")
    assert lease is not None and lease.checkpoint.sequence_number == sequence_numbers[-1]


def test_patterns_are_ored() -> None:
    kinesis, clock = fakes()
    readings(kinesis, [10, 40, 20])
    stats, delivered, _ = run(kinesis, clock, filter_criteria=(HOT, '{"data": {"temp_c": [10]}}'))
    assert [json.loads(d)["temp_c"] for d in delivered] == [10, 40] and stats.records_filtered_out == 1


def test_data_that_is_not_json_is_dropped_by_a_data_pattern() -> None:
    kinesis, clock = fakes()
    kinesis.put("s", b"not json", "k")
    kinesis.put("s", b'{"temp_c": 50}', "k")
    stats, delivered, _ = run(kinesis, clock, filter_criteria=(HOT,))
    assert delivered == [b'{"temp_c": 50}'] and stats.records_filtered_out == 1


def test_polled_kpl_aggregates_are_filtered_out_said_at_start_and_once_with_the_count(
        caplog: pytest.LogCaptureFixture) -> None:
    # AWS: filtering aggregated records is supported only with an enhanced fan-out source; polled, an
    # aggregate's data is not JSON, so a data pattern never matches it.
    kinesis, clock = fakes()
    for _ in range(3):
        kinesis.put("s", encode([UserRecord(b'{"temp_c": 99}', "k"), UserRecord(b'{"temp_c": 1}', "k")]), "k")
    kinesis.put("s", b'{"temp_c": 31}', "k")
    for _ in range(2):  # a later read: not said again
        kinesis.put("s", encode([UserRecord(b'{"temp_c": 98}', "k")]), "k")
    with caplog.at_level(logging.WARNING, logger="streamkit.esm"):
        stats, delivered, _ = run(kinesis, clock, filter_criteria=(HOT,), batch_size=2)
    assert delivered == [b'{"temp_c": 31}'] and stats.records_filtered_out == 5
    said = [r.getMessage() for r in caplog.records if "aggregated" in r.getMessage()]
    assert len(said) == 2
    assert said[0].startswith("a data filter on a polled source") and "enhanced fan-out" in said[0]
    # batch_size 2: the first GetRecords asks for 2 records, both aggregates; 3 later aggregates are not said
    assert "s holds KPL aggregated records: 2 of shardId-000000000000's first read" in said[1]


def test_a_data_filter_on_a_polled_source_says_so_at_start_before_any_record_is_read(
        caplog: pytest.LogCaptureFixture) -> None:
    kinesis, clock = fakes()
    kinesis.create_stream("s", 1)
    reads_when_said: list[int] = []

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "aggregated" in record.getMessage():
                reads_when_said.append(kinesis.op_counts.get("GetRecords", 0))

    spy = Spy()
    logging.getLogger("streamkit.esm").addHandler(spy)
    try:
        stats, delivered, _ = run(kinesis, clock, filter_criteria=(HOT,))
    finally:
        logging.getLogger("streamkit.esm").removeHandler(spy)
    assert reads_when_said == [0] and delivered == [] and stats.records_polled == 0


def test_without_a_data_filter_nothing_is_said_of_aggregates(caplog: pytest.LogCaptureFixture) -> None:
    kinesis, clock = fakes()
    kinesis.put("s", encode([UserRecord(b'{"temp_c": 99}', "k")]), "k")
    with caplog.at_level(logging.WARNING, logger="streamkit.esm"):
        _stats, delivered, _ = run(kinesis, clock)
    assert len(delivered) == 1 and not [r for r in caplog.records if "aggregated" in r.getMessage()]


def test_without_filters_every_record_is_delivered() -> None:
    kinesis, clock = fakes()
    readings(kinesis, [1, 2])
    stats, delivered, _ = run(kinesis, clock)
    assert len(delivered) == 2 and stats.records_filtered_out == 0 and stats.records_polled == 2


@pytest.mark.parametrize(("patterns", "said"), [
    ((HOT,) * 6, "at most 5 filter patterns"),
    (('{"partitionKey": ["1"]}',), 'filters on the "data" key only'),
    (('{"data": {"t": [{"numeric": [">"]}]}}',), "invalid filter pattern"),
    (("{not json",), "not JSON"),
])
def test_invalid_criteria_are_refused_at_construction(patterns: tuple[str, ...], said: str) -> None:
    with pytest.raises(ConfigurationError, match=said):
        EsmConfig(filter_criteria=patterns)


def test_aws_mapping_metrics_appear_in_emf_and_add_up(tmp_path: Path) -> None:
    # A run with a filter, a poison record and a destination: AWS's EventCount metrics under
    # EventSourceMappingUUID, and IteratorAge under FunctionName, as the --json summary counts them.
    kinesis, clock = fakes()
    temps = [float(t) for t in range(20, 40)]  # 9 readings above 30, one of them poison
    for i, t in enumerate(temps):
        kinesis.put("s", json.dumps({"temp_c": t, "poison": t == 35}).encode(), f"k{i % 3}")

    def handler(event: dict[str, Any], context: Any) -> None:
        for r in event["Records"]:
            if json.loads(base64.b64decode(r["kinesis"]["data"]))["poison"]:
                raise ValueError("poison")

    emf, dead = tmp_path / "metrics.jsonl", tmp_path / "dead.jsonl"
    esm = EventSourceMapping("s", handler, client=kinesis, clock=clock, metrics=f"emf:{emf}",
                             config=EsmConfig(starting_position="TRIM_HORIZON", filter_criteria=(HOT,), batch_size=1,
                                              max_retry_attempts=1, retry_delay=0.01, on_failure=f"file:{dead}"))
    stats = esm.run(stop_after_idle=30)
    totals: dict[str, float] = {}
    dims: dict[str, set[str]] = {}
    for line in emf.read_text().splitlines():
        doc = json.loads(line)
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        for m in directive["Metrics"]:
            totals[m["Name"]] = totals.get(m["Name"], 0) + doc[m["Name"]] * (m["Name"] != "IteratorAge")
            dims.setdefault(m["Name"], set()).update(directive["Dimensions"][0])
    counts = stats.to_json()["event_counts"]
    assert {k: int(v) for k, v in totals.items() if k in counts} == counts
    assert counts["PolledEventCount"] == 20 and counts["FilteredOutEventCount"] == 11
    assert counts["InvokedEventCount"] == 8 + 2 and counts["FailedInvokeEventCount"] == 2  # the poison, twice
    assert counts["DroppedEventCount"] == counts["OnFailureDestinationDeliveredEventCount"] == 1
    # Every polled record was filtered out or invoked at least once.
    assert counts["PolledEventCount"] == counts["FilteredOutEventCount"] + counts["InvokedEventCount"] - 1
    assert dims["PolledEventCount"] == {"EventSourceMappingUUID"} and dims["IteratorAge"] == {"FunctionName"}


def test_an_enhanced_fan_out_source_filters_kpl_aggregates_by_their_user_records(
        caplog: pytest.LogCaptureFixture) -> None:
    # AWS: "Lambda can only apply filter criteria to aggregated records when you use Kinesis enhanced fan-out".
    kinesis, clock = fakes()
    hot_and_cold = encode([UserRecord(b'{"temp_c": 99}', "k"), UserRecord(b'{"temp_c": 1}', "k")])
    cold = encode([UserRecord(b'{"temp_c": 2}', "k"), UserRecord(b'{"temp_c": 3}', "k")])
    kinesis.put("s", hot_and_cold, "k")
    kinesis.put("s", cold, "k")
    kinesis.put("s", b'{"temp_c": 31}', "k")
    consumer = kinesis.register_stream_consumer(kinesis.describe_stream_summary("s").arn, "esm")
    delivered: list[bytes] = []
    esm = EventSourceMapping(consumer, lambda e, c: delivered.extend(base64.b64decode(r["kinesis"]["data"])
                                                                      for r in e["Records"]),
                             client=kinesis, clock=clock,
                             config=EsmConfig(starting_position="TRIM_HORIZON", filter_criteria=(HOT,)))
    with caplog.at_level(logging.WARNING, logger="streamkit.esm"):
        stats = esm.run(stop_after_idle=1.5)
    assert delivered == [hot_and_cold, b'{"temp_c": 31}'] and stats.records_filtered_out == 1
    assert esm.consumer_arn == consumer and not [r for r in caplog.records if "aggregated" in r.getMessage()]
    assert kinesis.op_counts.get("SubscribeToShard", 0) >= 1  # pushed, not polled
