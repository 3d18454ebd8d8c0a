"""`streamkit consume --body package.module:Model` and `tail --body` against kinesalite (~8 s)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streamkit.destinations import read_dead_letters
from streamkit.testing import StreamHandle
from tests.e2e.helpers import run_cli

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.streamkit(shards=1)
def test_consume_validates_bodies_into_the_model_and_dead_letters_the_invalid_one_with_its_errors(
        kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    for i in range(20):
        doc = {"sensor": f"s-{i}", "temp": "hot" if i == 7 else i}
        kinesis_stream.client.put_record(StreamName=kinesis_stream.name, Data=orjson.dumps(doc), PartitionKey="k")
    out, dead = tmp_path / "out.txt", tmp_path / "dead.jsonl"
    proc = run_cli("consume", "--stream", kinesis_stream.name, "--handler", "tests.e2e.typed_models:collect",
                   "--body", "tests.e2e.typed_models:Reading", "--on-failure", f"file:{dead}", "--max-attempts", "3",
                   "--stop-after-idle", "1.5", "--json", "--endpoint-url", kinesis_stream.stack.kinesis_endpoint,
                   env={"STREAMKIT_TEST_OUT": str(out), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)
    assert summary["records"] == 19 and summary["invalid"] == summary["dead_lettered"] == 1
    assert out.read_text().splitlines() == [f"s-{i} {float(i)}" for i in range(20) if i != 7]
    [letter] = list(read_dead_letters(dead))
    assert letter["attempts"] == 1 and letter["validation_errors"][0]["field"] == "temp"


def test_a_body_model_that_cannot_be_imported_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = run_cli("consume", "--stream", "never-read", "--handler", "tests.e2e.typed_models:collect",
                   "--body", "tests.e2e.typed_models:Nope", "--endpoint-url", "http://127.0.0.1:9",
                   env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "streamkit: error: 'tests.e2e.typed_models' has no 'Nope' (--body model 'tests.e2e.typed_models:Nope')"]


@pytest.mark.streamkit(shards=1)
def test_tail_body_model_prints_validated_bodies_and_flags_the_invalid_one_with_its_errors(
        kinesis_stream: StreamHandle) -> None:
    for i in range(4):
        doc = {"sensor": f"s-{i}", "temp": "hot" if i == 2 else i}
        kinesis_stream.client.put_record(StreamName=kinesis_stream.name, Data=orjson.dumps(doc), PartitionKey="k")
    proc = run_cli("tail", kinesis_stream.name, "--from", "trim-horizon", "--body", "tests.e2e.typed_models:Reading",
                   "--json", "--endpoint-url", kinesis_stream.stack.kinesis_endpoint, env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    lines = [orjson.loads(line) for line in proc.stdout.splitlines()]
    assert [r["body"] for r in lines if "validation_errors" not in r] == [
        {"sensor": f"s-{i}", "temp": float(i)} for i in (0, 1, 3)]
    [bad] = [r for r in lines if "validation_errors" in r]
    assert bad["body"] == {"sensor": "s-2", "temp": "hot"} and bad["validation_errors"][0]["field"] == "temp"
    assert "1 did not validate as tests.e2e.typed_models:Reading" in proc.stderr


def test_a_model_whose_library_is_not_installed_is_one_line_naming_the_extra(tmp_path: Path) -> None:
    """msgspec made unimportable in the CLI's interpreter (a sitecustomize on its path)."""
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['msgspec'] = None\n")
    (tmp_path / "struct_model.py").write_text("import msgspec\n\nclass Reading(msgspec.Struct):\n    temp: float\n")
    proc = run_cli("consume", "--stream", "never-read", "--handler", "tests.e2e.typed_models:collect",
                   "--body", "struct_model:Reading", "--endpoint-url", "http://127.0.0.1:9",
                   env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "streamkit: error: --body struct_model:Reading: its module needs msgspec, which is not installed: "
        "pip install 'streamkit[msgspec]'"]
