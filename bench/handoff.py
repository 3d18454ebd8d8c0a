"""Lease moves: graceful handoff (the default) against taking the lease at once (graceful_handoff=False).

One run, both modes in turn, each on fresh streams and a fresh KCL lease table of the local stack
(kinesalite + dynalite): 2 streams x 4 shards, N readings each (KPL-aggregated, ~130 per Kinesis
record), a handler that takes 1 ms per record; 3 workers (threads, each its own Consumer and
DynamoDB store) start together, a 4th joins once a quarter is processed. Every balancing move is
counted (from the consumers' log), every record processed more than once, and the seconds from the
4th worker's start until it holds its 2 leases.

Run: .venv/bin/python bench/handoff.py [--readings 20000]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from producer import Producer, ProducerConfig
from streamkit import kinesis as sk_kinesis
from streamkit.aws.clients import aws_client
from streamkit.checkpoints import DynamoDBCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.local import stack as local_stack
from streamkit.records import StreamRecord

SHARDS = 4


class MoveCounter(logging.Handler):
    """Counts the consumers' balancing moves: a handoff asked for, or a lease taken at once."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.moves = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "to balance" in text and (text.startswith("asked ") or text.startswith("taking ")):
            self.moves += 1


def run_mode(graceful: bool, stack: local_stack.LocalStack, readings: int) -> dict[str, float]:
    kinesis = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=3, max_pool_connections=64)
    dynamodb = aws_client("dynamodb", endpoint_url=stack.dynamodb_endpoint, retries=3, max_pool_connections=32)
    tag = "graceful" if graceful else "forced"
    streams = [f"handoff-{tag}-{i}-{time.time_ns()}" for i in range(2)]
    for name in streams:
        sk_kinesis.create_stream(kinesis, name, SHARDS)
        with Producer(name, client=kinesis, config=ProducerConfig(aggregation_max_size=16 * 1024)) as p:
            for i in range(readings):
                p.put(f"{name}:{i}".encode(), f"sensor-{i % 200}")
    seen: Counter[bytes] = Counter()
    lock = threading.Lock()

    def handle(record: StreamRecord) -> None:
        time.sleep(0.001)
        with lock:
            seen[record.data] += 1

    table = f"handoff-{tag}-{time.time_ns()}"
    counter = MoveCounter()
    logging.getLogger("streamkit.consumer").addHandler(counter)
    logging.getLogger("streamkit.consumer").setLevel(logging.INFO)

    def worker(wid: str) -> Consumer:
        store = DynamoDBCheckpointStore(table, client=dynamodb, layout="kcl")
        return Consumer(streams, handle, application_name="bench-handoff", checkpoint_store=store, client=kinesis,
                        config=ConsumerConfig(worker_id=wid, lease_duration=4.0, max_records=6, idle_poll_interval=0.2,
                                              graceful_handoff=graceful))

    consumers = [worker(f"w{i}") for i in range(3)]
    threads = [threading.Thread(target=c.run, kwargs={"install_signal_handlers": False}) for c in consumers]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    total = 2 * readings
    while sum(seen.values()) < total // 4 and time.monotonic() - t0 < 300:
        time.sleep(0.05)
    late = worker("w3")
    consumers.append(late)
    threads.append(threading.Thread(target=late.run, kwargs={"install_signal_handlers": False}))
    joined = time.monotonic()
    threads[-1].start()
    balanced_after = float("nan")
    check = DynamoDBCheckpointStore(table, client=dynamodb, layout="kcl")
    while time.monotonic() - t0 < 600:
        with lock:
            done = len(seen) >= total
        if balanced_after != balanced_after:  # not yet balanced
            owners = Counter(lease.owner for lease in check.list_leases("bench") if lease.checkpoint_owner is None)
            if owners.get("w3") == 2:
                balanced_after = time.monotonic() - joined
        if done and balanced_after == balanced_after:
            break
        time.sleep(0.1)
    wall = time.monotonic() - t0
    for c in consumers:
        c.stop()
    for t in threads:
        t.join(30)
    logging.getLogger("streamkit.consumer").removeHandler(counter)
    assert len(seen) == total, f"{tag}: read {len(seen)} of {total}"
    return {"records": total, "moves": counter.moves, "duplicates": sum(n - 1 for n in seen.values() if n > 1),
            "balanced_s": balanced_after, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=20_000, help="per stream")
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    logging.basicConfig(level=logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)  # the INFO lines are counted, not printed
    with tempfile.TemporaryDirectory(prefix="bench-handoff-") as tmp:
        stack = local_stack.up(data_dir=Path(tmp), persist=False)
        try:
            rows = {"forced (graceful_handoff=False)": run_mode(False, stack, args.readings),
                    "graceful (default)": run_mode(True, stack, args.readings)}
        finally:
            local_stack.down(data_dir=Path(tmp))
    print(f"lease moves: 2 streams x {SHARDS} shards, {args.readings:,} readings each, 3 workers + 1 joining, "
          "kinesalite + dynalite")
    print()
    print(f"{'mode':<32} {'records':>8} {'moves':>6} {'processed twice':>16} {'per move':>9} {'4th balanced s':>15} "
          f"{'wall s':>7}")
    for mode, r in rows.items():
        per = r["duplicates"] / r["moves"] if r["moves"] else 0.0
        print(f"{mode:<32} {r['records']:>8,} {r['moves']:>6} {r['duplicates']:>16,} {per:>9.0f} "
              f"{r['balanced_s']:>15.1f} {r['wall_s']:>7.1f}")
    forced, graceful = rows.values()
    print()
    print(f"graceful / forced: records processed twice {graceful['duplicates']:,} vs {forced['duplicates']:,}; "
          f"time for the 4th worker to hold its share {graceful['balanced_s'] / forced['balanced_s']:.2f}x")


if __name__ == "__main__":
    main()
