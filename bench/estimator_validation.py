"""The estimator against reality: predicted vs measured sustainable rate on the local stack.

Three scenarios, each run for real through the limit-enforcing proxy (limits scaled to 10% so a run
takes seconds) or the event-source-mapping emulator, then estimated with the same inputs:

    write-bound     2 shards, 1,000 uniform keys, 100 B records, no aggregation, writer at 2x the limit
    function-bound  1 shard, a Lambda handler of known cost (10 ms per batch + 1 ms per record), batch 50
    hot-key-bound   4 shards, one key carries half the traffic, writer at 2x what the hot shard takes

"Measured sustainable rate" for the writers: the rate the busiest shard actually accepted (records
confirmed per second after the first second), divided by that shard's share of the key mix; for the
function: records the handler completed per second while the stream was backlogged.

Run: make bench   (or .venv/bin/python bench/estimator_validation.py)
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from producer import Producer, ProducerConfig
from streamkit import kinesis
from streamkit.aws.clients import aws_client
from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.estimator import Inputs, Limits, estimate
from streamkit.local import stack as local_stack
from streamkit.local.proxy import KinesisProxy

SCALE = 0.1


def measure_writer(client: Any, stream: str, keys: list[str], offered: float, seconds: float) -> tuple[float, str]:
    """Offer `offered` records/s cycling through `keys`; return (busiest shard's accepted rate, its id)."""
    done: list[tuple[float, str]] = []
    lock = threading.Lock()
    config = ProducerConfig(aggregation=False, rate_limit=0, ordered=False, backoff_base=0.02, backoff_max=0.2,
                            record_ttl=120, record_max_buffered_time=0.02)
    t0 = time.monotonic()
    with Producer(stream, client=client, config=config) as p:
        i = 0
        while time.monotonic() - t0 < seconds:
            due = t0 + i / offered
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            fut = p.put(b"r" * 100, keys[i % len(keys)])

            def record(f: Any) -> None:
                if f.exception() is None:
                    with lock:
                        done.append((time.monotonic() - t0, f.result().shard_id))

            fut.add_done_callback(record)
            i += 1
        p.flush(timeout=0)  # measure only what the stream took while the writer ran
    window = [(t, s) for t, s in done if 1.0 <= t <= seconds]
    per_shard = Counter(s for _t, s in window)
    shard, count = per_shard.most_common(1)[0]
    return count / (seconds - 1.0), shard


def key_share_of(client: Any, stream: str, keys: list[str], shard_id: str) -> float:
    smap = kinesis.shard_map(client, stream)
    return sum(1 for k in keys if smap.shard_for_key(k).shard_id == shard_id) / len(keys)


def main() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-estimator-") as tmp:
        stack = local_stack.up(data_dir=Path(tmp), persist=False)
        try:
            direct = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=0)
            with KinesisProxy(stack.kinesis_endpoint, limit_scale=SCALE) as proxy:
                limited = aws_client("kinesis", endpoint_url=proxy.endpoint, retries=0, max_pool_connections=32)

                # 1. write-bound
                kinesis.create_stream(direct, "write-bound", 2)
                keys = [f"sensor-{i}" for i in range(1000)]
                inp = Inputs(shards=2, record_size=100, key_bytes=10, records_per_second=400, aggregation=1,
                             batch_size=10_000, per_record_ms=0.001, partition_keys=1000, limits=Limits(scale=SCALE))
                predicted = estimate(inp)
                rate, shard = measure_writer(limited, "write-bound", keys, offered=2 * predicted["sustainable_rate"],
                                             seconds=8)
                measured = rate / key_share_of(direct, "write-bound", keys, shard)
                rows.append(("write-bound", predicted, measured))

                # 3. hot-key-bound (before the function scenario: it reuses the proxy)
                kinesis.create_stream(direct, "hot-key", 4)
                hot_keys = ["hot"] * 999 + [f"cold-{i}" for i in range(999)]
                shares = (0.5,) + (0.5 / 999,) * 999
                inp = Inputs(shards=4, record_size=100, key_bytes=8, records_per_second=400, aggregation=1,
                             batch_size=10_000, per_record_ms=0.001, partition_keys=1000, key_shares=shares,
                             limits=Limits(scale=SCALE))
                predicted_hot = estimate(inp)
                rate, shard = measure_writer(limited, "hot-key", hot_keys,
                                             offered=2 * predicted_hot["sustainable_rate"], seconds=8)
                measured_hot = rate / key_share_of(direct, "hot-key", hot_keys, shard)

            # 2. function-bound: a backlog of 3,000 plain records, a handler of known cost, batches of 50.
            processed = {"n": 0, "t_first": 0.0, "t_last": 0.0}

            def handler(event: dict[str, Any], context: Any) -> None:
                n = len(event["Records"])
                time.sleep(0.010 + 0.001 * n)
                now = time.monotonic()
                if not processed["n"]:
                    processed["t_first"] = now - (0.010 + 0.001 * n)
                processed["n"] += n
                processed["t_last"] = now

            kinesis.create_stream(direct, "function-plain", 1)
            with Producer("function-plain", client=direct, config=ProducerConfig(aggregation=False)) as p:
                for i in range(3000):
                    p.put(b"%d" % i, f"k{i % 100}")
            esm = EventSourceMapping("function-plain", handler, client=direct,
                                     config=EsmConfig(batch_size=50, starting_position="TRIM_HORIZON"))
            esm.run(stop_after_idle=2.0)
            measured_fn = processed["n"] / (processed["t_last"] - processed["t_first"])
            inp = Inputs(shards=1, record_size=10, records_per_second=5000, batch_size=50, per_batch_ms=10,
                         per_record_ms=1, invoke_overhead_ms=0.5, partition_keys=100)
            predicted_fn = estimate(inp)
            rows.insert(1, ("function-bound", predicted_fn, measured_fn))
            rows.append(("hot-key-bound", predicted_hot, measured_hot))
        finally:
            local_stack.down(data_dir=Path(tmp))
    print(f"estimator validation on the local stack (shard limits x{SCALE} through the proxy)")
    print()
    print(f"{'scenario':<16} {'binding limit (predicted)':<26} {'predicted rec/s':>16} {'measured rec/s':>15} {'error':>7}")
    for name, pred, measured in rows:
        err = (pred["sustainable_rate"] - measured) / measured
        print(f"{name:<16} {pred['binding_limit']:<26} {pred['sustainable_rate']:>16,.1f} {measured:>15,.1f} "
              f"{err:>+7.1%}")


if __name__ == "__main__":
    main()
