"""The real KCL 3.1.3 MultiLangDaemon (JVM, kclpy-ext's jars) and `streamkit kcl run` take turns on one
lease table, with one kclpy processor unchanged on both sides (tests/e2e/kcl_recorder.py).

One local stack of our own (kinesis-local, whose plain port speaks the KCL's HTTP/2, and dynalite), one
stream of two shards, two applications:

- A, its table created by streamkit: streamkit -> KCL (stopping inside a KPL aggregate) -> streamkit
  (stopping inside another aggregate) -> KCL. Each hand-over is a clean stop (SIGTERM for the KCL, which
  keeps its leases until they expire; streamkit lets its leases go).
- B, its table (with LeaseOwnerToLeaseKeyIndex) created by the KCL itself, run alongside A from the start
  (its first start waits a random 1-30 s on the empty table), stopped at a plain record, then taken over
  by streamkit.

Every record put is processed exactly once per application: none skipped, none twice. The counts are
printed (records, per side, duplicates, skipped, seconds). Three JVM starts; ~90-150 s here.
Java 17 missing fails with one line (streamkit.local.jvm_kcl), never a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamkit.aggregation import UserRecord, encode
from streamkit.aws.clients import aws_client
from streamkit.local import stack as local_stack
from streamkit.local.jvm_kcl import JvmKcl, JvmKclConfig, prepare_tables
from streamkit.local.stack import LocalStack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]
STREAM = "interop"
LOWER, UPPER = "0", str(2**127 + 1)  # explicit hash keys: shard 0 and shard 1 of two


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    data_dir = tmp_path_factory.mktemp("kcl-interop-stack")
    s = local_stack.up(backend="kinesis-mock", data_dir=data_dir, persist=False)
    try:
        yield s
    finally:
        local_stack.down(data_dir=data_dir)


class App:
    """One application: its properties, its output file, and the processes that ran it."""

    def __init__(self, name: str, stack: LocalStack, work: Path) -> None:
        self.name, self.stack, self.work = name, stack, work
        work.mkdir(parents=True, exist_ok=True)
        self.out = work / "records.jsonl"
        self.config = JvmKclConfig(application_name=name, stream_name=STREAM,
                                   processor=f"{sys.executable} -m tests.e2e.kcl_recorder",
                                   kinesis_endpoint=stack.kinesis_endpoint, dynamodb_endpoint=stack.dynamodb_endpoint)
        self.properties = work / "app.properties"
        self.properties.write_text(self.config.properties_text())
        self.runs = 0

    def env(self, side: str, cut: str | None) -> dict[str, str]:
        self.runs += 1
        env = {"RECORDER_SIDE": side, "RECORDER_OUT": str(self.out), "PYTHONPATH": str(ROOT),
               "RECORDER_CUT_MARK": str(self.cut_mark(self.runs))}
        if cut:
            env["RECORDER_CUT"] = cut
        return env

    def cut_mark(self, run: int) -> Path:
        return self.work / f"cut-{run}"

    def kcl(self, cut: str | None = None) -> JvmKcl:
        return JvmKcl(self.config, work_dir=self.work / f"kcl-{self.runs + 1}", env=self.env("kcl", cut)).start()

    def streamkit(self, cut: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env("streamkit", cut), "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
        proc = subprocess.run([sys.executable, "-m", "streamkit.cli.main", "kcl", "run", "--properties",
                               str(self.properties), "--processor", "tests.e2e.kcl_recorder:Recorder",
                               "--endpoint-url", self.stack.kinesis_endpoint, "--stop-after-idle", "4"],
                              capture_output=True, text=True, env=env, timeout=90, check=False, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.read_text().splitlines()] if self.out.exists() else []

    def wait_for(self, wanted: set[str], kcl: JvmKcl, *, timeout: float = 90, cut_run: int | None = None) -> None:
        """Until the KCL processed `wanted` (and, in run `cut_run`, checkpointed at its cut)."""
        deadline = time.monotonic() + timeout
        cut = cut_run is not None
        while not (wanted <= {r["data"] for r in self.lines()} and (cut_run is None or self.cut_mark(cut_run).exists())):
            assert kcl.running(), f"the KCL exited: see {kcl.log_path}"
            assert time.monotonic() < deadline, (f"the KCL did not process {len(wanted - {r['data'] for r in self.lines()})}"
                                                 f" records (cut: {cut}) within {timeout:.0f} s (see {kcl.log_path})")
            time.sleep(0.2)

    def counts(self, put: list[str]) -> dict[str, int]:
        seen = Counter(r["data"] for r in self.lines())
        sides = Counter(r["side"] for r in self.lines())
        return {"records": len(put), "kcl": sides["kcl"], "streamkit": sides["streamkit"],
                "duplicates": sum(n - 1 for n in seen.values() if n > 1), "skipped": len(set(put) - set(seen)),
                "unknown": len(set(seen) - set(put))}


class Stream:
    def __init__(self, stack: LocalStack) -> None:
        self.client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, region="us-east-1")
        self.client.create_stream(StreamName=STREAM, ShardCount=2)
        deadline = time.monotonic() + 30
        while self.client.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        self.put: list[str] = []

    def plain(self, prefix: str, n: int) -> list[str]:
        data = [f"{prefix}-{i}" for i in range(n)]
        self.client.put_records(StreamName=STREAM, Records=[
            {"Data": d.encode(), "PartitionKey": d, "ExplicitHashKey": (LOWER, UPPER)[i % 2]} for i, d in enumerate(data)])
        self.put += data
        return data

    def aggregates(self, prefix: str, *, per: int = 25) -> dict[str, list[str]]:
        """One KPL aggregate of `per` user records into each shard: {"lower": [...], "upper": [...]}."""
        out = {}
        for side, ehk in (("lower", LOWER), ("upper", UPPER)):
            data = [f"{prefix}-{side}-{i}" for i in range(per)]
            blob = encode([UserRecord(d.encode(), d, ehk) for d in data])
            self.client.put_record(StreamName=STREAM, Data=blob, PartitionKey=f"{prefix}-{side}", ExplicitHashKey=ehk)
            out[side] = data
            self.put += data
        return out


def test_the_real_kcl_and_streamkit_take_turns_both_ways_inside_aggregates_on_tables_either_created(
        stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    stream = Stream(stack)
    a, b = App("interop-a", stack, tmp_path / "a"), App("interop-b", stack, tmp_path / "b")
    prepare_tables(application_name=a.name, dynamodb_endpoint=stack.dynamodb_endpoint)  # the lease table: by streamkit
    # B's lease table is the KCL's own (CreateTable, then UpdateTable adding its owner index); the two side
    # tables are made first only to spare the ~20 s the KCL polls dynalite for them.
    prepare_tables(application_name=b.name, dynamodb_endpoint=stack.dynamodb_endpoint, lease_table=False)
    first = stream.plain("p1", 40)
    kcl_b = b.kcl(cut=first[21])  # B's KCL: its random first wait overlaps A's turns

    # A1: streamkit creates A's leases and processes the first records, then lets its leases go.
    a.streamkit()
    # A2: the KCL takes over and stops inside the upper shard's aggregate (after sub-record 12).
    agg2 = stream.aggregates("a2")
    kcl_a = a.kcl(cut=agg2["upper"][12])
    a.wait_for(set(agg2["lower"]) | set(agg2["upper"][:13]), kcl_a, cut_run=a.runs)
    kcl_a.stop()
    # A3: streamkit resumes at sub-record 13 after the KCL's leases expire, and stops inside the lower
    # shard's next aggregate (after sub-record 7).
    agg3 = stream.aggregates("a3")
    a.streamkit(cut=agg3["lower"][7])
    assert a.cut_mark(a.runs).exists()
    # A4: the KCL again, from sub-record 8 of that aggregate, then newer records.
    last = stream.plain("p4", 20)
    kcl_a = a.kcl()
    a.wait_for(set(stream.put), kcl_a)
    kcl_a.stop()

    # B: the KCL stopped at first[21] on its shard long ago; streamkit takes B's table over from it.
    b.wait_for({first[21]}, kcl_b, timeout=60, cut_run=1)
    kcl_b.stop()
    b.streamkit()

    seconds = time.monotonic() - started
    ca, cb = a.counts(stream.put), b.counts(stream.put)
    with capsys.disabled():
        print(f"\nKCL interop A (table by streamkit): {ca}\nKCL interop B (table by the KCL): {cb}\n"
              f"KCL interop: {seconds:.0f} s, 3 JVM starts")
    for c in (ca, cb):
        assert c["duplicates"] == 0 and c["skipped"] == 0 and c["unknown"] == 0, c
        assert c["kcl"] > 0 and c["streamkit"] > 0, c
    # Each side resumed at the next sub-record after the other's cut.
    by_data = {r["data"]: r["side"] for r in a.lines()}
    assert (by_data[agg2["upper"][12]], by_data[agg2["upper"][13]]) == ("kcl", "streamkit")
    assert (by_data[agg3["lower"][7]], by_data[agg3["lower"][8]]) == ("streamkit", "kcl")
    assert by_data[last[-1]] == "kcl"
    by_data_b = {r["data"]: r["side"] for r in b.lines()}
    assert by_data_b[first[21]] == "kcl" and by_data_b[first[23]] == "streamkit"
