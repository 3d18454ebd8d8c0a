"""`lambda run`: execution environments and REPORT lines, against kinesalite (~15 s)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamkit.testing import StreamHandle
from tests.e2e.helpers import run_cli

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def put(stream: StreamHandle, n: int) -> None:
    for i in range(n):
        stream.client.put_record(StreamName=stream.name, Data=b"%d" % i, PartitionKey=f"key-{i}")


def lambda_run(stream: StreamHandle, *extra: str) -> Any:
    return run_cli("lambda", "run", "--stream", stream.name, "--handler", "tests.e2e.slow_init:handler",
                   "--starting-position", "trim-horizon", "--batch-size", "5", "--stop-after-idle", "1.5",
                   "--endpoint-url", stream.stack.kinesis_endpoint, *extra, env={"PYTHONPATH": str(ROOT)})


@pytest.mark.streamkit(shards=1)
def test_process_isolation_times_each_environments_import_once(kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    put(kinesis_stream, 40)
    proc = lambda_run(kinesis_stream, "--isolation", "process", "--parallelization-factor", "2", "--memory", "256",
                      "--json")
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)["invocation_reports"]
    reports = summary["reports"]
    assert len(reports) >= 8 and summary["environments"] == 2  # one shard, two lanes: two environments
    by_env: dict[str, list[dict[str, Any]]] = {}
    for r in reports:
        by_env.setdefault(r["environment"], []).append(r)
    for env, rs in by_env.items():
        assert rs[0]["init_duration_ms"] >= 300, env  # the 300 ms import, in that environment's own process
        assert all(r["init_duration_ms"] is None for r in rs[1:]), env  # warm afterwards
    for r in reports:
        assert r["billed_duration_ms"] == math.ceil(r["duration_ms"] + (r["init_duration_ms"] or 0))
        assert r["memory_size_mb"] == 256 and r["max_memory_used_mb"] > 0  # the worker's peak resident memory
    assert summary["init_duration_ms"]["count"] == 2
    # The estimator takes the run's figures: --memory-advice from a measured run.
    run_file = tmp_path / "run.json"
    run_file.write_text(proc.stdout)
    est = run_cli("estimate", "--shards", "1", "--records-per-second", "100", "--from-run", str(run_file),
                  "--memory-advice", "--json")
    assert est.returncode == 0, est.stderr
    result = orjson.loads(est.stdout)
    assert result["memory_advice"]["measured_at_mb"] == 256 and result["from_run"]["memory_size_mb"] == 256
    assert result["batch_seconds"] == pytest.approx((summary["duration_ms"]["p50"] + 20) / 1000)
    assert result["from_run"]["init_duration_ms_p50"] >= 300


@pytest.mark.streamkit(shards=1)
def test_in_process_report_lines_say_what_they_cannot_measure(kinesis_stream: StreamHandle) -> None:
    put(kinesis_stream, 12)
    proc = lambda_run(kinesis_stream, "--verbose")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("REPORT RequestId: ")]
    assert len(lines) >= 3
    assert all("Max Memory Used: n/a (in-process)" in line and "Memory Size: 128 MB" in line for line in lines)
    assert "Init Duration: " in lines[0] and not any("Init Duration" in line for line in lines[1:])
    init = float(lines[0].split("Init Duration: ")[1].split(" ms")[0])
    assert init >= 300
