"""The cost of each metrics sink per record, on the Lambda wrapper and on the producer, against no sink.

Lambda wrapper: a 1,000-record event of JSON readings, handled by `kinesis_handler(body="json")` with
no metrics, then with each sink at `summary` (EMF to a file, the Lambda way being stdout; Prometheus
on 127.0.0.1; CloudWatch whose PutMetricData goes to an endpoint that refuses, so nothing leaves the
machine: the data path's cost is queueing, which this measures). The wrapper flushes once per
invocation. Producer: 200,000 `send()`s into the in-memory FakeKinesis (no network, so the sink's
share is not hidden behind I/O), the same sinks. Rows alternate, best of --runs; prints the time per
record and the ratio to no sink; and each sink's cost per invocation measured alone (five figures and a
flush), as a share of the wrapper's time per record: whole-event timings vary by more than a sink costs.

Run: .venv/bin/python bench/metrics_cost.py [--runs 5]
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from producer import Producer, ProducerConfig
from streamkit import kinesis_handler
from streamkit.aws.clients import aws_client
from streamkit.local.stack import free_port
from streamkit.metrics import Metrics
from streamkit.metrics.cloudwatch import CloudWatchSink
from streamkit.metrics.emf import EmfSink
from streamkit.metrics.prometheus import PrometheusSink
from streamkit.testing import FakeKinesis

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/sensors"
N = 1000
PRODUCER_N = 200_000


def event() -> dict[str, Any]:
    now = time.time()
    return {"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": f"s-{i % 50}", "sequenceNumber": f"{i:056d}",
                    "data": base64.b64encode(orjson.dumps({"sensor_id": f"s-{i % 50}", "temp_c": 21.5})).decode(),
                    "approximateArrivalTimestamp": now},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"shardId-000000000000:{i:056d}",
        "eventName": "aws:kinesis:record", "awsRegion": "us-east-1", "eventSourceARN": ARN} for i in range(N)]}


def sinks(tmp: str) -> dict[str, Callable[[], Metrics | None]]:
    dead = aws_client("cloudwatch", endpoint_url=f"http://127.0.0.1:{free_port()}", retries=0)
    return {
        "no sink": lambda: None,
        "EMF (summary)": lambda: Metrics(EmfSink(os.path.join(tmp, "emf.jsonl")), level="summary", background=False),
        "Prometheus (summary)": lambda: Metrics(PrometheusSink(0), level="summary", background=False),
        "CloudWatch (summary)": lambda: Metrics(CloudWatchSink(dead, interval=60), level="summary", background=False),
    }


def time_wrapper(make: Callable[[], Metrics | None], ev: dict[str, Any], invocations: int) -> float:
    metrics = make()

    @kinesis_handler(body="json", metrics=metrics)
    def handle(record: Any) -> None:
        record.body  # noqa: B018 - decode, as a real handler would

    t0 = time.perf_counter()
    for _ in range(invocations):
        handle(ev, None)
    elapsed = time.perf_counter() - t0
    if metrics is not None:
        metrics.close()
    return elapsed / (invocations * N)


def time_publish(make: Callable[[], Metrics | None], invocations: int = 2000) -> float:
    """Seconds one invocation's metrics cost the wrapper (five figures recorded, then a flush), measured
    alone: what the sink adds per event, without the noise of timing whole events."""
    metrics = make()
    if metrics is None:
        return 0.0
    scope = metrics.scope("sensors", "ProcessRecords")
    t0 = time.perf_counter()
    for _ in range(invocations):
        for name in ("RecordsProcessed", "RecordsFailed", "RecordsDeadLettered", "RecordsRetried"):
            scope.count(name, 1000, shard="shardId-000000000000")
        scope.gauge("IteratorAgeMilliseconds", 12.0, shard="shardId-000000000000", unit="Milliseconds")
        scope.flush()
    elapsed = time.perf_counter() - t0
    metrics.close()
    return elapsed / invocations


def time_producer(make: Callable[[], Metrics | None]) -> float:
    metrics = make()
    kinesis = FakeKinesis(shards=4)
    t0 = time.perf_counter()
    with Producer("sensors", client=kinesis, config=ProducerConfig(rate_limit=0, metrics=metrics)) as p:
        send = p.send
        for i in range(PRODUCER_N):
            send(b"reading %08d                                                                          " % i,
                 f"sensor-{i % 1000}")
        p.flush()
    elapsed = time.perf_counter() - t0
    if metrics is not None:
        metrics.close()
    return elapsed / PRODUCER_N


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--invocations", type=int, default=200)
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    ev = event()
    wrapper: dict[str, float] = {}
    producer: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        rows = sinks(tmp)
        order = list(rows.items())
        for run in range(args.runs):  # rows alternate, in a rotated order each run
            for name, make in order[run % len(order):] + order[:run % len(order)]:
                wrapper[name] = min(wrapper.get(name, float("inf")), time_wrapper(make, ev, args.invocations))
        publish = {name: min(time_publish(make) for _ in range(3)) for name, make in order}
        for run in range(max(1, args.runs // 2)):
            for name, make in order[run % len(order):] + order[:run % len(order)]:
                producer[name] = min(producer.get(name, float("inf")), time_producer(make))
    print(f"metrics sinks' cost per record, best of {args.runs} runs (producer: of {max(1, args.runs // 2)})")
    print()
    print(f"{'sink':<22} {'wrapper us/rec':>15} {'vs no sink':>11} {'publish us/event':>17} {'= per record':>13} "
          f"{'producer us/rec':>16} {'vs no sink':>11}")
    base = wrapper["no sink"]
    for name in rows:
        per_event = publish[name]
        produced = producer[name] / producer["no sink"]
        print(f"{name:<22} {wrapper[name] * 1e6:>15.3f} {wrapper[name] / base:>10.3f}x {per_event * 1e6:>17.1f} "
              f"{per_event / N / base * 100:>12.2f}% {producer[name] * 1e6:>16.3f} {produced:>10.3f}x")
    print()
    print("publish us/event: the sink's cost per invocation measured alone (five figures and a flush), and that")
    print("cost spread over the event's 1,000 records as a share of the wrapper's time per record without a sink")
    print()
    print(f"wrapper: {N:,}-record events of JSON readings, {args.invocations} invocations a run; producer: "
          f"{PRODUCER_N:,} send()s into the in-memory FakeKinesis")


if __name__ == "__main__":
    main()
