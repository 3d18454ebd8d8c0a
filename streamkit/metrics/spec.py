"""Metrics spec strings, as the CLI's ``--metrics`` and every engine's ``metrics=`` take them."""

from __future__ import annotations

from typing import Any

from streamkit.errors import ConfigurationError
from streamkit.metrics.sink import Level, MetricsSink, NullSink

__all__ = ["SPEC_HELP", "default_level", "sink_from_spec"]

SPEC_HELP = "none, emf (stdout), emf:PATH, cloudwatch, or prometheus:PORT (on 127.0.0.1)"


def sink_from_spec(spec: str) -> MetricsSink:
    """"none", "emf", "emf:PATH", "cloudwatch", "prometheus:PORT" -> the sink."""
    kind, _, arg = spec.partition(":")
    if kind == "none" and not arg:
        return NullSink()
    if kind == "emf":
        from streamkit.metrics.emf import EmfSink

        return EmfSink(arg or None)
    if kind == "cloudwatch" and not arg:
        from streamkit.metrics.cloudwatch import CloudWatchSink

        return CloudWatchSink()
    if kind == "prometheus":
        try:
            port = int(arg)
        except ValueError:
            raise ConfigurationError(f"metrics spec {spec!r}: prometheus needs a port, as prometheus:9464") from None
        if not 0 <= port <= 65535:
            raise ConfigurationError(f"metrics spec {spec!r}: port must be 0..65535")
        from streamkit.metrics.prometheus import PrometheusSink

        return PrometheusSink(port)
    raise ConfigurationError(f"metrics spec {spec!r}: use {SPEC_HELP}")


def default_level(sink: Any) -> Level:
    """`detailed` (per shard) for Prometheus, where labels cost nothing; `summary` (per stream) elsewhere."""
    from streamkit.metrics.prometheus import PrometheusSink

    if isinstance(sink, NullSink):
        return "none"
    return "detailed" if isinstance(sink, PrometheusSink) else "summary"
