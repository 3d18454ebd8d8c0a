"""Production signals: a recorder engines write to, and sinks for CloudWatch EMF, CloudWatch and Prometheus.

    from streamkit.metrics import Metrics
    metrics = Metrics("emf", level="summary")      # or "emf:PATH", "cloudwatch", "prometheus:9464", "none"
    Producer("sensors", config=ProducerConfig(metrics=metrics))

See streamkit.metrics.base for levels and aggregation; each sink's module for its format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamkit.metrics.base import LEVELS, NO_METRICS, Level, Metrics, MetricsSink, NullSink, Point, Scope, as_metrics
from streamkit.metrics.spec import SPEC_HELP, sink_from_spec

if TYPE_CHECKING:
    from streamkit.metrics.cloudwatch import CloudWatchSink
    from streamkit.metrics.emf import EmfSink
    from streamkit.metrics.prometheus import PrometheusSink

__all__ = ["LEVELS", "NO_METRICS", "SPEC_HELP", "CloudWatchSink", "EmfSink", "Level", "Metrics", "MetricsSink",
           "NullSink", "Point", "PrometheusSink", "Scope", "as_metrics", "sink_from_spec"]


def __getattr__(name: str) -> Any:  # the sinks load on first use (prometheus-client is an extra)
    if name == "EmfSink":
        from streamkit.metrics.emf import EmfSink

        return EmfSink
    if name == "CloudWatchSink":
        from streamkit.metrics.cloudwatch import CloudWatchSink

        return CloudWatchSink
    if name == "PrometheusSink":
        from streamkit.metrics.prometheus import PrometheusSink

        return PrometheusSink
    raise AttributeError(name)
