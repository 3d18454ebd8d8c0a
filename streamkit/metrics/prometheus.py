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
from streamkit.metrics.base import Point

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
        self._metrics: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._server, self._server_thread = prometheus_client.start_http_server(port, addr=addr, registry=self.registry)
        self.port = int(self._server.server_port)
        self.addr = addr

    def _metric(self, p: Point, namespace: str) -> Any:
        name = prometheus_name(p.name, p.kind)
        m = self._metrics.get(name)
        if m is None:
            labels = [_label(k) for k, _v in p.dimensions]
            doc = f"{p.name} ({p.unit}), namespace {namespace}"
            base = name[:-len("_total")] if p.kind == "counter" else name
            cls = {"counter": self._pc.Counter, "gauge": self._pc.Gauge, "timing": self._pc.Summary}[p.kind]
            m = self._metrics[name] = cls(base, doc, labels, registry=self.registry)
        return m

    def publish(self, namespace: str, points: Sequence[Point], timestamp_ms: int) -> None:
        with self._lock:
            for p in points:
                m = self._metric(p, namespace)
                labels = {_label(k): v for k, v in p.dimensions}
                try:
                    child = m.labels(**labels)
                except ValueError:  # a point with other dimensions than the first of its name
                    continue
                if p.kind == "counter":
                    child.inc(p.values[0] if p.values else 0)
                elif p.kind == "gauge":
                    child.set(p.values[0])
                else:
                    for v in p.values:
                        child.observe(v)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
