"""Consumer throughput against local kinesalite: streamkit's Consumer vs async-kinesis's, in one run.

Two 4-shard streams hold the same 100k readings of 100 bytes: one as plain records, one KPL-aggregated.
Each consumer reads a whole stream from TRIM_HORIZON through retrieval, deaggregation and a no-op
per-record handler; the clock stops when the last record has been handed over. Prints user records/s
and the ratios.

Run: make bench   (or .venv/bin/python bench/consumer.py [--records N])
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kinesis import Consumer as AsyncConsumer
from kinesis.processors import KPLStringProcessor, StringProcessor

from producer import Producer, ProducerConfig
from streamkit import kinesis as sk_kinesis
from streamkit.aws.clients import aws_client
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.local import stack as local_stack
from streamkit.records import StreamRecord

SHARDS = 4


def fill(client: Any, stream: str, n: int, aggregated: bool) -> None:
    sk_kinesis.create_stream(client, stream, SHARDS)
    with Producer(stream, client=client, config=ProducerConfig(aggregation=aggregated, rate_limit=0)) as p:
        futures = [p.put(f"reading {i:08d} ".ljust(100, "x").encode(), f"sensor-{i % 1000}") for i in range(n)]
    failed = sum(1 for f in futures if f.exception() is not None)
    assert failed == 0, f"{failed} records could not be written"


def run_streamkit(client: Any, stream: str, n: int) -> float:
    count = 0
    done = threading.Event()
    t0 = time.perf_counter()
    elapsed = 0.0

    def handle(record: StreamRecord) -> None:  # the no-op handler, plus counting to know when to stop
        nonlocal count, elapsed
        count += 1
        if count == n:
            elapsed = time.perf_counter() - t0
            done.set()

    consumer = Consumer(stream, handle, application_name="bench", checkpoint_store=MemoryCheckpointStore(),
                        client=client, config=ConsumerConfig(min_poll_interval=0.0, idle_poll_interval=0.05))
    runner = threading.Thread(target=consumer.run, kwargs={"install_signal_handlers": False})
    runner.start()
    done.wait(300)
    consumer.stop()
    runner.join()
    assert count == n, (count, n)
    return elapsed


def run_async_kinesis(endpoint: str, stream: str, n: int, aggregated: bool) -> float:
    async def go() -> float:
        count = 0
        t0 = time.perf_counter()
        async with AsyncConsumer(stream, endpoint_url=endpoint, region_name="us-east-1",
                                 processor=KPLStringProcessor() if aggregated else StringProcessor(),
                                 sleep_time_no_records=0.05, iterator_type="TRIM_HORIZON") as consumer:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                # Its iterator ends whenever its queue runs dry for a moment; iterate again until all came.
                async for _item in consumer:
                    count += 1
                    if count == n:
                        return time.perf_counter() - t0
        raise AssertionError(f"async-kinesis stopped after {count} of {n}")

    return asyncio.run(go())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    args = ap.parse_args()
    n = args.records
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-consumer-") as tmp:
        stack = local_stack.up(data_dir=Path(tmp), persist=False)
        try:
            client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=3, max_pool_connections=16)
            for aggregated in (False, True):
                stream = "bench-aggregated" if aggregated else "bench-plain"
                fill(client, stream, n, aggregated)
                t_ak = run_async_kinesis(stack.kinesis_endpoint, stream, n, aggregated)
                t_sk = run_streamkit(client, stream, n)
                rows.append((stream, n / t_sk, n / t_ak))
        finally:
            local_stack.down(data_dir=Path(tmp))
    print(f"consumer throughput, {n:,} records of 100 B, {SHARDS} shards, local kinesalite, no-op handler")
    print()
    print(f"{'stream':<20} {'streamkit rec/s':>16} {'async-kinesis rec/s':>20} {'ratio':>7}")
    for stream, sk, ak in rows:
        print(f"{stream:<20} {sk:>16,.0f} {ak:>20,.0f} {sk / ak:>6.1f}x")


if __name__ == "__main__":
    main()
