"""`streamkit lambda run --template`: a SAM template and the same mapping in CloudFormation JSON run against
kinesalite and moto's SQS, nothing repeated on the command line (~20 s)."""

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
TEMPLATES = ROOT / "tests" / "templates"


def run_template(template: Path, stack: LocalStack, sqs_endpoint: str, out: Path, *extra: str) -> Any:
    return run_cli("lambda", "run", "--template", str(template), *extra, "--stop-after-idle", "2", "--json",
                   "--endpoint-url", stack.kinesis_endpoint,
                   env={"STREAMKIT_TEST_OUT": str(out), "AWS_ENDPOINT_URL_SQS": sqs_endpoint,
                        "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"})


@pytest.mark.parametrize("template", ["pipeline.yaml", "pipeline.json"])
def test_a_template_runs_its_mapping_as_declared(template: str, local_stack: LocalStack, kinesis_client: Any,
                                                 sqs_endpoint: str, tmp_path: Path) -> None:
    stream = f"tpl-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out.txt"
    params = ("--parameter-overrides", f"StreamName={stream}", "Stage=prod", "BatchSize=10")
    first = run_template(TEMPLATES / template, local_stack, sqs_endpoint, out, *params)
    assert first.returncode == 0, first.stderr
    # The template's stream was created with its shard count; the one property not emulated was said, once.
    shards = kinesis_client.list_shards(StreamName=stream)["Shards"]
    assert len(shards) == 2
    said = [line for line in first.stderr.splitlines() if "not emulated" in line]
    assert len(said) == 1 and said[0].endswith("KmsKeyArn")
    for i in range(30):
        kind = "reading" if i % 3 else "heartbeat"  # the template's filter keeps kind == reading
        kinesis_client.put_record(StreamName=stream, Data=orjson.dumps({"kind": kind, "n": i}), PartitionKey=f"k{i}")
    second = run_template(TEMPLATES / template, local_stack, sqs_endpoint, out, *params)
    assert second.returncode == 0, second.stderr
    (stats,) = orjson.loads(second.stdout)["mappings"].values()
    lines = out.read_text().splitlines()
    assert sorted(int(orjson.loads(line.split(" ", 1)[1])["n"]) for line in lines) == [i for i in range(30) if i % 3]
    assert all(line.startswith("prod ") for line in lines)  # the function's Environment, from a parameter
    assert stats["records_succeeded"] == 20


def test_mapping_flags_beside_a_template_are_refused_in_one_line(tmp_path: Path) -> None:
    proc = run_cli("lambda", "run", "--template", str(TEMPLATES / "pipeline.yaml"), "--batch-size", "7",
                   "--endpoint-url", "http://127.0.0.1:9")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "--batch-size: --template sets the mapping" in proc.stderr


def test_dispatch_takes_the_dispatcher_functions_mapping_and_settings_from_the_template(
        local_stack: LocalStack, kinesis_client: Any, tmp_path: Path) -> None:
    stream = f"tpl-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "out.txt"
    args = ("dispatch", "--template", str(TEMPLATES / "dispatch.yaml"), "--parameter-overrides",
            f"StreamName={stream}", "--worker", "tests.e2e.handlers:collect", "--stop-after-idle", "1.5", "--json",
            "--endpoint-url", local_stack.kinesis_endpoint)
    env = {"STREAMKIT_TEST_OUT": str(out), "PYTHONPATH": str(ROOT)}
    assert run_cli(*args, env=env).returncode == 0  # creates the template's stream
    for i in range(40):
        kinesis_client.put_record(StreamName=stream, Data=b"%d" % i, PartitionKey=f"k{i % 5}")
    proc = run_cli(*args, env=env)
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)
    assert (summary["mode"], summary["lanes"], summary["delivered"]) == ("per-key", 4, 40)
    assert sorted(int(line.split()[-1]) for line in out.read_text().splitlines()) == list(range(40))
