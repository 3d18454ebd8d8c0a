"""A Lambda cold start loads only what every invocation needs: retry machinery (tenacity), AWS clients,
metrics sinks, checkpoint stores, destinations, OpenTelemetry and hashlib load when first used, not on
`from streamkit import kinesis_handler` nor on an invocation whose records all succeed. (~1 s, subprocesses)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOT_ON_THE_LAMBDA_PATH = {
    "tenacity", "boto3", "botocore", "opentelemetry", "prometheus_client", "sqlite3", "hashlib", "pydantic", "msgspec",
    "streamkit.retry", "streamkit.metrics", "streamkit.checkpoints", "streamkit.destinations", "streamkit.aws.clients",
    "streamkit.aws.sqs", "streamkit.consumer", "streamkit.local", "streamkit.cli", "producer", "dispatcher",
}
IMPORT = "from streamkit import kinesis_handler\n"
DECORATE = 'handler = kinesis_handler(body="json", max_attempts=3)(lambda r: r.body)\n'
INVOKE = 'import json\nassert handler(json.load(open("tests/events/kinesis_plain.json")), None) == {"batchItemFailures": []}\n'
FAIL = 'kinesis_handler(max_attempts=1, on_failure=lambda letters: None)(lambda r: 1 / 0)(' \
       'json.load(open("tests/events/kinesis_plain.json")), None)\n'


def modules_after(code: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", code + "import sys, json\nprint(json.dumps(sorted(sys.modules)))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.splitlines()[-1]))


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m in NOT_ON_THE_LAMBDA_PATH or m.split(".")[0] in NOT_ON_THE_LAMBDA_PATH}


@pytest.mark.parametrize("code", [IMPORT, IMPORT + DECORATE, IMPORT + DECORATE + INVOKE],
                         ids=["import", "decorate", "invoke"])
def test_the_lambda_path_loads_nothing_it_does_not_use(code: str) -> None:
    assert heavy(modules_after(code)) == set()


def test_the_check_sees_what_a_failure_loads() -> None:
    # The same check is not blind: a record that fails and goes to a destination loads those modules.
    assert "streamkit.destinations" in heavy(modules_after(IMPORT + DECORATE + INVOKE + FAIL))


def test_the_retry_engine_loads_on_the_first_retry_only() -> None:
    fail_once = FAIL.replace(", on_failure=lambda letters: None", "")  # reported, no destination
    retry_twice = fail_once.replace("max_attempts=1", "max_attempts=2, backoff_base=0.001")
    assert "streamkit.retry" not in heavy(modules_after(IMPORT + DECORATE + INVOKE + fail_once))  # nothing to retry
    assert "streamkit.retry" in heavy(modules_after(IMPORT + DECORATE + INVOKE + retry_twice))
