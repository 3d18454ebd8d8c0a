"""`streamkit produce`: file and simulated sources, bad lines, JSON summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streamkit.testing import ProxyHandle, StreamHandle
from tests.e2e.helpers import run_cli, run_json
from tests.integration.helpers import read_stream

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _positions_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`produce --file` keeps its position per user: here, in the test's own folder."""
    monkeypatch.setenv("STREAMKIT_STATE_DIR", str(tmp_path / "state"))


@pytest.mark.streamkit(shards=2)
def test_file_with_bad_lines_reports_each_with_its_number_and_skips_it(kinesis_stream: StreamHandle,
                                                                      tmp_path: Path) -> None:
    f = tmp_path / "readings.jsonl"
    f.write_text('{"sensor_id": "a", "t": 1}\nnot json\n\n{"t": 2}\n{"sensor_id": "b", "t": 3}\n')
    proc = run_cli("produce", "--stream", kinesis_stream.name, "--file", str(f), "--json",
                   "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    assert proc.returncode == 0, proc.stderr
    assert f"{f}:2: not valid JSON" in proc.stderr and f"{f}:4: no 'sensor_id' field" in proc.stderr
    import orjson

    summary = orjson.loads(proc.stdout)
    assert summary["user_records"] == 2 and summary["bad_lines"] == 2 and summary["failed"] == 0
    got = sorted(k for recs in read_stream(kinesis_stream.client, kinesis_stream.name).values() for k, _d, _s in recs)
    assert got == ["a", "b"]


@pytest.mark.streamkit(shards=1)
def test_readings_kinesis_would_refuse_are_bad_lines_not_a_crash(kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    f = tmp_path / "r.jsonl"
    big = "x" * (1024 * 1024)
    f.write_text(f'{{"sensor_id": "a"}}\n{{"sensor_id": "b", "pad": "{big}"}}\n{{"sensor_id": "{"k" * 300}"}}\n'
                 '{"sensor_id": "d"}\n')
    proc = run_cli("produce", "--stream", kinesis_stream.name, "--file", str(f),
                   "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    assert proc.returncode == 0, proc.stderr
    assert f"{f}:2: reading of 1048606 bytes with its key is over" in proc.stderr
    assert f"{f}:3: " in proc.stderr and "got 300" in proc.stderr and "Traceback" not in proc.stderr
    got = sorted(k for recs in read_stream(kinesis_stream.client, kinesis_stream.name).values() for k, _d, _s in recs)
    assert got == ["a", "d"]


def test_a_bad_on_failure_destination_is_a_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "r.jsonl"
    f.write_text('{"sensor_id": "a"}\n')
    proc = run_cli("produce", "--stream", "s", "--file", str(f), "--on-failure", "nowhere")
    assert proc.returncode == 2 and "use file:PATH or sqs:QUEUE_URL" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.streamkit(shards=1)
def test_on_bad_line_fail_stops_with_exit_1(kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    f = tmp_path / "r.jsonl"
    f.write_text('{"sensor_id": "a"}\n{broken\n{"sensor_id": "c"}\n')
    proc = run_cli("produce", "--stream", kinesis_stream.name, "--file", str(f), "--on-bad-line", "fail",
                   "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    assert proc.returncode == 1 and f"{f}:2" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.streamkit(shards=2)
def test_simulated_fleet_json_summary(kinesis_stream: StreamHandle) -> None:
    summary = run_json("produce", "--stream", kinesis_stream.name, "--sensors", "50", "--rate", "2000",
                       "--duration", "1", "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    assert summary["user_records"] == 2000 and summary["failed"] == 0
    assert 1 <= summary["kinesis_records"] <= 40 and summary["put_calls"] >= 1  # type: ignore[operator]
    assert set(summary) >= {"user_records", "kinesis_records", "put_calls", "bytes", "seconds", "failed", "retried"}


@pytest.mark.streamkit(shards=1)
def test_no_aggregate_writes_one_kinesis_record_per_reading(kinesis_stream: StreamHandle) -> None:
    summary = run_json("produce", "--stream", kinesis_stream.name, "--sensors", "5", "--rate", "500",
                       "--duration", "0.2", "--no-aggregate", "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    assert summary["kinesis_records"] == summary["user_records"] == 100


def test_missing_file_is_a_usage_error() -> None:
    proc = run_cli("produce", "--stream", "s", "--file", "/nonexistent.jsonl", "--endpoint-url", "http://127.0.0.1:9")
    assert proc.returncode == 2 and "no such file" in proc.stderr


@pytest.mark.streamkit(shards=1)
def test_a_publisher_offering_more_than_the_shard_takes_is_held_back_says_so_and_loses_nothing(
        kinesis_stream: StreamHandle, kinesis_proxy: Callable[..., ProxyHandle], tmp_path: Path) -> None:
    proxy = kinesis_proxy(limit_scale=0.5)  # 512 KiB/s (after a first MiB of burst)
    f = tmp_path / "r.jsonl"
    n = 30_000  # ~3.9 MB: over a 5 s TTL of what the shard takes at its first burst and after
    f.write_text("".join(f'{{"sensor_id": "s{i % 40:02d}", "seq": {i}, "pad": "{"x" * 80}"}}\n' for i in range(n)))
    proc = run_cli("produce", "--stream", kinesis_stream.name, "--file", str(f), "--record-ttl", "5",
                   "--endpoint-url", proxy.endpoint)
    assert proc.returncode == 0, proc.stderr
    assert "held back" in proc.stderr and "shards accept less than offered" in proc.stderr
    assert "failed 0" in proc.stdout and "held back" in proc.stdout
    got = sum(len(recs) for recs in read_stream(kinesis_stream.client, kinesis_stream.name).values())
    assert got == n
    assert proxy.stats().get("limit.write_throttled", 0) > 0
