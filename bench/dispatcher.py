"""Fan-out dispatcher speed-up on one shard with a worker that costs 20 ms per record.

Ordered in-shard processing (the handler calls the worker for each record in turn) against the
dispatcher in `unordered` mode with 8 and 32 workers, and in `per-key` mode with 8 lanes over 1,000
keys. Every contender runs under the event-source-mapping emulator on a 1-shard kinesalite stream in
batches of 1,000 records; the rate is records over the time spent inside the Lambda handler (the
emulator's polling is the same for all and left out).

Run: make bench   (or .venv/bin/python bench/dispatcher.py)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dispatcher import Dispatcher, LocalTarget
from producer import Producer, ProducerConfig
from streamkit import kinesis
from streamkit.aws.clients import aws_client
from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.aws_lambda.events import parse_event
from streamkit.local import stack as local_stack
from streamkit.records import StreamRecord

COST = 0.020


def worker(record: StreamRecord) -> None:
    time.sleep(COST)


def run(client: Any, stream: str, n: int, handle: Any) -> float:
    with Producer(stream, client=client, config=ProducerConfig()) as p:
        for i in range(n):
            p.put(b"%d" % i, f"key-{i % 1000}")
    spent = {"s": 0.0, "n": 0}

    def handler(event: dict[str, Any], context: Any) -> Any:
        t0 = time.perf_counter()
        records = parse_event(event)
        out = handle(records)
        spent["s"] += time.perf_counter() - t0
        spent["n"] += len(records)
        return out

    EventSourceMapping(stream, handler, client=client,
                       config=EsmConfig(batch_size=1000, starting_position="TRIM_HORIZON",
                                        report_batch_item_failures=True)).run(stop_after_idle=1.5)
    assert spent["n"] == n, (spent, n)
    return n / spent["s"]


def main() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-dispatcher-") as tmp:
        stack = local_stack.up(data_dir=Path(tmp), persist=False)
        try:
            client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=0)

            def ordered(records: list[StreamRecord]) -> dict[str, Any]:
                for r in records:
                    worker(r)
                return {"batchItemFailures": []}

            contenders: list[tuple[str, int, int, Any]] = [("ordered in-shard", 1, 250, ordered)]
            for label, mode, lanes, n in (("dispatcher unordered", "unordered", 8, 2000),
                                          ("dispatcher unordered", "unordered", 32, 6000),
                                          ("dispatcher per-key (1,000 keys)", "per-key", 8, 2000)):
                d = Dispatcher(LocalTarget(worker, workers=lanes), mode=mode, lanes=lanes)  # type: ignore[arg-type]

                def via(records: list[StreamRecord], d: Dispatcher = d) -> dict[str, Any]:
                    return {"batchItemFailures": d.dispatch(records).batch_item_failures()}

                contenders.append((f"{label}, {lanes} workers", lanes, n, via))
            for i, (name, lanes, n, handle) in enumerate(contenders):
                stream = f"dispatch-{i}"
                kinesis.create_stream(client, stream, 1)
                rows.append((name, lanes, run(client, stream, n, handle)))
        finally:
            local_stack.down(data_dir=Path(tmp))
    base = rows[0][2]
    print(f"fan-out dispatcher, one shard, worker costing {COST * 1000:.0f} ms per record")
    print()
    print(f"{'contender':<46} {'records/s':>10} {'speed-up':>9} {'target (0.8 x workers)':>23}")
    for name, lanes, rate in rows:
        target = "" if lanes == 1 else f">= {0.8 * lanes:.1f}x"
        print(f"{name:<46} {rate:>10,.1f} {rate / base:>8.1f}x {target:>23}")


if __name__ == "__main__":
    main()
