"""`streamkit demo`: the whole story against the local stack (what `make demo` runs)."""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from streamkit import kinesis
from streamkit.aggregation import AggregateBuilder, decode_parts
from streamkit.cli.common import emit_json, flag
from streamkit.clients import aws_client
from streamkit.hashing import hash_key
from streamkit.local import stack as local_stack


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run every capability against a local stack and print the figures",
                       parents=parents)
    p.add_argument("--sensors", type=int, default=200)
    p.add_argument("--readings", type=int, default=5000)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--output", type=Path, default=Path("demo-output"))
    p.set_defaults(func=cmd_demo)


def _readings(n: int, sensors: int, rng: random.Random) -> list[tuple[str, bytes]]:
    out = []
    seq: dict[str, int] = defaultdict(int)
    for i in range(n):
        sensor = f"sensor-{rng.randrange(sensors):04d}"
        seq[sensor] += 1
        reading = {"sensor_id": sensor, "seq": seq[sensor], "ts": 1_700_000_000 + i / 100,
                   "temperature_c": round(rng.gauss(21.0, 3.0), 2), "humidity": round(rng.uniform(20, 80), 1)}
        out.append((sensor, orjson.dumps(reading)))
    return out


def _write_aggregated(client: Any, stream: str, readings: list[tuple[str, bytes]]) -> dict[str, int]:
    shards = kinesis.shard_map(client, stream)
    builders: dict[str, AggregateBuilder] = {}
    blobs: list[dict[str, Any]] = []
    for key, data in readings:
        shard = shards.shard_for_key(key)
        b = builders.setdefault(shard.shard_id, AggregateBuilder())
        if not b.try_add(data, key):
            blobs.append(_entry(b))
            b = builders[shard.shard_id] = AggregateBuilder()
            b.try_add(data, key)
    blobs.extend(_entry(b) for b in builders.values() if b.count)
    calls = 0
    for i in range(0, len(blobs), 500):
        batch = blobs[i:i + 500]
        while batch:
            out = client.put_records(StreamName=stream, Records=batch)
            calls += 1
            batch = [e for e, r in zip(batch, out["Records"], strict=True) if "ErrorCode" in r]
    return {"kinesis_records": len(blobs), "put_calls": calls}


def _entry(b: AggregateBuilder) -> dict[str, Any]:
    assert b.partition_key is not None
    return {"Data": b.build(), "PartitionKey": b.partition_key, "ExplicitHashKey": str(hash_key(b.partition_key))}


def _read_all(client: Any, stream: str, expected: int, timeout: float = 30.0) -> dict[str, list[tuple[str, bytes]]]:
    got: dict[str, list[tuple[str, bytes]]] = {}
    total = 0
    deadline = time.monotonic() + timeout
    for shard in kinesis.list_shards(client, stream):
        sid = shard["ShardId"]
        it = client.get_shard_iterator(StreamName=stream, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        got[sid] = []
        while it and time.monotonic() < deadline:
            out = client.get_records(ShardIterator=it, Limit=1000)
            for r in out["Records"]:
                parts = decode_parts(r["Data"])
                if parts is None:
                    got[sid].append((r["PartitionKey"], r["Data"]))
                else:
                    got[sid].extend((k, d) for d, k, _e in parts)
            it = out.get("NextShardIterator")
            if not out["Records"] and out.get("MillisBehindLatest", 0) == 0:
                break
        total += len(got[sid])
    if total < expected:
        raise RuntimeError(f"read back {total} of {expected} readings")
    return got


def cmd_demo(args: argparse.Namespace) -> int:
    rng = random.Random(42)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="streamkit-demo-") as tmp:
        print("1/3 starting the local stack (kinesalite + dynalite on 127.0.0.1) ...", flush=True)
        stack = local_stack.up(data_dir=Path(tmp), persist=False)
        try:
            client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=0)
            stream = "sensor-readings"
            kinesis.create_stream(client, stream, args.shards)
            readings = _readings(args.readings, args.sensors, rng)
            raw_bytes = sum(len(d) for _k, d in readings)
            print(f"2/3 writing {len(readings):,} readings from {args.sensors} sensors, KPL-aggregated per shard ...",
                  flush=True)
            t0 = time.perf_counter()
            written = _write_aggregated(client, stream, readings)
            t_write = time.perf_counter() - t0
            print("3/3 reading every shard back and deaggregating ...", flush=True)
            t0 = time.perf_counter()
            got = _read_all(client, stream, len(readings))
            t_read = time.perf_counter() - t0
            sent_by_key: dict[str, list[bytes]] = defaultdict(list)
            for k, d in readings:
                sent_by_key[k].append(d)
            got_by_key: dict[str, list[bytes]] = defaultdict(list)
            for recs in got.values():
                for k, d in recs:
                    got_by_key[k].append(d)
            in_order = sum(1 for k in sent_by_key if sent_by_key[k] == got_by_key.get(k))
            summary = {
                "readings": len(readings),
                "sensors": args.sensors,
                "shards": args.shards,
                "payload_bytes": raw_bytes,
                "kinesis_records": written["kinesis_records"],
                "put_calls": written["put_calls"],
                "read_back": sum(len(v) for v in got.values()),
                "per_shard": {sid: len(v) for sid, v in sorted(got.items())},
                "keys_in_order": in_order,
                "write_seconds": round(t_write, 3),
                "read_seconds": round(t_read, 3),
                "total_seconds": round(time.perf_counter() - t_start, 2),
            }
        finally:
            local_stack.down(data_dir=Path(tmp))
    if flag(args, "json"):
        emit_json(summary)
        return 0 if in_order == len(sent_by_key) else 1
    print()
    print("summary")
    print(f"  {summary['readings']:,} readings ({raw_bytes:,} payload bytes) -> {summary['kinesis_records']} Kinesis "
          f"records in {summary['put_calls']} PutRecords calls ({summary['readings'] / summary['kinesis_records']:,.0f} "
          "readings per record)")
    print(f"  read back {summary['read_back']:,} readings; per shard: "
          + ", ".join(f"{s}={n}" for s, n in summary["per_shard"].items()))
    print(f"  {in_order}/{len(sent_by_key)} sensors' readings arrived complete and in order")
    print(f"  write {t_write:.2f} s, read {t_read:.2f} s, total {summary['total_seconds']:.1f} s")
    return 0 if in_order == len(sent_by_key) else 1
