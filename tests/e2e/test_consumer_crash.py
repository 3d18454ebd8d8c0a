"""Crash safety with real servers: a consumer SIGKILLed at random moments loses nothing and redoes only
what lies after its last checkpoint."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from producer import Producer, ProducerConfig
from streamkit.checkpoints import Checkpoint, SqliteCheckpointStore
from streamkit.testing import StreamHandle

pytestmark = [pytest.mark.integration, pytest.mark.slow]
WORKER = Path(__file__).with_name("consumer_worker.py")


def position(seq: str, sub: int | None) -> tuple[int, int]:
    return Checkpoint(seq, sub).position()


def read_log(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            pass  # a line cut by SIGKILL mid-write
    return out


@pytest.mark.streamkit(shards=4)
def test_sigkilled_consumer_resumes_from_its_checkpoints_and_loses_nothing(kinesis_stream: StreamHandle,
                                                                           tmp_path: Path) -> None:
    n_keys, n = 200, 50_000
    # Small aggregates (~130 records) so that batches, checkpoints and kills fall at many places.
    with Producer(kinesis_stream.name, client=kinesis_stream.client,
                  config=ProducerConfig(aggregation_max_size=16 * 1024)) as p:
        for i in range(n):
            p.put(f"{i % n_keys}:{i}".encode(), f"key-{i % n_keys}")
    db = tmp_path / "checkpoints.db"
    rng = random.Random(5)
    base = [sys.executable, str(WORKER), "--endpoint", kinesis_stream.stack.kinesis_endpoint, "--stream",
            kinesis_stream.name, "--sqlite", str(db), "--lease-duration", "1.0", "--max-records", "6",
            "--checkpoint-every", "50", "--slow", "0.02"]
    checkpoints_after_kill: list[dict[str, Checkpoint]] = []
    kills = 0
    for run in range(6):
        proc = subprocess.Popen([*base, "--log", str(tmp_path / f"run{run}.log"), "--worker-id", f"run{run}"],
                                env={**os.environ})
        # Kill only once this run has processed something: a kill before its first batch proves little.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(r.get("ev") == "cp" for r in read_log(tmp_path / f"run{run}.log")):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        store = SqliteCheckpointStore(db)
        checkpoints_after_kill.append({lease.shard_id: lease.checkpoint for lease in store.list_leases(
            f"crash-app/{kinesis_stream.name}")})
        store.close()
    final = subprocess.run([*base, "--log", str(tmp_path / "final.log"), "--worker-id", "final",
                            "--stop-after-idle", "1.5"], timeout=240, check=False)
    assert final.returncode == 0
    assert kills >= 5

    runs = [read_log(tmp_path / f"run{i}.log") for i in range(6)] + [read_log(tmp_path / "final.log")]
    recs = [[r for r in run if r.get("ev") == "rec"] for run in runs]
    # 1. Every record was processed.
    seen = {str(r["d"]) for run in recs for r in run}
    assert seen == {f"{i % n_keys}:{i}" for i in range(n)}
    # 2. Within each run, each key's records came in order.
    for run in recs:
        last: dict[str, int] = {}
        for r in run:
            key, idx = str(r["d"]).split(":")
            assert int(idx) > last.get(key, -1)
            last[key] = int(idx)
    # 3. What a run did again lies after the checkpoint its killed predecessor left.
    processed_before: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for i, run in enumerate(recs):
        if i > 0:
            cps = checkpoints_after_kill[i - 1]
            for r in run:
                pos = position(str(r["q"]), r["u"])  # type: ignore[arg-type]
                if pos in processed_before[str(r["s"])]:
                    cp = cps[str(r["s"])]
                    assert not cp.is_sentinel and pos > cp.position(), (r, cp)
        for r in run:
            processed_before[str(r["s"])].add(position(str(r["q"]), r["u"]))  # type: ignore[arg-type]
    # 4. Restarts really did resume inside aggregates (a checkpoint at a sub-record that was not the last).
    assert any(cp.sub_sequence_number not in (None, 0) for cps in checkpoints_after_kill for cp in cps.values()
               if not cp.is_sentinel)
