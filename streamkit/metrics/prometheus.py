"""`PrometheusSink`: an exposition endpoint (127.0.0.1 by default) with the official prometheus-client.

Names: ``streamkit_<snake_case>``, counters with ``_total``; dimensions are labels (stream_name,
operation, shard_id at the `detailed` level, which is this sink's default: labels cost a scrape
nothing). Timings are summaries (``_count`` and ``_sum``). Needs the `prometheus` extra.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

from streamkit.errors import ConfigurationError
from streamkit.metrics.sink import Point

__all__ = ["PrometheusSink", "prometheus_name"]


def prometheus_name(name: str, kind: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    return f"streamkit_{snake}" + ("_total" if kind == "counter" else "")


def _label(dim: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", dim).lower()


class PrometheusSink:
    """``PrometheusSink(port, addr="127.0.0.1")``: serves /metrics; port 0 picks a free one (`port` after)."""

    interval = 1.0

    def __init__(self, port: int = 0, *, addr: str = "127.0.0.1") -> None:
        try:
            import prometheus_client
        except ImportError as exc:
            raise ConfigurationError("the Prometheus sink needs prometheus-client: pip install 'streamkit[prometheus]'") \
                from exc
        self._pc = prometheus_client
        self.registry = prometheus_client.CollectorRegistry()
        # name -> (kind, doc, label names, {label values: value}); a summary's value is [count, sum].
        self._series: dict[str, tuple[str, str, tuple[str, ...], dict[tuple[str, ...], Any]]] = {}
        self._lock = threading.Lock()
        self.registry.register(self)  # a custom collector: exact counts and sums, whatever was sampled
        try:
            self._server, self._server_thread = prometheus_client.start_http_server(port, addr=addr,
                                                                                    registry=self.registry)
        except OSError as exc:  # the port is taken (or not ours to take): said before any work starts
            raise ConfigurationError(f"metrics prometheus:{port}: cannot listen on {addr}:{port}: "
                                     f"{exc.strerror or exc}") from None
        self.port = int(self._server.server_port)
        self.addr = addr

    def publish(self, namespace: str, points: Sequence[Point], timestamp_ms: int) -> None:
        with self._lock:
            for p in points:
                name = prometheus_name(p.name, p.kind)
                labels = tuple(_label(k) for k, _v in p.dimensions)
                entry = self._series.get(name)
                if entry is None:
                    entry = self._series[name] = (p.kind, f"{p.name} ({p.unit}), namespace {namespace}", labels, {})
                if entry[2] != labels:
                    continue  # a point with other dimensions than the first of its name
                values = entry[3]
                key = tuple(v for _k, v in p.dimensions)
                if p.kind == "counter":
                    values[key] = values.get(key, 0.0) + (p.values[0] if p.values else 0.0)
                elif p.kind == "gauge":
                    values[key] = p.values[0]
                else:  # every sample counted, also those beyond the ones a flush keeps
                    acc = values.setdefault(key, [0, 0.0])
                    acc[0] += p.count
                    acc[1] += p.total

    def collect(self) -> Any:
        """The prometheus-client collector protocol: called by each scrape."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

        with self._lock:
            series = [(name, kind, doc, labels, dict(values)) for name, (kind, doc, labels, values) in self._series.items()]
        for name, kind, doc, labels, values in series:
            if kind == "counter":
                family: Any = CounterMetricFamily(name, doc, labels=labels)
                for key, v in values.items():
                    family.add_metric(key, v)
            elif kind == "gauge":
                family = GaugeMetricFamily(name, doc, labels=labels)
                for key, v in values.items():
                    family.add_metric(key, v)
            else:
                family = SummaryMetricFamily(name, doc, labels=labels)
                for key, (count, total) in values.items():
                    family.add_metric(key, count_value=count, sum_value=total)
            yield family

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
