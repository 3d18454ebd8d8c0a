"""`streamkit tail` against the local stack, as a user runs it (about 25 s in all).

Aggregates, keyless records and 10 MiB records (through the limit proxy, which emulates the 2025 stream
settings in front of kinesalite), a split while following, and `--follow` shown by records put after it
started appearing: no timing decides a pass.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer import Producer, ProducerConfig
from streamkit import kinesis
from streamkit.testing import ProxyHandle, StreamHandle
from tests.e2e.helpers import run_cli
from tests.integration.helpers import split_first_shard

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FAST = dict(record_max_buffered_time=0.01, backoff_base=0.01, backoff_max=0.1)


def put_readings(client: Any, stream: str, n: int, *, start: int = 0, aggregate: bool = True) -> None:
    config = ProducerConfig(**FAST, aggregation=aggregate)  # type: ignore[arg-type]
    with Producer(stream, client=client, config=config) as p:
        for i in range(start, start + n):
            p.put_json({"sensor_id": f"s-{i % 7}", "seq": i}, partition_key=f"s-{i % 7}")


def tail_json(endpoint: str, *args: str) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[str]]:
    proc = run_cli("tail", *args, "--json", "--endpoint-url", endpoint, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [orjson.loads(line) for line in proc.stdout.splitlines()], proc


@pytest.mark.streamkit(shards=2)
def test_tail_prints_decoded_user_records_of_aggregates_as_json_lines(kinesis_stream: StreamHandle) -> None:
    put_readings(kinesis_stream.client, kinesis_stream.name, 40)
    ep = kinesis_stream.stack.kinesis_endpoint
    five, proc = tail_json(ep, kinesis_stream.name, "--from", "trim-horizon", "--limit", "5")
    assert len(five) == 5 and all(r["body_kind"] == "json" and "sensor_id" in r["body"] for r in five)
    assert all(r["sub_sequence_number"] is not None for r in five)  # they came out of KPL aggregates
    assert "--limit 5 reached" in proc.stderr
    every, proc = tail_json(ep, kinesis_stream.name, "--from", "TRIM_HORIZON")  # the other spelling
    assert sorted(r["body"]["seq"] for r in every) == list(range(40))
    assert proc.stderr.strip().endswith("caught up")
    # Order per key is the order written; --key keeps one key only.
    s3, _ = tail_json(ep, kinesis_stream.name, "--from", "trim-horizon", "--key", "s-3")
    assert [r["body"]["seq"] for r in s3] == [i for i in range(40) if i % 7 == 3]
    # --limit counts the records shown, after --key and --where: not the records read.
    s3_two, proc = tail_json(ep, kinesis_stream.name, "--from", "trim-horizon", "--key", "s-3", "--limit", "2")
    assert [r["body"]["seq"] for r in s3_two] == [3, 10] and "--limit 2 reached" in proc.stderr
    hot_two, _ = tail_json(ep, kinesis_stream.name, "--from", "trim-horizon", "--limit", "2",
                           "--where", '{"data": {"seq": [{"numeric": [">=", 38]}]}}')
    assert sorted(r["body"]["seq"] for r in hot_two) == [38, 39]
    # --where: Lambda's filter rule syntax (the mapping's engine) on each user record's data, ORed.
    hot, _ = tail_json(ep, kinesis_stream.name, "--from", "trim-horizon",
                       "--where", '{"data": {"seq": [{"numeric": [">=", 35]}]}}', "--where", '{"data": {"sensor_id": ["s-0"]}}')
    assert sorted(r["body"]["seq"] for r in hot) == sorted({*range(35, 40), *range(0, 40, 7)})
    # The default (latest) with nothing new prints nothing and says it caught up.
    none, proc = tail_json(ep, kinesis_stream.name)
    assert none == [] and "0 record(s)" in proc.stderr


@pytest.mark.streamkit(shards=1)
def test_tail_text_lines_name_shard_sequence_key_and_body(kinesis_stream: StreamHandle) -> None:
    kinesis_stream.client.put_record(StreamName=kinesis_stream.name, Data=b"line one\nline two", PartitionKey="k1")
    kinesis_stream.client.put_record(StreamName=kinesis_stream.name, Data=b"\xff\x00", PartitionKey="k2")
    proc = run_cli("tail", kinesis_stream.name, "--from", "trim-horizon",
                   "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    shard, seq, key, arrival, body = first.split("  ", 4)
    assert (shard, key, body) == ("shardId-000000000000", "k1", "line one\\nline two") and seq.isdigit()
    assert arrival.endswith("Z")
    assert second.endswith("  base64:/wA=")


@pytest.fixture
def proxy(kinesis_proxy: Callable[..., ProxyHandle]) -> ProxyHandle:
    return kinesis_proxy(limit_scale=10.0)


def test_tail_reads_keyless_records_and_10_mib_records(proxy: ProxyHandle) -> None:
    c = proxy.client()
    c.create_stream(StreamName="tail-auto", StreamModeDetails={"StreamMode": "ON_DEMAND"},
                    RecordDistributionStrategy="AUTO")
    c.create_stream(StreamName="tail-large", ShardCount=1, MaxRecordSizeInKiB=10240)
    kinesis.wait_for_stream(c, "tail-auto")
    kinesis.wait_for_stream(c, "tail-large")
    c.put_records(StreamName="tail-auto", Records=[{"Data": b'{"n": %d}' % i} for i in range(5)])
    big = os.urandom(10 * 1024 * 1024 - 1)  # 10 MiB with its one-character key
    c.put_record(StreamName="tail-large", Data=big, PartitionKey="k")
    c.put_record(StreamName="tail-large", Data=b"after", PartitionKey="k")
    arn = c.describe_stream_summary(StreamName="tail-auto")["StreamDescriptionSummary"]["StreamARN"]
    keyless, _ = tail_json(proxy.endpoint, arn, "--from", "trim-horizon")  # by ARN (the proxy speaks StreamARN)
    assert sorted(r["body"]["n"] for r in keyless) == list(range(5))
    assert all(r["partition_key"] is None for r in keyless)
    # --limit ends it at once: caught up would be seen only after paying for 10 MiB of the shard's reads.
    large, _ = tail_json(proxy.endpoint, "tail-large", "--from", "trim-horizon", "--body", "bytes", "--limit", "2")
    import base64

    assert [r["size"] for r in large] == [len(big), 5]
    assert base64.b64decode(large[0]["body"]) == big
    text = run_cli("tail", "tail-large", "--from", "trim-horizon", "--limit", "1", "--endpoint-url", proxy.endpoint,
                   timeout=60)
    assert text.stdout.splitlines()[0].endswith(f"... ({len(big):,} bytes)")  # elided on a text line


class Follower:
    """`streamkit tail --follow --json` as a child process; a thread hands its lines over a queue."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "streamkit.cli.main", "tail", *args, "--follow", "--json"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def read(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The next `n` records (fails if they do not come within `timeout`: a hang, not a timing check)."""
        out = []
        while len(out) < n:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"got {len(out)} of {n} records") from None
            assert line, f"tail ended early: {self.proc.wait()} {self.proc.stderr.read() if self.proc.stderr else ''}"
            out.append(orjson.loads(line))
        return out

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        return code, self.proc.stderr.read() if self.proc.stderr else ""


