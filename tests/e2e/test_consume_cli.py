"""`streamkit consume`: handler import, JSON summary, dead letters, graceful SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer import Producer, ProducerConfig
from streamkit.checkpoints import SqliteCheckpointStore
from streamkit.testing import StreamHandle
from tests.e2e.helpers import run_cli

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def produce(stream: StreamHandle, n: int) -> None:
    with Producer(stream.name, client=stream.client, config=ProducerConfig(aggregation_max_size=4096)) as p:
        for i in range(n):
            p.put(b"%d" % i, f"k{i % 10}")


@pytest.mark.streamkit(shards=2)
def test_consume_runs_the_handler_on_every_record_and_prints_a_summary(kinesis_stream: StreamHandle,
                                                                        tmp_path: Path) -> None:
    produce(kinesis_stream, 2000)
    out = tmp_path / "out.txt"
    proc = run_cli("consume", "--stream", kinesis_stream.name, "--handler", "tests.e2e.handlers:collect",
                   "--checkpoint", f"sqlite:{tmp_path / 'cp.db'}", "--stop-after-idle", "1.5", "--json",
                   "--from", "trim-horizon", "--endpoint-url", kinesis_stream.stack.kinesis_endpoint,
                   env={"STREAMKIT_TEST_OUT": str(out), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)
    assert summary["records"] == 2000 and len(summary["shards"]) == 2
    assert sorted(int(line.split()[-1]) for line in out.read_text().splitlines()) == list(range(2000))
    # A second run with the same checkpoint store finds nothing new.
    again = run_cli("consume", "--stream", kinesis_stream.name, "--handler", "tests.e2e.handlers:collect",
                    "--checkpoint", f"sqlite:{tmp_path / 'cp.db'}", "--stop-after-idle", "1", "--json",
                    "--endpoint-url", kinesis_stream.stack.kinesis_endpoint,
                    env={"STREAMKIT_TEST_OUT": str(out), "PYTHONPATH": str(ROOT)})
    assert orjson.loads(again.stdout)["records"] == 0


@pytest.mark.streamkit(shards=1)
def test_consume_sends_poison_records_to_a_file(kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    produce(kinesis_stream, 30)
    dead = tmp_path / "dead.jsonl"
    proc = run_cli("consume", "--stream", kinesis_stream.name, "--handler", "tests.e2e.handlers:poison",
                   "--checkpoint", f"sqlite:{tmp_path / 'cp.db'}", "--stop-after-idle", "1.5", "--json",
                   "--on-failure", f"file:{dead}", "--max-attempts", "2",
                   "--endpoint-url", kinesis_stream.stack.kinesis_endpoint,
                   env={"STREAMKIT_TEST_OUT": str(tmp_path / "out.txt"), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["dead_lettered"] == 3  # 7, 17, 27
    assert len(dead.read_text().splitlines()) == 3


@pytest.mark.streamkit(shards=2)
def test_sigterm_checkpoints_and_releases_leases(kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    produce(kinesis_stream, 3000)
    out = tmp_path / "out.txt"
    db = tmp_path / "cp.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli.main", "consume", "--stream", kinesis_stream.name, "--handler",
         "tests.e2e.handlers:slow_collect", "--checkpoint", f"sqlite:{db}", "--app", "graceful", "--json",
         "--endpoint-url", kinesis_stream.stack.kinesis_endpoint],
        env={**os.environ, "STREAMKIT_TEST_OUT": str(out), "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 50):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    processed = len(out.read_text().splitlines())
    assert 0 < processed < 3000
    leases = SqliteCheckpointStore(db).list_leases(f"graceful/{kinesis_stream.name}")
    assert len(leases) == 2 and all(lease.owner is None for lease in leases)
    assert all(not lease.checkpoint.is_sentinel for lease in leases if lease.checkpoint.sequence_number != "TRIM_HORIZON")
    assert orjson.loads(stdout)["records"] == processed


def test_a_bad_handler_is_a_usage_error() -> None:
    proc = run_cli("consume", "--stream", "s", "--handler", "no_such_module:f", "--endpoint-url", "http://127.0.0.1:9")
    assert proc.returncode == 2 and "cannot import" in proc.stderr


def test_consume_reads_two_streams_into_a_kcl_lease_table(stream_factory: Any, dynamodb_client: Any,
                                                           tmp_path: Path) -> None:
    a, b = stream_factory(shards=1), stream_factory(shards=2)
    produce(a, 300)
    produce(b, 500)
    table = f"kcl-cli-{uuid.uuid4().hex[:8]}"
    env = {"STREAMKIT_TEST_OUT": str(tmp_path / "out.txt"), "PYTHONPATH": str(ROOT),
           "AWS_ENDPOINT_URL_DYNAMODB": a.stack.dynamodb_endpoint}
    args = ["consume", "--stream", a.name, "--stream", b.name, "--handler", "tests.e2e.handlers:collect",
            "--checkpoint", f"kcl:{table}", "--app", "cli-multi", "--stop-after-idle", "1.5", "--json",
            "--lease-duration", "2", "--endpoint-url", a.stack.kinesis_endpoint]
    proc = run_cli(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)
    assert summary["records"] == 800 and summary["stream"] == [a.name, b.name]
    assert sorted(summary["shards"]) == sorted([f"{a.name}/shardId-000000000000", f"{b.name}/shardId-000000000000",
                                                f"{b.name}/shardId-000000000001"])
    items = dynamodb_client.scan(TableName=table)["Items"]
    assert len(items) == 3 and all(i["leaseKey"]["S"] == f"{i['streamName']['S']}:{i['shardId']['S']}" for i in items)
    again = run_cli(*args, env=env)
    assert orjson.loads(again.stdout)["records"] == 0  # resumed from the KCL table


def test_a_bad_checkpoint_spec_names_the_kcl_form() -> None:
    proc = run_cli("consume", "--stream", "s", "--handler", "tests.e2e.handlers:collect", "--checkpoint", "kcl:")
    assert proc.returncode == 2 and "kcl:TABLE" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.streamkit(shards=2)
def test_kcl_run_starts_a_kclpy_application_from_its_properties(kinesis_stream: StreamHandle, dynamodb_client: Any,
                                                                 tmp_path: Path) -> None:
    produce(kinesis_stream, 400)
    app = f"kclpy-{uuid.uuid4().hex[:6]}"
    props = tmp_path / "app.properties"
    props.write_text(f"executableName = sample_kclpy_app.py\nstreamName = {kinesis_stream.name}\n"
                     f"applicationName = {app}\ninitialPositionInStream = TRIM_HORIZON\nfailoverTimeMillis = 2000\n"
                     f"kinesisEndpoint = {kinesis_stream.stack.kinesis_endpoint}\n"
                     f"dynamoDBEndpoint = {kinesis_stream.stack.dynamodb_endpoint}\nregionName = us-east-1\n")
    out = tmp_path / "out.txt"
    env = {"STREAMKIT_TEST_OUT": str(out), "PYTHONPATH": str(ROOT)}
    args = ["kcl", "run", "--properties", str(props), "--processor", "tests.e2e.handlers:KclpyCollect",
            "--stop-after-idle", "1.5", "--json"]
    proc = run_cli(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["records"] == 400
    assert sorted(int(line.split()[-1]) for line in out.read_text().splitlines()) == list(range(400))
    assert {i["leaseKey"]["S"] for i in dynamodb_client.scan(TableName=app)["Items"]} == {
        "shardId-000000000000", "shardId-000000000001"}  # the KCL's table, named after the application
    assert orjson.loads(run_cli(*args, env=env).stdout)["records"] == 0  # resumed
    bad = run_cli("kcl", "run", "--properties", str(props), "--processor", "tests.e2e.handlers:collect", env=env)
    assert bad.returncode == 2 and "name a class" in bad.stderr and "Traceback" not in bad.stderr


def test_consume_refuses_a_read_position_it_cannot_spell_in_one_line_before_any_call(tmp_path: Path) -> None:
    proc = run_cli("consume", "--stream", "nowhere", "--handler", "tests.e2e.handlers:collect",
                   "--from", "yesterday", "--endpoint-url", "http://127.0.0.1:9",
                   env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "streamkit: error: --from 'yesterday': use trim-horizon | latest | at-timestamp:ISO"]
