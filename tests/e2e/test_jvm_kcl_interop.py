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
printed (records, per side, duplicates, skipped, seconds). Three JVM starts (FAST_START); 60-120 s here.
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
from streamkit.local.jvm_kcl import FAST_START, JvmKcl, JvmKclConfig, prepare_tables, release_leader_lock
from streamkit.local.stack import LocalStack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]
ROOT = Path(__file__).resolve().parents[2]
STREAM = "interop"
LOWER, UPPER = "0", str(2**127 + 1)  # explicit hash keys: shard 0 and shard 1 of two


#: Every KCL and streamkit worker a test started, ended after the test however it went.
_STARTED: list[JvmKcl | subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def nothing_left_running() -> Iterator[None]:
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if isinstance(proc, JvmKcl):
            proc.kill()  # the JVM's whole process group, its processors too
        elif proc.poll() is None:
            proc.kill()
            proc.wait()


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

    def __init__(self, name: str, stack: LocalStack, work: Path, stream: str = STREAM) -> None:
        self.name, self.stack, self.work = name, stack, work
        work.mkdir(parents=True, exist_ok=True)
        self.out = work / "records.jsonl"
        self.config = JvmKclConfig(application_name=name, stream_name=stream,
                                   processor=f"{sys.executable} -m tests.e2e.kcl_recorder",
                                   kinesis_endpoint=stack.kinesis_endpoint, dynamodb_endpoint=stack.dynamodb_endpoint)
        self.properties = work / "app.properties"
        self.properties.write_text(self.config.properties_text())
        self.runs = 0

    def env(self, side: str, cut: str | None, hang: str | None = None) -> dict[str, str]:
        self.runs += 1
        env = {"RECORDER_SIDE": side, "RECORDER_RUN": str(self.runs), "RECORDER_OUT": str(self.out), "PYTHONPATH": str(ROOT),
               "RECORDER_CUT_MARK": str(self.cut_mark(self.runs))}
        if cut:
            env["RECORDER_CUT"] = cut
        if hang:
            env["RECORDER_HANG_AT"] = hang
        return env

    def cut_mark(self, run: int) -> Path:
        return self.work / f"cut-{run}"

    def kcl(self, cut: str | None = None, hang: str | None = None) -> JvmKcl:
        # No KCL worker of the application runs now: a leader lock left by a KCL that was killed (or whose
        # shutdown timed out) is stale, and would hold lease assignment back for 2 minutes.
        release_leader_lock(application_name=self.name, dynamodb_endpoint=self.stack.dynamodb_endpoint)
        kcl = JvmKcl(self.config, work_dir=self.work / f"kcl-{self.runs + 1}", env=self.env("kcl", cut, hang),
                     java_options=FAST_START)
        _STARTED.append(kcl)
        return kcl.start()

    def streamkit_process(self, cut: str | None = None, hang: str | None = None) -> subprocess.Popen[str]:
        env = {**os.environ, **self.env("streamkit", cut, hang), "AWS_ACCESS_KEY_ID": "local",
               "AWS_SECRET_ACCESS_KEY": "local"}
        proc = subprocess.Popen([sys.executable, "-m", "streamkit.cli.main", "kcl", "run", "--properties",
                                 str(self.properties), "--processor", "tests.e2e.kcl_recorder:Recorder",
                                 "--endpoint-url", self.stack.kinesis_endpoint, "--stop-after-idle", "4"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        _STARTED.append(proc)
        return proc

    def streamkit(self, cut: str | None = None) -> None:
        proc = self.streamkit_process(cut)
        try:
            _out, err = proc.communicate(timeout=90)
        finally:
            proc.kill()
        assert proc.returncode == 0, err[-2000:]

    def wait_for_mark(self, run: int, *, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.cut_mark(run).exists():
            assert time.monotonic() < deadline, f"run {run} of {self.name} never reached its mark"
            time.sleep(0.1)

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

    def checkpoints(self) -> dict[str, int]:
        """Each shard's checkpointed sequence number in the lease table now (0 for a sentinel: TRIM_HORIZON)."""
        ddb = aws_client("dynamodb", endpoint_url=self.stack.dynamodb_endpoint, region="us-east-1")
        items = ddb.scan(TableName=self.name, ConsistentRead=True)["Items"]
        return {i["leaseKey"]["S"]: int(i["checkpoint"]["S"]) if i["checkpoint"]["S"].isdigit() else 0 for i in items}

    def counts(self, put: list[str]) -> dict[str, int]:
        seen = Counter(r["data"] for r in self.lines())
        sides = Counter(r["side"] for r in self.lines())
        return {"records": len(put), "kcl": sides["kcl"], "streamkit": sides["streamkit"],
                "duplicates": sum(n - 1 for n in seen.values() if n > 1), "skipped": len(set(put) - set(seen)),
                "unknown": len(set(seen) - set(put))}


class Stream:
    def __init__(self, stack: LocalStack, name: str = STREAM, shards: int = 2) -> None:
        self.name = name
        self.client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, region="us-east-1")
        self.client.create_stream(StreamName=name, ShardCount=shards)
        self.wait_active()
        self.put: list[str] = []

    def wait_active(self) -> None:
        deadline = time.monotonic() + 30
        while self.client.describe_stream_summary(StreamName=self.name)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
            assert time.monotonic() < deadline
            time.sleep(0.05)

    def plain(self, prefix: str, n: int, *, keys: int = 0) -> list[str]:
        """`n` plain records; alternately into the two shards, or (with `keys`) under keys k0..k{keys-1}."""
        data = [f"{prefix}-{i}" for i in range(n)]
        self.client.put_records(StreamName=self.name, Records=[
            {"Data": d.encode(), "PartitionKey": f"k{i % keys}"} if keys else
            {"Data": d.encode(), "PartitionKey": d, "ExplicitHashKey": (LOWER, UPPER)[i % 2]} for i, d in enumerate(data)])
        self.put += data
        return data

    def open_shards(self) -> list[str]:
        shards = self.client.list_shards(StreamName=self.name)["Shards"]
        return [s["ShardId"] for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]

    def split(self, shard_id: str) -> None:
        self.client.split_shard(StreamName=self.name, ShardToSplit=shard_id, NewStartingHashKey=str(2**127))
        self.wait_active()

    def merge(self, shard_id: str, adjacent: str) -> None:
        self.client.merge_shards(StreamName=self.name, ShardToMerge=shard_id, AdjacentShardToMerge=adjacent)
        self.wait_active()

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


def in_order_per_key(lines: list[dict[str, Any]]) -> bool:
    """Each key's records were processed in the order they were put (parents before children)."""
    last: dict[str, tuple[int, int]] = {}
    batches = {"r1": 1, "r2": 2, "r3": 3, "r4": 4}
    for r in lines:
        prefix, i = r["data"].split("-")
        pos = (batches[prefix], int(i))
        key = f"k{int(i) % 6}"
        if key in last and pos < last[key]:
            return False
        last[key] = pos
    return True


def test_reshards_across_hand_overs_parents_before_children_written_by_one_side_honoured_by_the_other(
        stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """streamkit -> (split) -> KCL -> (merge) -> streamkit -> (split) -> KCL; two JVM starts, 60-100 s."""
    started = time.monotonic()
    stream = Stream(stack, "interop-reshard", shards=1)
    app = App("interop-reshard", stack, tmp_path / "c", stream=stream.name)
    prepare_tables(application_name=app.name, dynamodb_endpoint=stack.dynamodb_endpoint)
    stream.plain("r1", 30, keys=6)
    app.streamkit()
    (parent,) = stream.open_shards()
    stream.split(parent)  # after streamkit stopped: the KCL reads the parent to its end first
    stream.plain("r2", 30, keys=6)
    kcl = app.kcl()
    app.wait_for(set(stream.put), kcl)
    kcl.stop()
    left, right = sorted(stream.open_shards())
    stream.merge(left, right)  # the KCL's child leases, then a merge streamkit must follow
    stream.plain("r3", 30, keys=6)
    app.streamkit()
    (merged,) = stream.open_shards()
    stream.split(merged)
    stream.plain("r4", 30, keys=6)
    kcl = app.kcl()
    app.wait_for(set(stream.put), kcl)
    kcl.stop()

    counts = app.counts(stream.put)
    ddb = aws_client("dynamodb", endpoint_url=stack.dynamodb_endpoint, region="us-east-1")
    leases = {i["leaseKey"]["S"]: i for i in ddb.scan(TableName=app.name)["Items"]}
    with capsys.disabled():
        print(f"\nKCL interop reshard (split, merge, split): {counts}, {len(leases)} leases, "
              f"{time.monotonic() - started:.0f} s")
    assert counts["duplicates"] == 0 and counts["skipped"] == 0 and counts["unknown"] == 0, counts
    assert in_order_per_key(app.lines())
    sides = {r["data"].split("-")[0]: r["side"] for r in app.lines()}
    assert sides == {"r1": "streamkit", "r2": "kcl", "r3": "streamkit", "r4": "kcl"}
    # Parents end at SHARD_END (the KCL may already have deleted a finished parent's lease, as its
    # LeaseCleanupManager does); children name their parents, whichever side created their leases.
    parents = {parent: set(), left: {parent}, right: {parent}, merged: {left, right}}
    for shard, its_parents in parents.items():
        if shard in leases:
            assert leases[shard]["checkpoint"]["S"] == "SHARD_END", leases[shard]
            assert set(leases[shard].get("parentShardId", {}).get("SS", [])) == its_parents, leases[shard]
    newest = set(leases) - set(parents)
    assert len(newest) == 2 and all(set(leases[k]["parentShardId"]["SS"]) == {merged} for k in newest), leases


def test_a_worker_killed_mid_batch_is_taken_over_by_the_other_side_after_its_lease_expires(
        stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """streamkit SIGKILLed mid-batch -> KCL; KCL SIGKILLed mid-batch -> streamkit. Duplicates are only records
    of batches the killed workers never checkpointed; none lost. One JVM start, 20-50 s."""
    started = time.monotonic()
    stream = Stream(stack, "interop-crash", shards=2)
    app = App("interop-crash", stack, tmp_path / "d", stream=stream.name)
    prepare_tables(application_name=app.name, dynamodb_endpoint=stack.dynamodb_endpoint)
    first = stream.plain("x1", 60)
    worker = app.streamkit_process(hang=first[40])  # lower shard: hangs after recording x1-0, 2, ..., 40
    try:
        app.wait_for_mark(app.runs, timeout=60)
    finally:
        worker.kill()
        worker.wait()
    at_kill = {1: app.checkpoints()}  # nothing writes to the table until the next worker starts
    second = stream.plain("x2", 60)
    kcl = app.kcl(hang=second[41])  # upper shard
    try:
        app.wait_for_mark(app.runs, timeout=90)
    finally:
        kcl.kill()
    at_kill[2] = app.checkpoints()
    app.streamkit()

    counts = app.counts(stream.put)
    seen = Counter(r["data"] for r in app.lines())
    twice = {d for d, n in seen.items() if n > 1}
    with capsys.disabled():
        print(f"\nKCL interop crash (streamkit killed, then the KCL killed): {counts}, "
              f"{time.monotonic() - started:.0f} s")
    assert counts["skipped"] == 0 and counts["unknown"] == 0, counts
    assert twice, "a worker killed mid-batch left nothing uncheckpointed: the test did not kill mid-batch"
    # Only a killed worker's work is repeated (its batches in flight, never checkpointed): of a record seen
    # n times, every occurrence but the last is from a killed run (1 or 2), so n <= 3.
    runs: dict[str, list[int]] = {}
    for r in app.lines():
        runs.setdefault(r["data"], []).append(r["run"])
    assert all(set(seq[:-1]) <= {1, 2} for seq in runs.values()), {d: seq for d, seq in runs.items() if len(seq) > 1}
    assert first[40] in twice and second[41] in twice  # the records each worker hung on
    # Bounded by what was not checkpointed: a record a killed run processed is processed again only if it
    # lay past its shard's checkpoint when that run was killed (the next owner resumed at the checkpoint).
    occurrences: dict[str, list[tuple[int, str, int]]] = {}
    for r in app.lines():
        occurrences.setdefault(r["data"], []).append((r["run"], r["shard"], int(r["seq"])))
    behind = {d: occ for d, occ in occurrences.items()
              if any(seq <= at_kill[run].get(shard, 0) for run, shard, seq in occ[:-1])}
    assert not behind, (at_kill, behind)