@pytest.fixture
def follower() -> Iterator[Callable[..., Follower]]:
    made: list[Follower] = []
    yield lambda *args: made.append(Follower(*args)) or made[-1]
    for f in made:
        if f.proc.poll() is None:
            f.proc.kill()
            f.proc.wait()


@pytest.mark.streamkit(shards=1)
def test_follow_prints_records_put_after_it_started_and_goes_on_into_the_children_of_a_split(
        kinesis_stream: StreamHandle, follower: Callable[..., Follower]) -> None:
    c, name = kinesis_stream.client, kinesis_stream.name
    put_readings(c, name, 3)  # before: not shown, tail starts at latest
    f = follower(name, "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    # Records keep coming until the first shows: tail may start its iterators after some of these.
    seen: list[dict[str, Any]] = []
    i = 100
    hang_guard = time.monotonic() + 120  # tail's start (an interpreter, its iterators) on a loaded machine
    while not seen and time.monotonic() < hang_guard:  # behaviour decides: a record put after the start shows
        put_readings(c, name, 1, start=i)
        i += 1
        if not f.lines.empty():
            seen = f.read(1)
        else:
            time.sleep(0.2)  # pacing the puts only: what passes is that records appear
    assert seen and seen[0]["body"]["seq"] >= 100, f"tail showed none of {i - 100} records put while it ran"
    parent = split_first_shard(c, name)
    put_readings(c, name, 20, start=1000)  # these land in the children
    after = f.read(i - 1 - seen[0]["body"]["seq"] + 20)
    assert sorted(r["body"]["seq"] for r in after) == [*range(seen[0]["body"]["seq"] + 1, i), *range(1000, 1020)]
    assert {r["shard_id"] for r in after if r["body"]["seq"] >= 1000} <= \
        {s.shard_id for s in kinesis.list_shards(c, name) if s.parent_shard_id == parent}
    code, err = f.stop()
    assert code == 0, err
    assert "stopped" in err.strip().splitlines()[-1]


@pytest.mark.streamkit(shards=1)
def test_ctrl_c_ends_a_follow_with_its_closing_line(kinesis_stream: StreamHandle,
                                                   follower: Callable[..., Follower]) -> None:
    f = follower(kinesis_stream.name, "--from", "trim-horizon", "--endpoint-url", kinesis_stream.stack.kinesis_endpoint)
    put_readings(kinesis_stream.client, kinesis_stream.name, 2)
    assert len(f.read(2)) == 2
    code, err = f.stop(signal.SIGINT)
    assert code == 0 and err.strip().splitlines()[-1] == "streamkit: 2 record(s) from 1 shard(s); stopped", err


def test_bad_input_is_one_line_and_the_right_exit_code(local_stack: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from streamkit.cli.main import main

    ep = local_stack.kinesis_endpoint
    cases = [(("tail", "no-such-stream"), 1, "no-such-stream"),
             (("tail", "x", "--from", "yesterday"), 2, "--from 'yesterday'"),
             (("tail", "x", "--from", "at-sequence:1"), 2, "--shard"),
             (("tail", "x", "--limit", "0"), 2, "limit"),
             (("tail", "x", "--where", '{"data": 5}'), 2, "invalid filter pattern"),
             (("tail", "x", "--where", '{"partitionKey": ["k"]}'), 2, '"data" key only')]
    logger = logging.getLogger("streamkit")
    handlers, level = list(logger.handlers), logger.level  # main() adds its stderr handler: put things back after
    try:
        for args, code, says in cases:  # in this process: the command's own checks, without an interpreter start each
            assert main([*args, "--endpoint-url", ep]) == code, args
            out, err = capsys.readouterr()
            assert len(err.strip().splitlines()) == 1 and says in err and out == "", (args, err)
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)


def test_tail_through_the_limit_proxy_says_it_is_throttled_and_loses_nothing(
        kinesis_proxy: Callable[..., ProxyHandle]) -> None:
    proxy = kinesis_proxy(limit_scale=0.2)  # a shard serves 1 GetRecords call/s: tail starts at up to 4
    c = proxy.client()
    c.create_stream(StreamName="tail-throttled", ShardCount=1)
    kinesis.wait_for_stream(c, "tail-throttled")
    put_readings(c, "tail-throttled", 50, aggregate=False)
    records, proc = tail_json(proxy.endpoint, "tail-throttled", "--from", "trim-horizon")
    assert sorted(r["body"]["seq"] for r in records) == list(range(50))
    assert "is throttled" in proc.stderr and "throttled" in proc.stderr.strip().splitlines()[-1], proc.stderr
