"""The metrics recorder every engine writes to, and the sink interface it publishes through.

Engines call `Metrics.count` / `gauge` / `timing` with a metric name (the KPL's and KCL's names where
they have one) and, for per-shard figures, a shard id. The recorder aggregates in memory (counts
summed, gauges last, timings as value lists) per (name, dimensions) and publishes the aggregate to its
sink on `flush()`: every `interval` seconds from a background thread, at the end of each Lambda
invocation for the wrapper, and at close. Recording never blocks on I/O and never raises.

Levels, as the KCL's: ``none`` (nothing recorded: the NullSink's cost), ``summary`` (dimensions
StreamName and Operation), ``detailed`` (also ShardId, for the figures that have a shard).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from streamkit.errors import ConfigurationError
from streamkit.metrics.sink import LEVELS, MAX_VALUES, Kind, Level, MetricsSink, NullSink, Point

__all__ = ["LEVELS", "NO_METRICS", "Kind", "Level", "Metrics", "MetricsSink", "NullSink", "Point", "Scope", "as_metrics"]

log = logging.getLogger("streamkit.metrics")

class Metrics:
    """The recorder: ``Metrics("emf", namespace="streamkit", level="summary")``, shared by engines.

    `sink` is a sink object or a spec string (`streamkit.metrics.sink_from_spec`: "emf", "emf:PATH",
    "cloudwatch", "prometheus:PORT", "none"). Each engine records through a `Scope` of it
    (`scope(stream, operation)`), which adds the StreamName and Operation dimensions.
    """

    def __init__(self, sink: MetricsSink | str | None = None, *, namespace: str = "streamkit",
                 level: Level | None = None, background: bool = True, clock: Callable[[], float] = time.time) -> None:
        from streamkit.metrics.spec import default_level, sink_from_spec

        if isinstance(sink, str) or sink is None:
            sink = sink_from_spec(sink or "none")
        if level is None:
            level = default_level(sink)
        if level not in LEVELS:
            raise ConfigurationError(f"metrics level must be one of {', '.join(LEVELS)}, got {level!r}")
        if not namespace:
            raise ConfigurationError("metrics namespace must not be empty")
        self.sink = sink
        self.namespace = namespace
        self.level: Level = level
        self.enabled = level != "none" and not isinstance(sink, NullSink)
        self._clock = clock
        self._lock = threading.Lock()
        self._rng = random.Random(0x5EED)  # which samples a full timing keeps: reproducible
        self._points: dict[tuple[str, tuple[tuple[str, str], ...]], Point] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.enabled and background:
            self._thread = threading.Thread(target=self._flush_loop, name="streamkit-metrics", daemon=True)
            self._thread.start()

    def scope(self, stream: str, operation: str) -> Scope:
        return Scope(self, stream, operation)

    def record(self, kind: Kind, name: str, value: float, unit: str, dims: tuple[tuple[str, str], ...]) -> None:
        key = (name, dims)
        with self._lock:
            p = self._points.get(key)
            if p is None:
                p = self._points[key] = Point(name=name, kind=kind, unit=unit, dimensions=dims)
            p.count += 1
            if kind == "counter":
                if p.values:
                    p.values[0] += value
                else:
                    p.values.append(value)
            elif kind == "gauge":
                p.values[:] = [value]
            else:
                p.total += value
                if len(p.values) < MAX_VALUES:
                    p.values.append(value)
                else:  # a uniform sample of the flush interval's values (reservoir), not just its first ones
                    j = self._rng.randrange(p.count)
                    if j < MAX_VALUES:
                        p.values[j] = value

    # -- publishing --------------------------------------------------------------------------------
    def flush(self) -> None:
        """Hand what was recorded since the last flush to the sink (a sink's failure is logged, not raised)."""
        if not self.enabled:
            return
        with self._lock:
            points, self._points = list(self._points.values()), {}
        if not points:
            return
        try:
            self.sink.publish(self.namespace, points, int(self._clock() * 1000))
        except Exception as exc:  # a sink must never fail the data path
            log.warning("metrics sink %s failed (%s); %d point(s) dropped", type(self.sink).__name__, exc, len(points))

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.sink.interval):
            self.flush()

    def close(self) -> None:
        """Flush, stop the background flushes and close the sink."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.flush()
        self.sink.close()


class Scope:
    """One engine's view of a recorder: its stream and operation as dimensions; ShardId at `detailed`."""

    __slots__ = ("_base", "_detailed", "_metrics", "enabled")

    def __init__(self, metrics: Metrics, stream: str, operation: str) -> None:
        self._metrics = metrics
        self.enabled = metrics.enabled
        self._detailed = metrics.level == "detailed"
        self._base: tuple[tuple[str, str], ...] = (("StreamName", stream), ("Operation", operation))

    def _dims(self, shard: str | None, extra: dict[str, str]) -> tuple[tuple[str, str], ...]:
        dims = self._base
        if shard is not None and self._detailed:
            dims += (("ShardId", shard),)
        if extra:
            dims += tuple(sorted(extra.items()))
        return dims

    def count(self, name: str, value: float = 1, *, shard: str | None = None, unit: str = "Count", **extra: str) -> None:
        if self.enabled:
            self._metrics.record("counter", name, value, unit, self._dims(shard, extra))

    def gauge(self, name: str, value: float, *, shard: str | None = None, unit: str = "None", **extra: str) -> None:
        if self.enabled:
            self._metrics.record("gauge", name, value, unit, self._dims(shard, extra))

    def timing(self, name: str, value: float, *, shard: str | None = None, unit: str = "Milliseconds",
               **extra: str) -> None:
        if self.enabled:
            self._metrics.record("timing", name, value, unit, self._dims(shard, extra))

    def flush(self) -> None:
        self._metrics.flush()


#: What an engine given no metrics records through: nothing.
NO_METRICS = Metrics(NullSink(), background=False)


def as_metrics(value: Metrics | MetricsSink | str | None) -> tuple[Metrics, bool]:
    """(the recorder, whether the engine made it and so closes it) for an engine's `metrics=` argument."""
    if value is None:
        return NO_METRICS, False
    if isinstance(value, Metrics):
        return value, False
    return Metrics(value), True
