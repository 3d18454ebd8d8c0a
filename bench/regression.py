"""Every headline figure of this tree against an earlier commit, alternating processes on one machine.

A change to a hot path must not slow it down. This unpacks --base into a temporary folder (git
archive), then runs the same workloads (defined here, so both trees do exactly the same work) with
each tree's own packages, each tree in its own process, --rounds times, alternating base and this
tree so that neither gets a quieter machine. Rows:

    codec-encode        AggregateBuilder packs 100k records of 100 B (1,000 keys) into 1 MiB aggregates
    codec-decode        base64 `data` of those aggregates -> payload bytes and keys (decode_parts)
    producer-send       Producer.send(): 50k readings of 100 B, aggregated, 4 shards on local kinesalite
    producer-put        Producer.put(), a future per reading, the same
    consumer-plain      Consumer reads 20k plain records of 100 B from 4 shards to a no-op handler
    consumer-aggregated 100k such readings, KPL-aggregated
    lambda-plain        kinesis_handler(body="json") over a 1,000-record event of small JSON readings
    lambda-aggregated   the same readings in an aggregated event
    dispatcher          Dispatcher(per-key, 8 lanes, LocalTarget no-op) over 1,000 records

Each row is a rate (higher is better). Prints each tree's best and median, and this tree's rate over
the base's (>1.00 is faster). A row more than 10% slower in both best and median is marked WORSE and
the exit status is 1. A row whose code the base lacks prints as skipped (never as a pass); a row that
fails in this tree is an error (exit 2).

Run: .venv/bin/python bench/regression.py --base COMMIT [--rounds 3] [--rows lambda-plain,codec-decode]
Before resolving an issue that touches a hot path, run it against the issue's base (README, Contributing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROWS = ("codec-encode", "codec-decode", "producer-send", "producer-put", "consumer-plain", "consumer-aggregated",
        "lambda-plain", "lambda-aggregated", "dispatcher")
SERVER_ROWS = {"producer-send", "producer-put", "consumer-plain", "consumer-aggregated"}
WORSE = 1 / 1.10  # a rate below this fraction of the base's is more than 10% worse
ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/regression"
FIRST_SEQ = 49590338271490256608559692538361571095921575989136588800


class Missing(Exception):
    """The tree lacks a row's code (a base older than the feature)."""


def _best_rate(fn: Callable[[], int], runs: int) -> float:
    best = float("inf")
    count = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - t0)
    return count / best


def _event_record(data: bytes, key: str, seq: int) -> dict[str, Any]:
    import base64

    return {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": key, "sequenceNumber": str(seq),
                        "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": 1_700_000_000.5},
            "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"shardId-000000000000:{seq}",
            "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/r",
            "awsRegion": "us-east-1", "eventSourceARN": ARN}


def _readings(n: int) -> list[tuple[str, bytes]]:
    import orjson

    return [(f"sensor-{i % 1000:04d}", orjson.dumps({"sensor_id": f"sensor-{i % 1000:04d}", "seq": i,
                                                    "temp_c": 21.5 + i % 7, "humidity": 40 + i % 13}).ljust(100))
            for i in range(n)]


