"""Worker processes over two streams and one KCL lease table (kinesalite + dynalite): graceful handoff when
a worker joins (no duplicate, no loss), a SIGKILLed worker (no loss), and balancing by load."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from producer import Producer, ProducerConfig
from streamkit.checkpoints import DynamoDBCheckpointStore, Lease
from streamkit.testing import StreamHandle
from tests.integration.helpers import kcl_identifier

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WORKER = Path(__file__).with_name("consumer_worker.py")
LEASE_DURATION = 4.0


class Logs:
    """Reads the workers' JSON-lines logs incrementally (a line cut by SIGKILL is skipped)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.offsets: dict[Path, int] = defaultdict(int)
        self.events: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        for path in self.paths:
            if not path.exists():
                continue
            with path.open("rb") as f:
                f.seek(self.offsets[path])
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1
            self.offsets[path] += end
            for line in chunk[:end].splitlines():
                try:
                    self.events.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    pass
        return self.events

    def records(self) -> list[dict[str, Any]]:
        return [e for e in self.poll() if e.get("ev") == "rec"]


def produce(stream: StreamHandle, prefix: str, start: int, n: int) -> set[tuple[str, str]]:
    # Small aggregates (~130 records) so that batches, checkpoints and handoffs fall at many places.
    with Producer(stream.name, client=stream.client, config=ProducerConfig(aggregation_max_size=16 * 1024)) as p:
        for i in range(start, start + n):
            p.put(f"{prefix}{i}".encode(), f"key-{i % 200}")
    return {(stream.name, f"{prefix}{i}") for i in range(start, start + n)}


