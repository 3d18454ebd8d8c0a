"""streamkit.metrics: the recorder's aggregation and levels, EMF documents checked against the EMF
specification, and the Lambda wrapper's figures agreeing with what happened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamkit.aws_lambda import kinesis_handler
from streamkit.errors import ConfigurationError
from streamkit.metrics import Metrics, NullSink, Point, sink_from_spec
from streamkit.metrics.emf import EmfSink, emf_documents
from streamkit.metrics.prometheus import prometheus_name
from streamkit.records import StreamRecord

EVENTS = Path(__file__).resolve().parents[1] / "events"
# CloudWatch's units (MetricDatum.Unit), as the EMF specification requires.
UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
         "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
         "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
         "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def check_emf(doc: dict[str, Any]) -> dict[str, Any]:
    """Validate one document against the EMF specification; returns {metric name: value}."""
    aws = doc["_aws"]
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_600_000_000_000
    directives = aws["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    values = {}
    for d in directives:
        assert isinstance(d["Namespace"], str) and 1 <= len(d["Namespace"]) <= 1024
        assert isinstance(d["Dimensions"], list)
        for dim_set in d["Dimensions"]:
            assert isinstance(dim_set, list) and len(dim_set) <= 30
            for name in dim_set:  # every dimension named is a top-level string member
                assert isinstance(doc[name], str), name
        assert 1 <= len(d["Metrics"]) <= 100
        for m in d["Metrics"]:
            assert set(m) <= {"Name", "Unit", "StorageResolution"} and 1 <= len(m["Name"]) <= 1024
            assert m.get("Unit", "None") in UNITS
            v = doc[m["Name"]]  # every metric named has a value: a number, or an array of at most 100
            if isinstance(v, list):
                assert 1 <= len(v) <= 100 and all(isinstance(x, int | float) for x in v)
            else:
                assert isinstance(v, int | float)
            values[m["Name"]] = v
    return values


def test_the_wrapper_publishes_what_happened_as_valid_emf(tmp_path: Path) -> None:
    out = tmp_path / "emf.jsonl"
    dead: list[Any] = []

    @kinesis_handler(body="json", max_attempts=2, backoff_base=0.0, backoff_max=0.0, on_failure=dead.extend,
                     metrics=Metrics(EmfSink(out), background=False))
    def handle(record: StreamRecord) -> None:
        if record.body["sensor_id"] == "s-1":
            raise ValueError("poison")

    event = json.loads((EVENTS / "kinesis_plain.json").read_text())  # 3 records; s-1 is the poison one
    assert handle(event, None) == {"batchItemFailures": []}
    (doc,) = [orjson.loads(line) for line in out.read_text().splitlines()]
    values = check_emf(doc)
    assert values["RecordsProcessed"] == 2 and values["RecordsDeadLettered"] == 1
    assert values["RecordsRetried"] == 1 and values["RecordsFailed"] == 0
    assert values["IteratorAgeMilliseconds"] > 0
    assert doc["StreamName"] == "sensors" and doc["Operation"] == "ProcessRecords"
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["StreamName", "Operation"]]  # summary: no ShardId
    assert len(dead) == 1


def test_a_reported_failure_counts_failed_and_leaves_the_rest_unprocessed(tmp_path: Path) -> None:
    out = tmp_path / "emf.jsonl"

    @kinesis_handler(body="json", max_attempts=1, metrics=Metrics(EmfSink(out), background=False, level="detailed"))
    def handle(record: StreamRecord) -> None:
        if record.body["sensor_id"] == "s-1":
            raise ValueError("poison")

    event = json.loads((EVENTS / "kinesis_plain.json").read_text())
    assert len(handle(event, None)["batchItemFailures"]) == 1
    (doc,) = [orjson.loads(line) for line in out.read_text().splitlines()]
    values = check_emf(doc)
    assert values["RecordsProcessed"] == 1 and values["RecordsFailed"] == 1 and values["RecordsDeadLettered"] == 0
    assert doc["ShardId"] == "shardId-000000000000"  # detailed: per shard
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["StreamName", "Operation", "ShardId"]]


def test_the_recorder_sums_counts_keeps_the_last_gauge_and_timing_samples() -> None:
    published: list[tuple[str, list[Point]]] = []

    class Sink:
        interval = 60.0

        def publish(self, namespace: str, points: Any, timestamp_ms: int) -> None:
            published.append((namespace, list(points)))

        def close(self) -> None:
            pass

    m = Metrics(Sink(), namespace="app", level="summary", background=False)
    s = m.scope("sensors", "PutRecords")
    for _ in range(3):
        s.count("UserRecordsPut", 10)
    s.gauge("MillisBehindLatest", 5, shard="shardId-1")
    s.gauge("MillisBehindLatest", 7, shard="shardId-1")
    for v in range(150):
        s.timing("BufferingTime", float(v))
    s.count("ErrorsByCode", 1, ErrorCode="InternalFailure")
    m.flush()
    ((ns, points),) = published
    by = {p.name: p for p in points}
    assert ns == "app" and by["UserRecordsPut"].values == [30] and by["MillisBehindLatest"].values == [7]
    assert len(by["BufferingTime"].values) == 100 and by["BufferingTime"].count == 150
    assert by["BufferingTime"].total == sum(range(150))  # every sample, also those not kept
    assert max(by["BufferingTime"].values) >= 100  # a sample of the whole interval, not its first 100
    assert dict(by["ErrorsByCode"].dimensions)["ErrorCode"] == "InternalFailure"
    assert "ShardId" not in dict(by["MillisBehindLatest"].dimensions)  # summary level
    m.flush()
    assert len(published) == 1  # nothing new: nothing published


def test_none_and_the_null_sink_record_nothing() -> None:
    assert not Metrics("none").enabled and not Metrics(NullSink()).enabled
    assert not Metrics("emf", level="none", background=False).enabled


def test_more_than_100_metrics_split_into_documents_and_each_validates() -> None:
    points = [Point(name=f"M{i}", kind="counter", unit="Count", dimensions=(("StreamName", "s"),), values=[i])
              for i in range(150)]
    docs = emf_documents("streamkit", points, 1_700_000_000_000)
    assert len(docs) == 2 and sum(len(check_emf(d)) for d in docs) == 150


@pytest.mark.parametrize(("spec", "message"), [("emfx", "use none, emf"), ("prometheus:x", "needs a port"),
                                               ("prometheus:99999", "0..65535"), ("cloudwatch:x", "use none")])
def test_a_bad_spec_is_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        sink_from_spec(spec)


def test_prometheus_names_follow_the_convention() -> None:
    assert prometheus_name("RecordsProcessed", "counter") == "streamkit_records_processed_total"
    assert prometheus_name("MillisBehindLatest", "gauge") == "streamkit_millis_behind_latest"
    assert prometheus_name("IteratorAgeMilliseconds", "gauge") == "streamkit_iterator_age_milliseconds"


def emf_values(path: Path) -> dict[tuple[str, str], float]:
    """{(metric, ShardId or ""): value} summed over the documents in `path`, each validated."""
    out: dict[tuple[str, str], float] = {}
    for line in path.read_text().splitlines():
        doc = orjson.loads(line)
        for name, v in check_emf(doc).items():
            key = (name, doc.get("ShardId", ""))
            out[key] = out.get(key, 0) + (sum(v) if isinstance(v, list) else v)
    return out


def test_the_producer_publishes_the_kpl_names(tmp_path: Path) -> None:
    from producer import Producer, ProducerConfig
    from streamkit.testing import FakeKinesis

    out = tmp_path / "emf.jsonl"
    kinesis = FakeKinesis(shards=2)
    with Producer("s", client=kinesis, config=ProducerConfig(rate_limit=0, record_max_buffered_time=5.0),
                  metrics=Metrics(EmfSink(out), background=False)) as p:
        for i in range(100):
            p.send(b"reading", f"k{i}")
        p.flush()
    values = emf_values(out)
    assert values[("UserRecordsPut", "")] == 100
    assert values[("KinesisRecordsPut", "")] == 2  # one aggregate per shard
    assert ("BufferingTime", "") in values and ("RetriesPerRecord", "") in values


def test_the_consumer_publishes_the_kcl_names_per_shard_at_detailed(tmp_path: Path) -> None:
    from streamkit.checkpoints import MemoryCheckpointStore
    from streamkit.consumer import Consumer, ConsumerConfig
    from streamkit.testing import FakeClock, FakeKinesis

    out = tmp_path / "emf.jsonl"
    clock = FakeClock()
    kinesis = FakeKinesis(shards=2, clock=clock)
    for i in range(40):
        kinesis.put("s", b"r%d" % i, f"k{i}")
    metrics = Metrics(EmfSink(out), level="detailed", background=False)
    c = Consumer("s", lambda r: None, application_name="app", checkpoint_store=MemoryCheckpointStore(),
                 client=kinesis, clock=clock, config=ConsumerConfig(metrics=metrics))
    c.run(install_signal_handlers=False, stop_after_idle=3)
    values = emf_values(out)
    per_shard = {shard: v for (name, shard), v in values.items() if name == "RecordsProcessed"}
    assert sum(per_shard.values()) == 40 and len(per_shard) == 2 and "" not in per_shard
    assert values[("LeasesTaken", "")] == 2
    assert any(name == "MillisBehindLatest" for name, _s in values)


def test_sinks_count_every_timing_sample_beyond_the_100_kept() -> None:
    import prometheus_client  # the prometheus extra, which make test installs

    from streamkit.metrics.cloudwatch import metric_data
    from streamkit.metrics.prometheus import PrometheusSink

    sink = PrometheusSink(0)
    try:
        m = Metrics(sink, namespace="app", level="summary", background=False)
        s = m.scope("sensors", "PutRecords")
        for _flush in range(2):
            for v in range(1000):
                s.timing("BufferingTime", float(v))
            s.count("UserRecordsPut", 1000)
            m.flush()
        text = prometheus_client.generate_latest(sink.registry).decode()
    finally:
        sink.close()
    labels = '{operation="PutRecords",stream_name="sensors"}'
    assert f"streamkit_buffering_time_count{labels} 2000.0" in text
    assert f"streamkit_buffering_time_sum{labels} {2 * sum(range(1000)):.1f}" in text
    assert f"streamkit_user_records_put_total{labels} 2000.0" in text
    point = Point(name="BufferingTime", kind="timing", unit="Milliseconds", dimensions=(), values=[1.0] * 100,
                  count=1000, total=1000.0)
    (datum,) = metric_data([point], 1_700_000_000_000)
    assert sum(datum["Counts"]) == 1000  # CloudWatch's SampleCount: every sample


def test_leases_held_counts_the_leases_taken_in_the_same_cycle(tmp_path: Path) -> None:
    from streamkit.checkpoints import MemoryCheckpointStore
    from streamkit.consumer import Consumer, ConsumerConfig
    from streamkit.testing import FakeClock, FakeKinesis

    held: list[float] = []

    class Recording(Metrics):
        def record(self, kind: Any, name: str, value: float, unit: str, dims: Any) -> None:
            if name == "LeasesHeld":
                held.append(value)
            super().record(kind, name, value, unit, dims)

    clock = FakeClock()
    kinesis = FakeKinesis(shards=2, clock=clock)
    kinesis.put("s", b"r", "k")
    c = Consumer("s", lambda r: None, application_name="app", checkpoint_store=MemoryCheckpointStore(),
                 client=kinesis, clock=clock,
                 config=ConsumerConfig(metrics=Recording(EmfSink(tmp_path / "emf.jsonl"), level="detailed",
                                                          background=False)))
    c.run(install_signal_handlers=False, stop_after_idle=3)
    assert held and held[0] == 2  # the first cycle takes both shards and says so (it said 0, a cycle late)
