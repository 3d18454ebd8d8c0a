"""An async consumer handler spending 5 ms in ``await`` per record, over 8 shards, against local kinesalite.

Each shard's records are handled one after another, in order, so one shard can do at most 200 records/s
and 8 shards 1,600/s. The handlers of all shards await on streamkit.aio's one event loop. Beside it, in
the same run, the same work as a plain handler (``time.sleep(0.005)``, a thread per shard). Prints
records/s and the ratio to the 8 x 200 records/s ceiling; every record is counted back.

Run: .venv/bin/python bench/async_consumer.py [--records N]
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

from producer import Producer, ProducerConfig
from streamkit import kinesis as sk_kinesis
from streamkit.aws.clients import aws_client
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.local import stack as local_stack
from streamkit.records import StreamRecord

SHARDS = 8
PER_RECORD = 0.005
CEILING = SHARDS / PER_RECORD


def run(client: Any, stream: str, handler: Any, expected: int) -> float:
    """Records/s from the first record handled to the last (startup and the idle tail left out)."""
    times: list[float] = []
    lock = threading.Lock()

    def note() -> None:
        with lock:
            times.append(time.perf_counter())

    consumer = Consumer(stream, handler(note), application_name=f"bench-{time.time_ns()}",
                        checkpoint_store=MemoryCheckpointStore(), client=client,
                        config=ConsumerConfig(max_records=1000, idle_poll_interval=0.2))
    consumer.run(install_signal_handlers=False, stop_after_idle=1.0)
    assert len(times) == expected, f"handled {len(times)} of {expected}"
    return (len(times) - 1) / (max(times) - min(times))


def async_handler(note: Any) -> Any:
    async def handle(record: StreamRecord) -> None:
        await asyncio.sleep(PER_RECORD)
        note()

    return handle


def thread_handler(note: Any) -> Any:
    def handle(record: StreamRecord) -> None:
        time.sleep(PER_RECORD)
        note()

    return handle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=8_000)
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    with tempfile.TemporaryDirectory(prefix="bench-async-consumer-") as tmp:
        stack = local_stack.up(data_dir=Path(tmp), persist=False)
        try:
            client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=0, max_pool_connections=32)
            sk_kinesis.create_stream(client, "readings", SHARDS)
            # The same number of records in every shard (an explicit hash key each), so that the
            # ceiling is 8 x 200 records/s for the whole run, not the busiest shard's share of it.
            shards = sk_kinesis.list_shards(client, "readings")
            with Producer("readings", client=client, config=ProducerConfig(rate_limit=0)) as p:
                for i in range(args.records):
                    p.send(b"%d" % i, f"sensor-{i % 500}", shards[i % SHARDS].starting_hash_key)
            rates = {"async def, await asyncio.sleep(5 ms)": run(client, "readings", async_handler, args.records),
                     "plain def, time.sleep(5 ms), a thread per shard": run(client, "readings", thread_handler,
                                                                             args.records)}
        finally:
            local_stack.down(data_dir=Path(tmp))
    print(f"consumer, {args.records:,} records over {SHARDS} shards, 5 ms per record in the handler; ceiling "
          f"{CEILING:,.0f} records/s (8 x 200, in order per shard)")
    for name, rate in rates.items():
        print(f"  {name:<50} {rate:>8,.0f} records/s  {rate / CEILING:.2f} x the ceiling")


if __name__ == "__main__":
    main()
