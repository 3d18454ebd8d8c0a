"""Consumer memory: peak RSS growth reading 1M and 3M aggregated readings from kinesalite directly.

kinesalite ignores AWS's 10 MiB per GetRecords call and returns up to `Limit` records whatever their
size, so a reader that asks for 10,000 aggregates gets the whole stream in one response. streamkit's
reader sizes each call to `ConsumerConfig.max_fetch_bytes` (4 MiB per shard by default) instead.

Each read runs in a child process of its own: its peak RSS (ru_maxrss) minus its RSS once the
consumer is built and before the first record is read. The parent writes the readings (100 B, 1,000
keys, 4 shards, KPL-aggregated) and prints the growth for each size and the difference.

Run: .venv/bin/python bench/consumer_memory.py [--sizes 1000000,3000000] [--max-fetch-bytes N]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from producer import Producer, ProducerConfig
from streamkit import kinesis as sk_kinesis
from streamkit.aws.clients import aws_client
from streamkit.local import stack as local_stack

SHARDS = 4
MIB = 1024 * 1024


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(endpoint: str, stream: str, n: int, max_fetch_bytes: int) -> None:
    from streamkit.checkpoints import MemoryCheckpointStore
    from streamkit.consumer import Consumer, ConsumerConfig
    from streamkit.records import StreamRecord

    client = aws_client("kinesis", endpoint_url=endpoint, retries=3, max_pool_connections=8)
    count = 0
    done = threading.Event()

    def handle(record: StreamRecord) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    consumer = Consumer(stream, handle, application_name="bench-memory", checkpoint_store=MemoryCheckpointStore(),
                        client=client, config=ConsumerConfig(min_poll_interval=0.0, idle_poll_interval=0.05,
                                                             max_fetch_bytes=max_fetch_bytes))
    base = rss_mib()
    t0 = time.perf_counter()
    runner = threading.Thread(target=consumer.run, kwargs={"install_signal_handlers": False})
    runner.start()
    done.wait(600)
    consumer.stop()
    runner.join()
    print(f"{count} {base:.1f} {rss_mib():.1f} {time.perf_counter() - t0:.1f}")


def fill(client: object, stream: str, n: int) -> None:
    sk_kinesis.create_stream(client, stream, SHARDS)
    with Producer(stream, client=client, config=ProducerConfig(rate_limit=0, record_max_buffered_time=1.0)) as p:
        send = p.send
        for i in range(n):
            send(f"reading {i:08d} ".ljust(100, "x").encode(), f"sensor-{i % 1000}")
        p.flush()
        assert p.metrics()["user_records_failed"] == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,3000000")
    ap.add_argument("--max-fetch-bytes", type=int, default=4 * MIB)
    ap.add_argument("--child", nargs=3, metavar=("ENDPOINT", "STREAM", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), args.max_fetch_bytes)
        return
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        stack = local_stack.up(data_dir=Path(tmp), persist=False)
        try:
            client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=3, max_pool_connections=16)
            for n in (int(x) for x in args.sizes.split(",")):
                stream = f"memory-{n}"
                fill(client, stream, n)
                out = subprocess.run([sys.executable, __file__, "--child", stack.kinesis_endpoint, stream, str(n),
                                      "--max-fetch-bytes", str(args.max_fetch_bytes)],
                                     capture_output=True, text=True, timeout=900, check=True).stdout.split()
                count, base, peak, seconds = int(out[0]), float(out[1]), float(out[2]), float(out[3])
                assert count == n, f"read {count} of {n}"
                rows.append((n, base, peak, seconds))
        finally:
            local_stack.down(data_dir=Path(tmp))
    print(f"consumer memory: aggregated readings of 100 B, {SHARDS} shards, kinesalite directly, "
          f"max_fetch_bytes={args.max_fetch_bytes:,}")
    print()
    print(f"{'readings':>10} {'RSS at start MiB':>17} {'peak MiB':>9} {'growth MiB':>11} {'read in s':>10}")
    for n, base, peak, seconds in rows:
        print(f"{n:>10,} {base:>17.1f} {peak:>9.1f} {peak - base:>11.1f} {seconds:>10.1f}")
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        print()
        print(f"growth at {last[0]:,} minus growth at {first[0]:,}: "
              f"{(last[2] - last[1]) - (first[2] - first[1]):.1f} MiB")


if __name__ == "__main__":
    main()
