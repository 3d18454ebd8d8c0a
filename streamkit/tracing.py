"""Trace context through the stream: W3C ``traceparent`` in KPL sub-record tags, spans on the reading side.

With OpenTelemetry installed (the `otel` extra) and a tracer provider set by the application before
an engine starts:

- the producer records the current span's ``traceparent`` per user record in the sub-record's `Tag`
  fields (the KPL format has them; the KCL and aws-kinesis-agg skip them, so nothing breaks for other
  readers). Plain (non-aggregated) records carry none: a Kinesis record has no field for it;
- the consumer, the Lambda wrapper and the dispatcher handler start one span per batch, linked to the
  trace context of each record that carries one (a span covering many records cannot have them all
  as parents; links are OpenTelemetry's answer for batches).

Without OpenTelemetry, or with no tracer provider set, `enabled()` is False and nothing is done:
the producer's `put` pays one attribute check.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from streamkit.aggregation import decode_tags

__all__ = ["TRACEPARENT", "batch_span", "current_traceparent", "enabled", "traceparents_of_event",
           "traceparents_of_records"]

TRACEPARENT = "traceparent"
#: Links per span, at most (OpenTelemetry's default span limit).
MAX_LINKS = 128


#: Whether OpenTelemetry is installed, looked up once: without it `enabled()` costs an attribute read.
_INSTALLED = importlib.util.find_spec("opentelemetry") is not None


def enabled() -> bool:
    """OpenTelemetry is installed and the application has set a tracer provider (not the default proxy)."""
    if not _INSTALLED:
        return False
    # A provider is set by code that imported opentelemetry.trace, or named by OTEL_PYTHON_TRACER_PROVIDER
    # (read on the first get_tracer_provider()). Neither: there is none, and importing OpenTelemetry to
    # learn that would cost every Lambda container that ships it unused a slower first invocation.
    if "opentelemetry.trace" not in sys.modules and "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ:
        return False
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    return type(provider).__name__ not in ("ProxyTracerProvider", "NoOpTracerProvider")


def current_traceparent() -> str | None:
    """The current span's W3C traceparent, or None when no span is active."""
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def _span_context(traceparent: str) -> Any:
    from opentelemetry.trace import SpanContext, TraceFlags

    try:
        version, trace_id, span_id, flags = traceparent.split("-")
        ctx = SpanContext(trace_id=int(trace_id, 16), span_id=int(span_id, 16), is_remote=True,
                          trace_flags=TraceFlags(int(flags, 16)))
    except ValueError:
        return None
    return ctx if version == "00" and ctx.is_valid else None


def traceparents_of_records(raw: Iterable[Mapping[str, Any]]) -> list[str]:
    """The traceparents carried by GetRecords records (bytes `Data`), in order, without repeats."""
    seen: dict[str, None] = {}
    for r in raw:
        data = r.get("Data")
        if not isinstance(data, bytes | bytearray):
            continue
        try:
            tags = decode_tags(bytes(data))
        except Exception:
            continue  # a corrupt aggregate is reported by the reader; it carries no usable context
        for t in tags or ():
            tp = t.get(TRACEPARENT)
            if tp:
                seen.setdefault(tp, None)
    return list(seen)


def traceparents_of_event(event: Mapping[str, Any]) -> list[str]:
    """The traceparents carried by a Lambda Kinesis event's records."""
    raw = []
    for r in event.get("Records") or ():
        try:
            raw.append({"Data": base64.b64decode(r["kinesis"]["data"])})
        except (KeyError, TypeError, ValueError):
            continue
    return traceparents_of_records(raw)


@contextmanager
def batch_span(name: str, traceparents: list[str], **attributes: Any) -> Iterator[None]:
    """A span around one batch, linked to each record's trace context; its parent too when there is one."""
    from opentelemetry import trace
    from opentelemetry.trace import Link, NonRecordingSpan, set_span_in_context

    contexts = [c for c in (_span_context(tp) for tp in traceparents[:MAX_LINKS]) if c is not None]
    parent = set_span_in_context(NonRecordingSpan(contexts[0])) if len(contexts) == 1 else None
    tracer = trace.get_tracer("streamkit")
    with tracer.start_as_current_span(name, context=parent, links=[Link(c) for c in contexts],
                                      kind=trace.SpanKind.CONSUMER, attributes=attributes):
        yield
