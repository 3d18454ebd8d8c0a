"""`streamkit local up|status|down`: loopback only, endpoints that answer, exactly our processes stopped."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from streamkit.aws.clients import aws_client
from tests.e2e.helpers import listening_addresses, pid_alive, run_cli, run_json

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("backend", ["kinesalite", "kinesis-mock"])
def test_up_binds_only_loopback_answers_and_down_stops_exactly_its_processes(tmp_path: Path, backend: str) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        stack: dict[str, Any] = run_json("local", "up", "--backend", backend, "--data-dir", str(tmp_path))
        try:
            assert stack["kinesis_endpoint"].startswith("http://127.0.0.1:")
            assert stack["dynamodb_endpoint"].startswith("http://127.0.0.1:")
            pids = [p["pid"] for p in stack["processes"]]
            assert len(pids) == 2
            for pid in pids:
                addresses = listening_addresses(pid)
                assert addresses, f"pid {pid} listens on nothing"
                assert all(addr == "127.0.0.1" for addr, _port in addresses), addresses
            kin = aws_client("kinesis", endpoint_url=stack["kinesis_endpoint"], retries=0)
            assert kin.list_streams()["StreamNames"] == []
            ddb = aws_client("dynamodb", endpoint_url=stack["dynamodb_endpoint"], retries=0)
            assert ddb.list_tables()["TableNames"] == []

            again = run_json("local", "up", "--backend", backend, "--data-dir", str(tmp_path))
            assert again["processes"] == stack["processes"]  # already running: same stack, nothing new
            status = run_json("local", "status", "--data-dir", str(tmp_path))
            assert status["kinesis_endpoint"] == stack["kinesis_endpoint"]
        finally:
            down = run_json("local", "down", "--data-dir", str(tmp_path))
        assert sorted(down["stopped"]) == sorted(p["name"] for p in stack["processes"])
        assert not any(pid_alive(pid) for pid in pids)
        assert pid_alive(bystander.pid)
        proc = run_cli("local", "status", "--data-dir", str(tmp_path))
        assert proc.returncode == 1 and "not running" in proc.stdout
    finally:
        bystander.kill()
        bystander.wait()


def test_kinesalite_data_survives_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    stack: dict[str, Any] = run_json("local", "up", "--data-dir", str(tmp_path))
    try:
        run_json("stream", "create", "kept", "--shards", "1", "--endpoint-url", stack["kinesis_endpoint"])
    finally:
        run_json("local", "down", "--data-dir", str(tmp_path))
    stack = run_json("local", "up", "--data-dir", str(tmp_path))
    try:
        desc = run_json("stream", "describe", "kept", "--endpoint-url", stack["kinesis_endpoint"])
        assert desc["status"] == "ACTIVE"
    finally:
        run_json("local", "down", "--data-dir", str(tmp_path))


def test_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    proc = run_cli("local", "down", "--data-dir", str(tmp_path))
    assert proc.returncode == 0 and "nothing was running" in proc.stdout


def test_enforce_limits_puts_the_proxy_behind_the_printed_endpoint(tmp_path: Path) -> None:
    from streamkit.local.proxy import proxy_stats

    stack: dict[str, Any] = run_json("local", "up", "--in-memory", "--enforce-limits", "--limit-scale", "0.01",
                                     "--faults", "latency=1ms", "--data-dir", str(tmp_path))
    try:
        assert stack["kinesis_endpoint"] != stack["backend_endpoint"]
        assert [p["name"] for p in stack["processes"]] == ["kinesalite", "dynalite", "proxy"]
        proxy_pid = stack["processes"][2]["pid"]
        assert {addr for addr, _ in listening_addresses(proxy_pid)} == {"127.0.0.1"}
        client = aws_client("kinesis", endpoint_url=stack["kinesis_endpoint"], retries=0)
        run_json("stream", "create", "limited", "--endpoint-url", stack["kinesis_endpoint"])
        out = client.put_records(StreamName="limited", Records=[{"Data": b"x", "PartitionKey": "k"}] * 30)
        assert out["FailedRecordCount"] == 20  # 1,000 records/s x 0.01 = 10 admitted
        assert proxy_stats(stack["kinesis_endpoint"])["stats"]["limit.write_throttled"] == 20
    finally:
        run_json("local", "down", "--data-dir", str(tmp_path))


def test_bad_fault_spec_is_a_usage_error_and_starts_nothing(tmp_path: Path) -> None:
    proc = run_cli("local", "up", "--faults", "bogus=1", "--data-dir", str(tmp_path))
    assert proc.returncode == 2 and "bad fault" in proc.stderr
    assert not (tmp_path / "stack.json").exists()


def test_local_up_serves_lambdas_invoke_api_for_the_dispatchers_lambda_target(tmp_path: Path) -> None:
    import time

    from dispatcher import Dispatcher, LambdaTarget
    from streamkit.records import StreamRecord

    out = tmp_path / "out.txt"
    env = {"STREAMKIT_TEST_OUT": str(out), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    stack: dict[str, Any] = run_json("local", "up", "--in-memory", "--data-dir", str(tmp_path / "stack"),
                                     "--lambda", "worker=tests.e2e.handlers:lambda_worker", env=env)
    try:
        assert stack["lambda_endpoint"].startswith("http://127.0.0.1:")
        lam = next(p for p in stack["processes"] if p["name"] == "lambda")
        assert {addr for addr, _ in listening_addresses(lam["pid"])} == {"127.0.0.1"}
        client = aws_client("lambda", endpoint_url=stack["lambda_endpoint"], retries=0)
        assert client.invoke(FunctionName="worker", Payload=b'{"records": []}')["StatusCode"] == 200
        d = Dispatcher(LambdaTarget("worker", client=client), mode="unordered", lanes=4)
        result = d.dispatch([StreamRecord(b"x", f"k{i}", str(i)) for i in range(20)])
        d.close()
        assert result.delivered == 20
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 20):
            time.sleep(0.05)
        assert len(out.read_text().splitlines()) == 20
    finally:
        run_json("local", "down", "--data-dir", str(tmp_path / "stack"))
