"""examples/sensor-pipeline/ run from its template against kinesalite and moto's SQS: the processing
function's windows, filter and on-failure queue, then the dispatcher's workers; then the same application
as CloudFormation JSON (SAM's own translation of the template, CDK-style asset paths) gives the same run
(~40 s each)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamkit.local.stack import LocalStack
from tests.e2e.helpers import run_cli
from tests.unit.test_template import sam_transform

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sensor-pipeline"
TEMPLATE = EXAMPLE / "template.yaml"


def read_all(client: Any, stream: str) -> list[dict[str, Any]]:
    out = []
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        it = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for _ in range(20):  # bounded: a few reads reach the end of a small shard
            page = client.get_records(ShardIterator=it, Limit=1000)
            out += [orjson.loads(r["Data"]) for r in page["Records"]]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            it = page["NextShardIterator"]
    return out


def run_pipeline(template: Path, stack: LocalStack, kinesis_client: Any, sqs_client: Any, sqs_endpoint: str,
                 tmp_path: Path) -> dict[str, Any]:
    """Run the application from `template` on new streams, write 60 good readings of 3 sensors, 10 heartbeats
    and one bad reading; what came out: the run's summary, the aggregates, the queue's letters, the alerts."""
    readings, aggregates = f"readings-{uuid.uuid4().hex[:6]}", f"aggregates-{uuid.uuid4().hex[:6]}"
    overrides = ("--parameter-overrides", f"ReadingsStreamName={readings}", f"AggregatesStreamName={aggregates}",
                 "WindowSeconds=5")
    alerts = tmp_path / f"alerts-{template.stem}.txt"
    env = {"AWS_ENDPOINT_URL_SQS": sqs_endpoint, "AWS_ENDPOINT_URL_KINESIS": stack.kinesis_endpoint,
           "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1",
           "SENSOR_PIPELINE_OUT": str(alerts), "PYTHONPATH": str(EXAMPLE / "functions")}
    # A first run creates the template's streams and its queue (nothing to read yet).
    first = run_cli("lambda", "run", "--template", str(template), *overrides, "--stop-after-idle", "1", "--json",
                    env=env)
    assert first.returncode == 0, first.stderr
    entries = []
    for i in range(60):
        sensor, temp = f"s-{i % 3}", 20.0 + (i % 3) * 6 + (i % 5)
        entries.append({"Data": orjson.dumps({"kind": "reading", "sensor_id": sensor, "temp_c": temp}),
                        "PartitionKey": sensor})
    entries += [{"Data": orjson.dumps({"kind": "heartbeat", "sensor_id": f"s-{i}"}), "PartitionKey": f"s-{i}"}
                for i in range(10)]  # the template's filter drops these
    entries.append({"Data": orjson.dumps({"kind": "reading", "sensor_id": "s-0", "temp_c": "warm"}),
                    "PartitionKey": "s-0"})  # fails, is retried once, then goes to the on-failure queue
    kinesis_client.put_records(StreamName=readings, Records=entries)
    # One command: every function with a Kinesis event runs on its mapping; AlertWorker (no event) is served
    # on a local Invoke endpoint for the dispatcher's Lambda target. Idle long enough for a window to close.
    run = run_cli("lambda", "run", "--template", str(template), *overrides, "--stop-after-idle", "8", "--json",
                  env=env, timeout=240)
    assert run.returncode == 0, run.stderr
    queue = sqs_client.get_queue_url(QueueName="ProcessingFailures")["QueueUrl"]
    messages = sqs_client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    for m in messages:  # taken, so the next run's queue holds only its own
        sqs_client.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return {"mappings": orjson.loads(run.stdout)["mappings"], "aggregates": read_all(kinesis_client, aggregates),
            "letters": [orjson.loads(m["Body"]) for m in messages], "alerts": alerts.read_text().splitlines()}


def outcome(run: dict[str, Any]) -> dict[str, Any]:
    """What a run must give whatever the window boundaries: per-sensor totals over the aggregates, the
    mappings' counts, the letters' batch info, one alert per aggregate."""
    per_sensor: dict[str, list[float]] = {}
    for a in run["aggregates"]:
        count, total, top = per_sensor.get(a["sensor_id"], [0, 0.0, a["max_temp_c"]])
        per_sensor[a["sensor_id"]] = [count + a["count"], total + a["count"] * a["mean_temp_c"],
                                      max(top, a["max_temp_c"])]
    # The summary names a SAM event's mapping FUNCTION/EVENT, a CloudFormation one by its logical ID, which
    # SAM's translator makes FUNCTIONEVENT.
    mappings = {name.replace("/", ""): stats for name, stats in run["mappings"].items()}
    assert sorted(mappings) == ["DispatchAggregates", "ProcessReadingsReadings"]
    process, dispatch = mappings["ProcessReadingsReadings"], mappings["DispatchAggregates"]
    return {"per_sensor": {s: (int(c), round(t / c, 2), top) for s, (c, t, top) in per_sensor.items()},
            "filtered_out": process["records_filtered_out"], "discarded": process["records_discarded"],
            "dispatched": dispatch["records_succeeded"] == len(run["aggregates"]) == len(run["alerts"]),
            "letters": [(x["requestContext"]["condition"], x["KinesisBatchInfo"]["batchSize"]) for x in run["letters"]]}


def test_the_sensor_pipeline_runs_as_its_template_says_and_the_same_as_cloudformation_json(
        local_stack: LocalStack, kinesis_client: Any, sqs_client: Any, sqs_endpoint: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_pipeline(TEMPLATE, local_stack, kinesis_client, sqs_client, sqs_endpoint, tmp_path)
    expected: dict[str, list[float]] = {}
    for i in range(60):
        expected.setdefault(f"s-{i % 3}", []).append(20.0 + (i % 3) * 6 + (i % 5))
    assert run["mappings"]["ProcessReadings/Readings"]["records_filtered_out"] == 10
    got = run["aggregates"]
    assert sum(a["count"] for a in got) == 60  # every good reading in exactly one window's aggregate
    assert {a["sensor_id"] for a in got} == set(expected)
    sam_run = outcome(run)
    assert sam_run["per_sensor"] == {s: (len(t), round(sum(t) / len(t), 2), max(t)) for s, t in expected.items()}
    assert sam_run["letters"] == [("RetryAttemptsExhausted", 1)]
    # The dispatcher function read every aggregate and invoked AlertWorker with it (the alerts file).
    assert sam_run["dispatched"] and any(line.endswith(" HOT") for line in run["alerts"])

    # The same application as CloudFormation JSON: SAM's own translation (what `sam deploy` sends to
    # CloudFormation), its code found through CDK's asset metadata. The run gives the same outcome.
    translated = sam_transform(TEMPLATE, monkeypatch)
    assert "Transform" not in translated
    assert not [r for r in translated["Resources"].values() if r["Type"].startswith("AWS::Serverless::")]
    for res in translated["Resources"].values():
        if res["Type"] == "AWS::Lambda::Function":
            res["Metadata"] = {"aws:asset:path": str(EXAMPLE / "functions")}
    cfn = tmp_path / "sensor-pipeline.template.json"
    cfn.write_bytes(orjson.dumps(translated))
    assert outcome(run_pipeline(cfn, local_stack, kinesis_client, sqs_client, sqs_endpoint, tmp_path)) == sam_run
