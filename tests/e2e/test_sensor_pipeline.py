"""examples/sensor-pipeline/ run from its template against kinesalite and moto's SQS: the processing
function's windows, filter and on-failure queue, then the dispatcher's workers (~40 s)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamkit.local.stack import LocalStack
from tests.e2e.helpers import run_cli

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


def test_the_sensor_pipeline_runs_as_its_template_says(local_stack: LocalStack, kinesis_client: Any, sqs_client: Any,
                                                       sqs_endpoint: str, tmp_path: Path) -> None:
    readings, aggregates = f"readings-{uuid.uuid4().hex[:6]}", f"aggregates-{uuid.uuid4().hex[:6]}"
    overrides = ("--parameter-overrides", f"ReadingsStreamName={readings}", f"AggregatesStreamName={aggregates}",
                 "WindowSeconds=5")
    env = {"AWS_ENDPOINT_URL_SQS": sqs_endpoint, "AWS_ENDPOINT_URL_KINESIS": local_stack.kinesis_endpoint,
           "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1",
           "SENSOR_PIPELINE_OUT": str(tmp_path / "alerts.txt"), "PYTHONPATH": str(EXAMPLE / "functions")}
    # A first run creates the template's streams and its queue (nothing to read yet).
    first = run_cli("lambda", "run", "--template", str(TEMPLATE), *overrides, "--stop-after-idle", "1", "--json",
                    env=env)
    assert first.returncode == 0, first.stderr
    expected: dict[str, list[float]] = {}
    entries = []
    for i in range(60):
        sensor, temp = f"s-{i % 3}", 20.0 + (i % 3) * 6 + (i % 5)
        expected.setdefault(sensor, []).append(temp)
        entries.append({"Data": orjson.dumps({"kind": "reading", "sensor_id": sensor, "temp_c": temp}),
                        "PartitionKey": sensor})
    entries += [{"Data": orjson.dumps({"kind": "heartbeat", "sensor_id": f"s-{i}"}), "PartitionKey": f"s-{i}"}
                for i in range(10)]  # the template's filter drops these
    entries.append({"Data": orjson.dumps({"kind": "reading", "sensor_id": "s-0", "temp_c": "warm"}),
                    "PartitionKey": "s-0"})  # fails, is retried once, then goes to the on-failure queue
    kinesis_client.put_records(StreamName=readings, Records=entries)
    # One command: every function with a Kinesis event runs on its mapping; AlertWorker (no event) is served
    # on a local Invoke endpoint for the dispatcher's Lambda target. Idle long enough for a window to close.
    run = run_cli("lambda", "run", "--template", str(TEMPLATE), *overrides, "--stop-after-idle", "8", "--json",
                  env=env, timeout=240)
    assert run.returncode == 0, run.stderr
    mappings = orjson.loads(run.stdout)["mappings"]
    assert mappings["ProcessReadings/Readings"]["records_filtered_out"] == 10
    got = read_all(kinesis_client, aggregates)
    assert sum(a["count"] for a in got) == 60  # every good reading in exactly one window's aggregate
    assert {a["sensor_id"] for a in got} == set(expected)
    assert max(a["max_temp_c"] for a in got if a["sensor_id"] == "s-2") == max(expected["s-2"])
    queue = sqs_client.get_queue_url(QueueName="ProcessingFailures")["QueueUrl"]
    letters = sqs_client.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert len(letters) == 1 and orjson.loads(letters[0]["Body"])["KinesisBatchInfo"]["batchSize"] == 1
    # The dispatcher function read every aggregate and invoked AlertWorker with it (the alerts file).
    assert mappings["Dispatch/Aggregates"]["records_succeeded"] == len(got)
    alerts = (tmp_path / "alerts.txt").read_text().splitlines()
    assert len(alerts) == len(got) and any(line.endswith(" HOT") for line in alerts)