def start_worker(wid: str, streams: list[StreamHandle], table: str, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    stack = streams[0].stack
    args = [sys.executable, str(WORKER), "--endpoint", stack.kinesis_endpoint, "--table", table, "--layout", "kcl",
            "--dynamodb-endpoint", stack.dynamodb_endpoint, "--worker-id", wid, "--app", "multi",
            "--log", str(tmp_path / f"{wid}.log"), "--lease-duration", str(LEASE_DURATION), *extra]
    for s in streams:
        args += ["--stream", s.name]
    return subprocess.Popen(args, env={**os.environ})


def wait_for(what: str, cond: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_a_fourth_worker_joins_by_graceful_handoff_and_a_sigkill_loses_nothing(
        stream_factory: Any, dynamodb_client: Any, tmp_path: Path) -> None:
    a, b = stream_factory(shards=4), stream_factory(shards=4)
    sent = produce(a, "a", 0, 25_000) | produce(b, "b", 0, 25_000)
    table = f"kcl-{uuid.uuid4().hex[:8]}"
    store = DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl")
    slow = ("--max-records", "6", "--checkpoint-every", "25", "--slow", "0.05")
    procs = {w: start_worker(w, [a, b], table, tmp_path, *slow) for w in ("w0", "w1", "w2")}
    logs = Logs([tmp_path / f"w{i}.log" for i in range(4)])
    try:
        wait_for("10,000 records", lambda: len(logs.records()) >= 10_000, 120)
        procs["w3"] = start_worker("w3", [a, b], table, tmp_path, *slow)

        def balanced() -> bool:
            owners = Counter(lease.owner for lease in store.list_leases("ignored"))
            return sorted(owners.values()) == [2, 2, 2, 2] and None not in owners

        wait_for("2 leases for each of 4 workers", balanced, 60)
        wait_for("all 50,000 records", lambda: {(r["st"], r["d"]) for r in logs.records()} >= sent, 240)
        recs = logs.records()
        seen = Counter((r["st"], r["d"]) for r in recs)
        # Phase 1: every record, none twice, though leases moved (at the start and when w3 joined).
        assert set(seen) == sent
        assert [k for k, n in seen.items() if n > 1] == []
        moved = [e for e in logs.events if e.get("ev") == "shutdown"]  # no worker stopped yet: all handoffs
        assert len(moved) >= 2 and all(e["h"] for e in moved), moved
        assert any(e["h"] == "w3" for e in moved), "nothing was handed to the fourth worker"
        assert any(r["w"] == "w3" for r in recs), "the fourth worker processed nothing"

        # Phase 2: SIGKILL w1 while it processes; its leases expire and are taken; nothing is lost.
        before = len(recs)
        more = produce(a, "a", 25_000, 4_000) | produce(b, "b", 25_000, 4_000)
        wait_for("w1 working on new records",
                 lambda: sum(1 for r in logs.records()[before:] if r["w"] == "w1") >= 200, 120)
        procs["w1"].send_signal(signal.SIGKILL)
        procs["w1"].wait()
        wait_for("all 58,000 records", lambda: {(r["st"], r["d"]) for r in logs.records()} >= sent | more, 240)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    for w, p in procs.items():
        assert p.returncode == (-signal.SIGKILL if w == "w1" else 0), (w, p.returncode)
    recs = logs.records()
    seen = Counter((r["st"], r["d"]) for r in recs)
    assert set(seen) == sent | more
    dups = {k for k, n in seen.items() if n > 1}
    assert not dups & sent  # phase 1 stays duplicate-free
    # Redone records after the kill lie only in the shards w1 held (after its last checkpoint).
    w1_shards = {(r["st"], r["s"]) for r in recs if r["w"] == "w1"}
    assert all((r["st"], r["s"]) in w1_shards for r in recs if (r["st"], r["d"]) in dups)
    for lease in store.list_leases("ignored"):
        assert lease.owner is None and lease.checkpoint_owner is None, lease  # all released on SIGTERM
        assert lease.stream is not None and lease.key.endswith(lease.shard_id)


def test_balancing_by_load_spreads_a_hot_streams_leases(stream_factory: Any, dynamodb_client: Any,
                                                        tmp_path: Path) -> None:
    hot, cold = stream_factory(shards=4), stream_factory(shards=4)
    table = f"kcl-load-{uuid.uuid4().hex[:8]}"
    store = DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl")
    idents = {s.name: kcl_identifier(s) for s in (hot, cold)}
    # The start is balanced by count but not by load: w0 and w1 hold the hot stream's four leases.
    owners = ["w0", "w0", "w1", "w1"]
    for s, who in ((hot, owners), (cold, ["w2", "w2", "w3", "w3"])):
        shards = sorted(x["ShardId"] for x in s.client.list_shards(StreamName=s.name)["Shards"])
        for shard, w in zip(shards, who, strict=True):
            store.create_lease("ignored", Lease(shard_id=shard, stream=idents[s.name], owner=w))
    stop = threading.Event()

    def write() -> None:  # hot: ~10x the bytes of cold, spread evenly over the shards
        rnd = random.Random(7)
        with Producer(hot.name, client=hot.client) as ph, Producer(cold.name, client=cold.client) as pc:
            i = 0
            while not stop.is_set():
                ph.put(b"h" * 500, "k", explicit_hash_key=rnd.getrandbits(128))
                if i % 10 == 0:
                    pc.put(b"c" * 500, "k", explicit_hash_key=rnd.getrandbits(128))
                i += 1
                if i % 50 == 0:
                    time.sleep(0.1)

    writer = threading.Thread(target=write)
    writer.start()
    procs = {w: start_worker(w, [hot, cold], table, tmp_path, "--balance", "load") for w in ("w0", "w1", "w2", "w3")}
    spread_since: float | None = None
    last: list[Lease] = []
    try:
        deadline = time.monotonic() + 240  # a hang guard only; "stays so for 8 s" below is a lower bound
        while time.monotonic() < deadline:
            last = store.list_leases("ignored")
            per = Counter(lease.owner for lease in last if lease.stream == idents[hot.name])
            if sorted(per.values()) == [1, 1, 1, 1] and None not in per:
                spread_since = spread_since or time.monotonic()
                if time.monotonic() - spread_since >= 8:  # and it stays so: no flapping back
                    break
            else:
                spread_since = None
            time.sleep(0.25)
    finally:
        stop.set()
        writer.join()
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            p.wait(30)
    loads = {(lease.stream, lease.shard_id, lease.owner): lease.throughput_kbps for lease in last}
    assert spread_since is not None and time.monotonic() - spread_since >= 8, f"hot leases not spread: {loads}"
    hot_kbps = [lease.throughput_kbps or 0 for lease in last if lease.stream == idents[hot.name]]
    cold_kbps = [lease.throughput_kbps or 0 for lease in last if lease.stream == idents[cold.name]]
    assert min(hot_kbps) > 4 * max(cold_kbps), loads  # the owners measured the hot stream as hot