def _aggregates(records: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    from streamkit.aggregation import MAX_RECORD_BYTES, AggregateBuilder

    out = []
    builder = AggregateBuilder(MAX_RECORD_BYTES)
    for key, data in records:
        if not builder.try_add(data, key):
            out.append((builder.partition_key or "", builder.build()))
            builder = AggregateBuilder(MAX_RECORD_BYTES)
            builder.try_add(data, key)
    out.append((builder.partition_key or "", builder.build()))
    return out


# ----- the rows, run inside a child process whose sys.path starts with the tree under test -----

def row_codec_encode(runs: int, _ctx: dict[str, Any]) -> float:
    data = _readings(100_000)
    return _best_rate(lambda: len(data) if _aggregates(data) else 0, runs * 5)  # ~0.1 s a run: more of them


def row_codec_decode(runs: int, _ctx: dict[str, Any]) -> float:
    import pybase64

    try:
        from streamkit.aggregation import decode_parts
    except ImportError as exc:
        raise Missing("no streamkit.aggregation.decode_parts") from exc
    event = [_event_record(blob, key, FIRST_SEQ + i) for i, (key, blob) in enumerate(_aggregates(_readings(100_000)))]

    def decode_all() -> int:
        n = 0
        for r in event:
            parts = decode_parts(pybase64.b64decode(r["kinesis"]["data"], None, True))
            n += 1 if parts is None else len(parts)
        return n

    assert decode_all() == 100_000
    return _best_rate(decode_all, runs * 5)


def _lambda_row(runs: int, aggregated: bool) -> float:
    from streamkit import kinesis_handler

    data = _readings(1000)
    if aggregated:
        event = {"Records": [_event_record(blob, key, FIRST_SEQ + i) for i, (key, blob) in
                             enumerate(_small_aggs(data))]}
    else:
        event = {"Records": [_event_record(d, k, FIRST_SEQ + i) for i, (k, d) in enumerate(data)]}
    seen: list[int] = [0]

    @kinesis_handler(body="json")
    def handle(record: Any) -> None:
        record.body  # noqa: B018 - decode, as a real handler would
        seen[0] += 1

    class Context:
        function_name = "regression"
        aws_request_id = "req"

        def get_remaining_time_in_millis(self) -> int:
            return 300_000

    ctx = Context()
    assert handle(event, ctx) == {"batchItemFailures": []} and seen[0] == len(data)
    return _best_rate(lambda: len(data) if handle(event, ctx) is not None else 0, runs * 10)


def _small_aggs(data: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The readings in 25 KiB aggregates: several records per event, as a KPL producer writes them."""
    from streamkit.aggregation import AggregateBuilder

    out = []
    builder = AggregateBuilder(25 * 1024)
    for key, d in data:
        if not builder.try_add(d, key):
            out.append((builder.partition_key or "", builder.build()))
            builder = AggregateBuilder(25 * 1024)
            builder.try_add(d, key)
    out.append((builder.partition_key or "", builder.build()))
    return out


def row_lambda_plain(runs: int, _ctx: dict[str, Any]) -> float:
    return _lambda_row(runs, aggregated=False)


def row_lambda_aggregated(runs: int, _ctx: dict[str, Any]) -> float:
    return _lambda_row(runs, aggregated=True)


def row_dispatcher(runs: int, _ctx: dict[str, Any]) -> float:
    from dispatcher import Dispatcher, LocalTarget
    from streamkit.aws_lambda.events import parse_event

    data = _readings(1000)
    records = parse_event({"Records": [_event_record(d, k, FIRST_SEQ + i) for i, (k, d) in enumerate(data)]})
    d = Dispatcher(LocalTarget(lambda r: None, workers=8), mode="per-key", lanes=8)
    assert d.dispatch(records).batch_item_failures() == []
    return _best_rate(lambda: len(records) if d.dispatch(records) is not None else 0, runs * 5)


def _create(ctx: dict[str, Any], prefix: str) -> str:
    from streamkit import kinesis as sk_kinesis

    ctx["n"] += 1
    stream = f"{prefix}-{ctx['n']}"
    sk_kinesis.create_stream(ctx["client"], stream, 4)
    return stream


def _count_stream(client: Any, stream: str) -> int:
    from streamkit.aggregation import decode_parts

    users = 0
    for shard in client.list_shards(StreamName=stream)["Shards"]:  # 4 shards: one page
        it = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for _ in range(10_000):  # bounded: a 4-shard stream of 50k readings needs far fewer calls
            out = client.get_records(ShardIterator=it, Limit=10_000)
            for r in out["Records"]:
                parts = decode_parts(r["Data"])
                users += 1 if parts is None else len(parts)
            it = out.get("NextShardIterator")
            if not it or (not out["Records"] and out.get("MillisBehindLatest", 0) == 0):
                break
    return users


def _producer_row(runs: int, ctx: dict[str, Any], method: str) -> float:
    from producer import Producer, ProducerConfig

    data = _readings(50_000)
    rates = []
    for _ in range(runs):
        stream = _create(ctx, "produce")
        t0 = time.perf_counter()
        with Producer(stream, client=ctx["client"], config=ProducerConfig(rate_limit=0)) as p:
            if method == "put":
                futures = [p.put(body, key) for key, body in data]
            else:
                send = p.send
                for key, body in data:
                    send(body, key)
            p.flush()
            elapsed = time.perf_counter() - t0
        if method == "put":
            assert all(f.exception() is None for f in futures)
        assert _count_stream(ctx["client"], stream) == len(data)
        rates.append(len(data) / elapsed)
    return max(rates)


def row_producer_send(runs: int, ctx: dict[str, Any]) -> float:
    return _producer_row(runs, ctx, "send")


def row_producer_put(runs: int, ctx: dict[str, Any]) -> float:
    return _producer_row(runs, ctx, "put")


def _consumer_row(runs: int, ctx: dict[str, Any], aggregated: bool) -> float:
    n = 100_000 if aggregated else 20_000
    data = _readings(n)
    blobs = _aggregates(data) if aggregated else data
    client = ctx["client"]
    rates = []
    for _ in range(runs):
        stream = _create(ctx, "consume")
        step = 4 if aggregated else 500  # under PutRecords' 5 MiB and 500 records per call
        for i in range(0, len(blobs), step):  # the same bytes for both trees, written by boto3 alone
            out = client.put_records(StreamName=stream, Records=[{"Data": d, "PartitionKey": k}
                                                                 for k, d in blobs[i:i + step]])
            assert out.get("FailedRecordCount", 0) == 0
        rates.append(n / _consume_once(client, stream, n))
    return max(rates)


def _consume_once(client: Any, stream: str, n: int) -> float:
    """Seconds from the Consumer's start until its no-op handler has seen all `n` records."""
    import threading

    from streamkit.checkpoints import MemoryCheckpointStore
    from streamkit.consumer import Consumer, ConsumerConfig

    count = 0
    done = threading.Event()
    elapsed = 0.0

    def handle(record: Any) -> None:
        nonlocal count, elapsed
        count += 1
        if count == n:
            elapsed = time.perf_counter() - t0
            done.set()

    consumer = Consumer(stream, handle, application_name="regression", checkpoint_store=MemoryCheckpointStore(),
                        client=client, config=ConsumerConfig(min_poll_interval=0.0, idle_poll_interval=0.05))
    t0 = time.perf_counter()
    runner = threading.Thread(target=consumer.run, kwargs={"install_signal_handlers": False})
    runner.start()
    done.wait(120)
    consumer.stop()
    runner.join()
    assert count == n, (count, n)
    return elapsed


def row_consumer_plain(runs: int, ctx: dict[str, Any]) -> float:
    return _consumer_row(runs, ctx, aggregated=False)


def row_consumer_aggregated(runs: int, ctx: dict[str, Any]) -> float:
    return _consumer_row(runs, ctx, aggregated=True)


def child(tree: Path, rows: list[str], runs: int) -> None:
    """Measure `rows` with `tree`'s packages; print one JSON object: row -> rate, or {"skipped": why}."""
    sys.path.insert(0, str(tree))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    import dispatcher
    import producer
    import streamkit

    for mod in (streamkit, producer, dispatcher):
        assert Path(str(mod.__file__)).resolve().is_relative_to(tree.resolve()), mod.__file__
    out: dict[str, Any] = {}
    ctx: dict[str, Any] = {"n": 0}
    stack_dir = None
    try:
        if SERVER_ROWS & set(rows):
            from streamkit.local import stack as local_stack

            try:
                from streamkit.aws.clients import aws_client
            except ImportError:  # older trees
                from streamkit.clients import aws_client  # type: ignore[no-redef]
            stack_dir = tempfile.mkdtemp(prefix="regression-stack-")
            stack = local_stack.up(data_dir=Path(stack_dir), persist=False)
            ctx["client"] = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=0,
                                       max_pool_connections=32)
        for row in rows:
            try:
                out[row] = globals()["row_" + row.replace("-", "_")](runs, ctx)
            except Missing as exc:
                out[row] = {"skipped": str(exc)}
            except (ImportError, AttributeError) as exc:
                out[row] = {"skipped": f"{type(exc).__name__}: {exc}"}
    finally:
        if stack_dir is not None:
            from streamkit.local import stack as local_stack

            local_stack.down(data_dir=Path(stack_dir))
            import shutil

            shutil.rmtree(stack_dir, ignore_errors=True)
    print(json.dumps(out))


def run_tree(tree: Path, rows: list[str], runs: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(tree),
                           "--rows", ",".join(rows), "--runs", str(runs)],
                          cwd=tree, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"regression: the bench in {tree} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def unpack(rev: str, into: Path) -> str:
    """`git archive` of `rev` unpacked into `into`; returns its short name."""
    short = subprocess.run(["git", "rev-parse", "--short", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True,
                           text=True, check=False)
    if short.returncode != 0:
        raise SystemExit(f"regression: --base {rev!r} is not a commit of this repository")
    archive = into.parent / "base.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", rev], cwd=ROOT, stdout=f, check=True)
    into.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return short.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--base", help="the commit to compare with")
    ap.add_argument("--rounds", type=int, default=3, help="processes per tree, alternating (default 3)")
    ap.add_argument("--runs", type=int, default=2, help="timed runs of each row per process (default 2)")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of: {', '.join(ROWS)}")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        print(f"regression: unknown row(s) {', '.join(unknown) or '(none given)'}; rows are {', '.join(ROWS)}",
              file=sys.stderr)
        return 2
    if args.rounds < 1 or args.runs < 1:
        print("regression: --rounds and --runs must be >= 1", file=sys.stderr)
        return 2
    if args.child is not None:
        child(args.child, rows, args.runs)
        return 0
    if not args.base:
        print("regression: --base COMMIT is required", file=sys.stderr)
        return 2
    started = time.perf_counter()
    samples: dict[str, dict[str, list[float]]] = {"base": {r: [] for r in rows}, "this": {r: [] for r in rows}}
    skipped: dict[str, dict[str, str]] = {"base": {}, "this": {}}
    with tempfile.TemporaryDirectory(prefix="bench-regression-") as tmp:
        base = Path(tmp) / "base"
        base_name = unpack(args.base, base)
        for _ in range(args.rounds):
            for name, tree in (("base", base), ("this", ROOT)):
                for row, got in run_tree(tree, rows, args.runs).items():
                    if isinstance(got, dict):
                        skipped[name][row] = got["skipped"]
                    else:
                        samples[name][row].append(float(got))
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True, check=False).stdout.strip()
    print(f"regression check: base {base_name} vs this tree {head}{' + uncommitted changes' if dirty else ''}; "
          f"{args.rounds} alternating processes per tree x {args.runs} runs per row; rates, higher is better")
    print()
    print(f"{'row':<20} {'base best':>12} {'base median':>12} {'this best':>12} {'this median':>12} "
          f"{'best ratio':>10} {'median ratio':>12}  verdict")
    status = 0
    for row in rows:
        if row in skipped["this"]:
            print(f"{row:<20} ERROR in this tree: {skipped['this'][row]}")
            status = 2
            continue
        if row in skipped["base"]:
            print(f"{row:<20} skipped: the base lacks it ({skipped['base'][row]})")
            continue
        b, t = samples["base"][row], samples["this"][row]
        best, med = max(t) / max(b), statistics.median(t) / statistics.median(b)
        worse = best < WORSE and med < WORSE
        verdict = "WORSE (>10% slower in both)" if worse else "ok"
        if worse:
            status = max(status, 1)
        print(f"{row:<20} {max(b):>12,.0f} {statistics.median(b):>12,.0f} {max(t):>12,.0f} "
              f"{statistics.median(t):>12,.0f} {best:>9.2f}x {med:>11.2f}x  {verdict}")
    print()
    print(f"units: records/s (codec, producer, consumer, Lambda, dispatcher); took {time.perf_counter() - started:.0f} s")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
