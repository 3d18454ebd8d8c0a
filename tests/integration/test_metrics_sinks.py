"""The metrics sinks against real servers on 127.0.0.1: CloudWatch (moto's server) and a Prometheus
scrape over HTTP from a running `streamkit consume --metrics prometheus:PORT`."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from producer import Producer, ProducerConfig
from streamkit.aws.clients import aws_client
from streamkit.local.stack import free_port
from streamkit.metrics import Metrics
from streamkit.metrics.cloudwatch import MAX_DATA_PER_CALL, CloudWatchSink
from streamkit.testing import StreamHandle

pytestmark = pytest.mark.integration


def listed(cw: Any, namespace: str) -> set[str]:
    names: set[str] = set()
    for page in cw.get_paginator("list_metrics").paginate(Namespace=namespace):
        names.update(f"{m['MetricName']}/{dict((d['Name'], d['Value']) for d in m['Dimensions']).get('Shard', '')}"
                     for m in page["Metrics"])
    return names


@contextlib.contextmanager
def held_calls(client: Any) -> Iterator[threading.Event]:
    """PutMetricData on `client` waits until the block ends (an event, not a speed: a flush that waited on the
    call would still be inside it, and the 60 s timer is only a hang guard for that case)."""
    gate = threading.Event()
    guard = threading.Timer(60, gate.set)
    real = client.put_metric_data

    def held(**kwargs: Any) -> Any:
        gate.wait()
        return real(**kwargs)

    client.put_metric_data = held
    guard.start()
    try:
        yield gate
    finally:
        gate.set()
        guard.cancel()


def test_cloudwatch_sink_batches_1000_per_call_one_call_per_interval(sqs_endpoint: str) -> None:
    cw = aws_client("cloudwatch", endpoint_url=sqs_endpoint)  # moto's server answers every service
    sink = CloudWatchSink(cw, interval=0.5)
    m = Metrics(sink, namespace="sk-batching", background=False)
    scope = m.scope("sensors", "ProcessRecords")
    for i in range(1500):  # 1,500 distinct metric data in one flush: 1,000 now, 500 an interval later
        scope.count("RecordsProcessed", i, Shard=f"s{i}")
    scope.timing("ProcessingTime", 3.0)
    scope.timing("ProcessingTime", 5.0)
    with held_calls(cw) as gate:
        m.flush()
        assert not gate.is_set()  # publish only queues: it returned while PutMetricData could not answer
    deadline = time.monotonic() + 60  # a hang guard only
    while sink.calls < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sink.calls == 2 and sink.failures == 0
    m.close()
    names = listed(cw, "sk-batching")
    assert len([n for n in names if n.startswith("RecordsProcessed/")]) == 1500 and "ProcessingTime/" in names
    assert MAX_DATA_PER_CALL == 1000


def test_a_failing_put_metric_data_never_blocks_or_fails_the_data_path() -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sink = CloudWatchSink(aws_client("cloudwatch", endpoint_url=dead, retries=0), interval=0.1)
    m = Metrics(sink, namespace="sk-failing", background=False)
    scope = m.scope("sensors", "ProcessRecords")
    with held_calls(sink.client) as gate:
        for _ in range(20):
            for i in range(100):
                scope.count("RecordsProcessed", 1, Shard=f"s{i}")
            m.flush()
        assert not gate.is_set()  # 20 flushes of 100 data, all returned while the call hung: never waited on
    deadline = time.monotonic() + 60  # a hang guard only
    while sink.failures == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    m.close()
    assert sink.failures >= 1 and sink.calls == 0 and sink.dropped > 0


@pytest.mark.streamkit(shards=2)
def test_a_prometheus_scrape_of_a_running_consume_shows_per_shard_figures_moving(kinesis_stream: StreamHandle,
                                                                              tmp_path: Any) -> None:
    def write(n: int, offset: int) -> None:
        with Producer(kinesis_stream.name, client=kinesis_stream.client, config=ProducerConfig(aggregation=False)) as p:
            for i in range(n):
                p.put(b"%d" % (offset + i), f"k{i % 8}")

    write(200, 0)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli.main", "consume", "--stream", kinesis_stream.name,
         "--handler", "tests.e2e.handlers:collect", "--metrics", f"prometheus:{port}", "--json",
         "--endpoint-url", kinesis_stream.stack.kinesis_endpoint],
        env={**os.environ, "STREAMKIT_TEST_OUT": str(tmp_path / "out.txt")}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)

    def scrape() -> dict[tuple[str, str], float]:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        out = {}
        for line in body.splitlines():
            m = re.match(r'(streamkit_\w+)\{([^}]*)\} ([0-9.e+-]+)$', line)
            if m:
                shard = re.search(r'shard_id="([^"]+)"', m.group(2))
                out[(m.group(1), shard.group(1) if shard else "")] = float(m.group(3))
        return out

    try:
        def processed(figures: dict[tuple[str, str], float]) -> float:
            return sum(v for (name, _s), v in figures.items() if name == "streamkit_records_processed_total")

        deadline = time.monotonic() + 30
        first: dict[tuple[str, str], float] = {}
        while time.monotonic() < deadline:
            try:
                first = scrape()
            except OSError:
                first = {}
            if processed(first) >= 200:
                break
            time.sleep(0.2)
        assert processed(first) == 200
        shards = {s for (name, s) in first if name == "streamkit_millis_behind_latest"}
        assert shards == {"shardId-000000000000", "shardId-000000000001"}  # per shard
        assert {s for (name, s) in first if name == "streamkit_records_processed_total"} == shards
        write(100, 200)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and processed(scrape()) < 300:
            time.sleep(0.2)
        last = scrape()
        assert processed(last) == 300  # moving
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    # The --json summary shows the figures the sink published: one source.
    import orjson

    summary = orjson.loads(out)
    assert summary["records"] == processed(last)
    for shard, figures in summary["shards"].items():
        assert figures["records"] == last[("streamkit_records_processed_total", shard)]
        assert figures["millis_behind_latest"] == last[("streamkit_millis_behind_latest", shard)]
