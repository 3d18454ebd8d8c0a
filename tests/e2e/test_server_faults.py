"""Faults of the servers themselves: kinesalite and dynalite SIGKILLed and restarted under a running
producer, consumer (`streamkit consume`, leases in DynamoDB) and emulator (`streamkit lambda run`).

Each resumes on its own when its server returns; nothing the producer acknowledged is lost, none of
them prints a traceback, and both readers stop cleanly on SIGTERM afterwards. (A server that never
returns ends a reader with one line after `--stop-after-idle`: tests/e2e/test_probes.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from producer import Producer, ProducerConfig
from streamkit import kinesis
from streamkit.aws.clients import aws_client
from streamkit.local import stack as local_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
STREAM = "faults"
N = 3000


def seqs_in(path: Path, field: int) -> set[int]:
    if not path.exists():
        return set()
    out = set()
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) > field:
            try:
                out.add(int(orjson.loads(parts[field])["seq"]) if field == 4 else int(parts[field]))
            except (ValueError, KeyError, orjson.JSONDecodeError):
                pass
    return out


def test_servers_killed_and_restarted_under_a_running_pipeline_lose_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "stack"
    stack = local_stack.up(data_dir=data)  # persisted: a restarted server keeps what it acknowledged
    readers: list[subprocess.Popen[str]] = []
    try:
        client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=0)
        kinesis.create_stream(client, STREAM, 2)
        env = {**os.environ, "AWS_ENDPOINT_URL_KINESIS": stack.kinesis_endpoint,
               "AWS_ENDPOINT_URL_DYNAMODB": stack.dynamodb_endpoint, "STREAMKIT_TEST_DEAD": str(tmp_path / "dead.jsonl")}
        consumer_out, emulator_out = tmp_path / "consumer.txt", tmp_path / "emulator.txt"
        cli = [sys.executable, "-m", "streamkit.cli.main"]
        readers.append(subprocess.Popen(
            [*cli, "consume", "--stream", STREAM, "--handler", "tests.e2e.handlers:collect", "--app", "faults",
             "--checkpoint", "dynamodb:faults-leases", "--lease-duration", "6"],
            env={**env, "STREAMKIT_TEST_OUT": str(consumer_out)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
        readers.append(subprocess.Popen(
            [*cli, "lambda", "run", "--stream", STREAM, "--handler", "tests.e2e.handlers:lambda_handler",
             "--checkpoint", "dynamodb:faults-esm"],
            env={**env, "STREAMKIT_TEST_OUT": str(emulator_out)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))

        def faults() -> None:
            time.sleep(1.0)
            local_stack.kill_server("kinesalite", data_dir=data)
            time.sleep(2.0)
            local_stack.restart_server("kinesalite", data_dir=data)
            time.sleep(1.0)
            local_stack.kill_server("dynalite", data_dir=data)
            time.sleep(2.0)
            local_stack.restart_server("dynalite", data_dir=data)

        chaos = threading.Thread(target=faults)
        chaos.start()
        futures = []
        with Producer(STREAM, client=client, config=ProducerConfig(aggregation_max_size=8 * 1024)) as p:
            for i in range(N):  # ~7 s of readings, across both outages
                futures.append((i, p.put_json({"seq": i, "temp_c": 20.5}, f"k{i % 20}")))
                time.sleep(0.0023)
        chaos.join()
        acked = {i for i, f in futures if f.exception() is None}
        assert len(acked) == N  # each outage (2 s) is far within record_ttl: every reading was written

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if acked <= seqs_in(consumer_out, 4) and acked <= seqs_in(emulator_out, 1):
                break
            time.sleep(0.5)
        lost = {"consumer": len(acked - seqs_in(consumer_out, 4)), "emulator": len(acked - seqs_in(emulator_out, 1))}
    finally:
        outputs = []
        for proc in readers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                _out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _out, err = proc.communicate()
            outputs.append((proc.args, proc.returncode, err))
        local_stack.down(data_dir=data)
    for args, code, err in outputs:
        assert "Traceback" not in err, (args, err)
        assert code == 0, (args, code, err)
    assert lost == {"consumer": 0, "emulator": 0}, outputs
