"""`streamkit lambda run` with a kinesis_handler, then `streamkit replay` of its dead letters."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from producer import Producer, ProducerConfig
from streamkit.testing import StreamHandle
from tests.e2e.helpers import run_cli, run_json
from tests.integration.helpers import read_stream

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.streamkit(shards=2)
def test_lambda_run_dead_letters_a_poison_reading_and_replay_republishes_it(
        kinesis_stream: StreamHandle, stream_factory: object, tmp_path: Path) -> None:
    with Producer(kinesis_stream.name, client=kinesis_stream.client) as p:
        for i in range(50):
            p.put_json({"sensor_id": f"s{i % 5}", "seq": i, "poison": i == 17}, f"s{i % 5}")
    out, dead = tmp_path / "out.txt", tmp_path / "dead.jsonl"
    env = {"STREAMKIT_TEST_OUT": str(out), "STREAMKIT_TEST_DEAD": str(dead), "PYTHONPATH": str(ROOT)}
    stats = run_json("lambda", "run", "--stream", kinesis_stream.name, "--handler", "tests.e2e.handlers:lambda_handler",
                     "--batch-size", "10", "--report-batch-item-failures", "--stop-after-idle", "2",
                     "--endpoint-url", kinesis_stream.stack.kinesis_endpoint, env=env)
    assert stats["records_discarded"] == 0 and stats["function_errors"] == 0  # the poison went to the file
    assert len(out.read_text().splitlines()) == 49
    (letter,) = [orjson.loads(line) for line in dead.read_text().splitlines()]
    assert orjson.loads(__import__("base64").b64decode(letter["data"]))["seq"] == 17
    target = stream_factory(shards=1)  # type: ignore[operator]
    result = run_json("replay", "--from", f"file:{dead}", "--stream", target.name,
                      "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    assert result == {"letters": 1, "records": 1, "failed": 0, "stopped": 0, "ended": "end of the source"}
    ((key, data, _seq),) = [r for recs in read_stream(target.client, target.name).values() for r in recs]
    assert key == "s2" and orjson.loads(data)["seq"] == 17


def test_lambda_run_rejects_out_of_range_settings() -> None:
    proc = run_cli("lambda", "run", "--stream", "s", "--handler", "tests.e2e.handlers:lambda_handler",
                   "--parallelization-factor", "11", "--endpoint-url", "http://127.0.0.1:9",
                   env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "parallelization_factor must be 1..10" in proc.stderr


@pytest.mark.streamkit(shards=1)
def test_lambda_run_with_a_checkpoint_resumes_on_the_next_run(kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    env = {"STREAMKIT_TEST_OUT": str(out), "STREAMKIT_TEST_DEAD": str(tmp_path / "dead.jsonl"),
           "PYTHONPATH": str(ROOT)}
    args = ("lambda", "run", "--stream", kinesis_stream.name, "--handler", "tests.e2e.handlers:lambda_handler",
            "--checkpoint", f"sqlite:{tmp_path / 'esm.db'}", "--stop-after-idle", "1",
            "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    for first, count in ((0, 10), (10, 5)):
        with Producer(kinesis_stream.name, client=kinesis_stream.client) as p:
            for i in range(first, first + count):
                p.put_json({"sensor_id": "s1", "seq": i}, "s1")
        stats = run_json(*args, env=env)
        assert stats["records_succeeded"] == 1  # one aggregate per run
    assert [line.split()[1] for line in out.read_text().splitlines()] == [str(i) for i in range(15)]


@pytest.mark.streamkit(shards=2)
def test_lambda_run_metrics_agree_with_its_summary(kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    with Producer(kinesis_stream.name, client=kinesis_stream.client, config=ProducerConfig(aggregation=False)) as p:
        for i in range(30):
            p.put_json({"sensor_id": f"s{i % 3}", "seq": i}, f"s{i % 3}")
    emf = tmp_path / "metrics.jsonl"
    env = {"STREAMKIT_TEST_OUT": str(tmp_path / "out.txt"), "STREAMKIT_TEST_DEAD": str(tmp_path / "dead.jsonl"),
           "PYTHONPATH": str(ROOT)}
    stats = run_json("lambda", "run", "--stream", kinesis_stream.name, "--handler", "tests.e2e.handlers:lambda_handler",
                     "--batch-size", "10", "--stop-after-idle", "2", "--metrics", f"emf:{emf}",
                     "--endpoint-url", kinesis_stream.stack.kinesis_endpoint, env=env)
    totals: dict[str, float] = {}
    aws: dict[str, float] = {}
    for line in emf.read_text().splitlines():
        doc = orjson.loads(line)
        if "EventSourceMappingUUID" in doc:  # AWS's mapping metrics, beside streamkit's own
            for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                aws[m["Name"]] = aws.get(m["Name"], 0) + doc[m["Name"]]
            continue
        if "FunctionName" in doc:  # AWS's IteratorAge
            continue
        assert doc["Operation"] == "Invoke" and doc["StreamName"] == kinesis_stream.name
        for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            v = doc[m["Name"]]
            totals[m["Name"]] = totals.get(m["Name"], 0) + (v if not isinstance(v, list) else sum(v))
    assert totals["RecordsProcessed"] == stats["records_succeeded"] == 30
    assert totals["RecordsDeadLettered"] == stats["records_discarded"] == 0
    assert aws["PolledEventCount"] == aws["InvokedEventCount"] == 30 and aws["DroppedEventCount"] == 0
    assert stats["event_counts"]["PolledEventCount"] == 30  # type: ignore[index]
