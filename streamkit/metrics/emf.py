"""`EmfSink`: CloudWatch Embedded Metric Format, one JSON document per line, to stdout or a file.

In Lambda, CloudWatch Logs turns each document printed to stdout into metrics: metrics at no API
cost. Format (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
``{"_aws": {"Timestamp": ms, "CloudWatchMetrics": [{"Namespace": ..., "Dimensions": [[names]],
"Metrics": [{"Name": ..., "Unit": ...}]}]}, "<dimension>": "<value>", "<metric>": value or [values]}``.
One document per set of dimensions, with every metric recorded under it (at most 100 per document,
as the specification allows; values arrays of at most 100).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from streamkit.errors import ConfigurationError
from streamkit.metrics.sink import Point

__all__ = ["EmfSink", "emf_documents"]

MAX_METRICS_PER_DOCUMENT = 100


def emf_documents(namespace: str, points: Sequence[Point], timestamp_ms: int) -> list[dict[str, Any]]:
    """The EMF documents for `points`: one per dimension set (split past 100 metrics)."""
    by_dims: dict[tuple[tuple[str, str], ...], list[Point]] = {}
    for p in points:
        by_dims.setdefault(p.dimensions, []).append(p)
    docs = []
    for dims, group in by_dims.items():
        for start in range(0, len(group), MAX_METRICS_PER_DOCUMENT):
            chunk = group[start:start + MAX_METRICS_PER_DOCUMENT]
            doc: dict[str, Any] = {"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[k for k, _v in dims]],
                "Metrics": [{"Name": p.name, "Unit": p.unit} for p in chunk],
            }]}}
            for k, v in dims:
                doc[k] = v
            for p in chunk:
                doc[p.name] = p.values[0] if p.kind != "timing" else list(p.values)
            docs.append(doc)
    return docs


class EmfSink:
    """EMF documents to `path` (appended) or, by default, stdout (a Lambda function's log)."""

    def __init__(self, path: str | Path | None = None, *, interval: float = 60.0) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:  # checked now, not at the first flush at the end of the run
            if self.path.is_dir():
                raise ConfigurationError(f"metrics emf:{path}: is a directory; name a file in it")
            if not self.path.parent.is_dir():
                raise ConfigurationError(f"metrics emf:{path}: directory {self.path.parent} does not exist")
        self.interval = interval
        self._lock = threading.Lock()
        self._fh: IO[bytes] | None = None

    def publish(self, namespace: str, points: Sequence[Point], timestamp_ms: int) -> None:
        lines = b"".join(orjson.dumps(d) + b"\n" for d in emf_documents(namespace, points, timestamp_ms))
        with self._lock:
            if self.path is None:
                sys.stdout.buffer.write(lines) if hasattr(sys.stdout, "buffer") else sys.stdout.write(lines.decode())
                sys.stdout.flush()
                return
            if self._fh is None:
                self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open until close()
            self._fh.write(lines)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
