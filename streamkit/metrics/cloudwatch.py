"""`CloudWatchSink`: PutMetricData in the background, batched, never blocking or failing the data path.

The recorder hands a flush's points over to a queue (bounded: when CloudWatch cannot keep up, the oldest
flush is dropped and counted); a thread sends them. At most one PutMetricData call per flush interval
per namespace: up to 1,000 metric data in one call (CloudWatch's limit), the rest merged into the next
interval's call. A timing goes as ``Values``/``Counts`` (at most 150 distinct values per datum). A
failing call is logged (once per interval) and its data dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from streamkit.metrics.sink import Point

__all__ = ["CloudWatchSink", "metric_data"]

log = logging.getLogger("streamkit.metrics")

MAX_DATA_PER_CALL = 1000
MAX_VALUES_PER_DATUM = 150


def metric_data(points: Sequence[Point], timestamp_ms: int) -> list[dict[str, Any]]:
    """PutMetricData's MetricData for `points`."""
    ts = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    out = []
    for p in points:
        datum: dict[str, Any] = {"MetricName": p.name, "Unit": p.unit, "Timestamp": ts,
                                 "Dimensions": [{"Name": k, "Value": v or "-"} for k, v in p.dimensions]}
        if p.kind == "timing" and p.values:
            # The values kept are a uniform sample of the interval's: each stands for count/kept samples,
            # so CloudWatch's SampleCount is every sample (its Sum and percentiles come from the sample).
            weight = max(1.0, p.count / len(p.values))
            counts: dict[float, float] = {}
            for v in p.values:
                counts[v] = counts.get(v, 0) + weight
            values = list(counts.items())[:MAX_VALUES_PER_DATUM]
            datum["Values"] = [v for v, _n in values]
            datum["Counts"] = [n for _v, n in values]
        else:
            datum["Value"] = p.values[0] if p.values else 0.0
        out.append(datum)
    return out


class CloudWatchSink:
    """``CloudWatchSink(client=None, interval=60.0)``: a boto3 CloudWatch client (made if None)."""

    def __init__(self, client: Any = None, *, interval: float = 60.0, max_queued: int = 10,
                 endpoint_url: str | None = None, region: str | None = None) -> None:
        if client is None:
            from streamkit.aws.clients import aws_client

            client = aws_client("cloudwatch", endpoint_url=endpoint_url, region=region, retries=2)
        self.client = client
        self.interval = interval
        self.calls = 0
        self.failures = 0
        self.dropped = 0  # metric data dropped (queue full, or a failed call)
        self._queue: deque[tuple[str, list[dict[str, Any]]]] = deque()
        self._max_queued = max_queued
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="streamkit-cloudwatch", daemon=True)
        self._thread.start()

    def publish(self, namespace: str, points: Sequence[Point], timestamp_ms: int) -> None:
        """Queue a flush's data and return at once."""
        data = metric_data(points, timestamp_ms)
        with self._cond:
            self._queue.append((namespace, data))
            while len(self._queue) > self._max_queued:
                self.dropped += len(self._queue.popleft()[1])
            self._cond.notify_all()

    def _take(self) -> dict[str, list[dict[str, Any]]] | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if not self._queue:
                return None
            batch: dict[str, list[dict[str, Any]]] = {}
            while self._queue:
                namespace, data = self._queue.popleft()
                batch.setdefault(namespace, []).extend(data)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            for namespace, data in batch.items():
                now, later = data[:MAX_DATA_PER_CALL], data[MAX_DATA_PER_CALL:]
                try:
                    self.client.put_metric_data(Namespace=namespace, MetricData=now)
                    self.calls += 1
                except Exception as exc:
                    self.failures += 1
                    self.dropped += len(now)
                    log.warning("CloudWatch PutMetricData failed (%s); %d metric data dropped", exc, len(now))
                if later:  # one call per interval: the rest goes with the next
                    with self._cond:
                        self._queue.appendleft((namespace, later))
            # One call per interval: new data queued meanwhile waits for the next one (publish's notify
            # does not cut the interval short; close does).
            deadline = time.monotonic() + self.interval
            with self._cond:
                while not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(10)
