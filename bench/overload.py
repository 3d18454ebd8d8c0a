"""Overload: far more readings than the shards accept, through the local stack's limit-enforcing proxy.

A loop offers 1,000,000 readings of 100 B to a 4-shard stream as fast as it can, through
`streamkit local up --enforce-limits` (1 MiB/s and 1,000 records/s per shard, as Kinesis), with the
producer's default configuration: `send()` and, in a second run on a fresh stream, `put()` with a
future per reading. Then every reading is read back from the server.

Printed per run: readings failed, readings read back, wall time, and wall time against the least time
the shards need for what was written: Kinesis bytes / (shards x 1 MiB/s), and the busiest shard's
bytes / 1 MiB/s (keys do not spread evenly, and no shard can go faster than its limit). Also how long
the caller was held back by admission (the producer slowing `send`/`put` so that no record waits past
a share of `record_ttl` before its first attempt).

Run: .venv/bin/python bench/overload.py [--readings N] [--shards N] [--only send|put]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from producer import Producer, ProducerConfig
from streamkit import kinesis as sk_kinesis
from streamkit.aggregation import decode_parts
from streamkit.aws.clients import aws_client
from streamkit.limits import MIB
from streamkit.local import stack as local_stack

SENSORS = 1000


def reading(i: int) -> tuple[str, bytes]:
    sensor = f"sensor-{i % SENSORS:04d}"
    body = f'{{"sensor_id":"{sensor}","seq":{i // SENSORS},"t":{1_700_000_000 + i},"temp_c":21.5,"rh":40.25}}'
    return sensor, body.ljust(100).encode()


def read_back(client: Any, stream: str) -> tuple[int, int, Counter[str]]:
    """(user records, Kinesis records, Kinesis bytes per shard) in the stream, read from the server directly."""
    users = kin = 0
    per_shard: Counter[str] = Counter()
    for shard in sk_kinesis.list_shards(client, stream):
        it = client.get_shard_iterator(StreamName=stream, ShardId=shard.shard_id,
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            out = client.get_records(ShardIterator=it, Limit=1000)
            for r in out["Records"]:
                kin += 1
                per_shard[shard.shard_id] += len(r["Data"]) + len(r["PartitionKey"].encode())
                parts = decode_parts(r["Data"])
                users += 1 if parts is None else len(parts)
            if not out["Records"] and not out.get("MillisBehindLatest"):
                break
            it = out.get("NextShardIterator")
    return users, kin, per_shard


def run(via_proxy: Any, backend: Any, stream: str, n: int, shards: int, method: str,
        config: ProducerConfig) -> dict[str, Any]:
    sk_kinesis.create_stream(via_proxy, stream, shards)
    t0 = time.perf_counter()
    futures = []
    with Producer(stream, client=via_proxy, config=config) as p:
        if method == "put":
            put = p.put
            futures = [put(*reversed(reading(i))) for i in range(n)]
        else:
            send = p.send
            for i in range(n):
                key, body = reading(i)
                send(body, key)
        p.flush()
        wall = time.perf_counter() - t0
        m = p.metrics()
    failed_futures = sum(1 for f in futures if f.exception() is not None)
    users, kin, per_shard = read_back(backend, stream)
    if kin != m["kinesis_records_written"]:
        print(f"{method}: the producer wrote {m['kinesis_records_written']} Kinesis records, {kin} read back")
    total = sum(per_shard.values())
    return {"method": method, "failed": m["user_records_failed"], "failed_futures": failed_futures,
            "read_back": users, "wall": wall, "bytes": total, "floor_total": total / (shards * MIB),
            "floor_busiest": max(per_shard.values()) / MIB, "held_s": m.get("admission_wait_s", 0.0),
            "throttles": m["throttles"], "retries": m["retries"], "kinesis_records": m["kinesis_records_written"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--only", choices=("send", "put"))
    ap.add_argument("--config", default="{}", help="ProducerConfig fields as JSON (default: none, the defaults)")
    args = ap.parse_args()
    import json

    config = ProducerConfig(**json.loads(args.config))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-overload-") as tmp:
        stack = local_stack.up(data_dir=Path(tmp), persist=False, enforce_limits=True)
        try:
            via_proxy = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=0, max_pool_connections=32)
            backend = aws_client("kinesis", endpoint_url=stack.backend_endpoint, max_pool_connections=4)
            for method in ("send", "put"):
                if args.only in (None, method):
                    rows.append(run(via_proxy, backend, f"overload-{method}", args.readings, args.shards, method, config))
        finally:
            local_stack.down(data_dir=Path(tmp))
    print(f"overload: {args.readings:,} readings of 100 B offered at once, {SENSORS} keys, {args.shards} shards, "
          f"ProducerConfig({args.config if args.config != '{}' else 'defaults'}),")
    print("through the limit-enforcing proxy (1 MiB/s, 1,000 records/s per shard)")
    print()
    print(f"{'row':<6} {'failed':>7} {'read back':>10} {'wall s':>7} {'MiB':>7} {'floor s':>8} {'wall/floor':>11} "
          f"{'busiest s':>10} {'wall/busiest':>13} {'held s':>7} {'throttles':>10} {'Kinesis recs':>13}")
    for r in rows:
        print(f"{r['method']:<6} {r['failed']:>7,} {r['read_back']:>10,} {r['wall']:>7.1f} {r['bytes'] / MIB:>7.1f} "
              f"{r['floor_total']:>8.1f} {r['wall'] / r['floor_total']:>10.2f}x {r['floor_busiest']:>10.1f} "
              f"{r['wall'] / r['floor_busiest']:>12.2f}x {r['held_s']:>7.1f} {r['throttles']:>10,} {r['kinesis_records']:>13,}")
    print()
    print("floor: Kinesis bytes / (shards x 1 MiB/s); busiest: the busiest shard's bytes / 1 MiB/s")
    for r in rows:
        if r["failed"] or r["read_back"] != args.readings:
            print(f"LOSS: {r['method']}: {r['failed']} failed, {r['read_back']} of {args.readings} read back")
            sys.exit(1)


if __name__ == "__main__":
    main()
