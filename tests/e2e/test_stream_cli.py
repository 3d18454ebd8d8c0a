"""`streamkit stream ...`, endpoint resolution and the CLI's error contract."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from streamkit.local.stack import LocalStack
from tests.e2e.helpers import run_cli, run_json

pytestmark = pytest.mark.integration


def test_create_describe_delete_with_options_after_the_subcommand(local_stack: LocalStack) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    ep = local_stack.kinesis_endpoint
    created = run_json("stream", "create", name, "--shards", "3", "--endpoint-url", ep, "--region", "eu-west-1")
    assert created["status"] == "ACTIVE" and len(created["shards"]) == 3  # type: ignore[arg-type]
    desc = run_json("stream", "describe", name, "--endpoint-url", ep)
    assert desc["open_shards"] == 3
    assert run_json("stream", "delete", name, "--endpoint-url", ep) == {"deleted": name}


def test_endpoint_comes_from_aws_endpoint_url_kinesis(local_stack: LocalStack) -> None:
    name = f"env-{uuid.uuid4().hex[:8]}"
    env = {"AWS_ENDPOINT_URL_KINESIS": local_stack.kinesis_endpoint, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    assert run_json("stream", "create", name, env=env)["stream_name"] == name
    env = {"AWS_ENDPOINT_URL": local_stack.kinesis_endpoint}
    assert run_json("--json", "stream", "describe", name, env=env)["stream_name"] == name


def test_missing_stream_is_one_line_exit_1_no_traceback(local_stack: LocalStack) -> None:
    proc = run_cli("stream", "describe", "no-such-stream", "--endpoint-url", local_stack.kinesis_endpoint)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "not found" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreachable_endpoint_is_a_failure_not_a_traceback() -> None:
    proc = run_cli("stream", "describe", "x", "--endpoint-url", "http://127.0.0.1:9")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and proc.stderr.startswith("streamkit: error:")


USAGE_ERRORS = [["stream"], ["stream", "create"], ["nope"], ["stream", "create", "x", "--shards", "x"]]


@pytest.mark.parametrize("args", USAGE_ERRORS)
def test_usage_errors_exit_2_with_one_line(args: list[str]) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "error:" in proc.stderr


def test_bad_shard_count_is_rejected_before_the_network() -> None:
    proc = run_cli("stream", "create", "x", "--shards", "0", "--endpoint-url", "http://127.0.0.1:9")
    assert proc.returncode == 2 and "at least 1" in proc.stderr


def test_create_describe_and_update_the_2025_settings_through_the_proxy(kinesis_proxy: Any) -> None:
    proxy = kinesis_proxy()
    created = run_json("stream", "create", "cli-today", "--on-demand", "--max-record-size", "10MiB",
                       "--distribution", "auto", "--endpoint-url", proxy.endpoint)
    assert (created["stream_mode"], created["open_shards"], created["max_record_size_kib"],
            created["record_distribution"]) == ("ON_DEMAND", 4, 10240, "AUTO")
    updated = run_json("stream", "update", str(created["stream_arn"]), "--distribution", "user-partition-key",
                       "--max-record-size", "2MiB", "--mode", "on-demand", "--warm-throughput", "50",
                       "--endpoint-url", proxy.endpoint)
    assert (updated["record_distribution"], updated["max_record_size_kib"], updated["warm_throughput_mibps"]) == \
        ("USER_PARTITION_KEY", 2048, 50)
    bad = run_cli("stream", "create", "cli-bad", "--shards", "1", "--distribution", "auto",
                  "--endpoint-url", proxy.endpoint)
    assert bad.returncode == 2 and "needs --on-demand" in bad.stderr and "Traceback" not in bad.stderr


def test_on_demand_on_a_plain_stack_says_in_one_line_what_it_needs(local_stack: Any) -> None:
    proc = run_cli("stream", "create", "od-plain", "--on-demand", "--endpoint-url", local_stack.kinesis_endpoint)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "--on-demand" in line and "--enforce-limits" in line and "--shards N" in line
