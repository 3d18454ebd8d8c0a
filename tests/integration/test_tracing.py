"""Trace context through the stream, with opentelemetry-sdk's in-memory exporter and the local stack: a
span around Producer.put is the parent of (and linked from) the consumer's and the Lambda wrapper's
span for the batch holding those records. The traced application runs in a process of its own
(tracing_app.py), as a tracer provider is global to a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streamkit.testing import StreamHandle

pytestmark = pytest.mark.integration
APP = Path(__file__).with_name("tracing_app.py")


@pytest.mark.streamkit(shards=1)
def test_a_trace_started_before_put_is_the_parent_of_the_consumers_and_the_wrappers_spans(
        kinesis_stream: StreamHandle) -> None:
    proc = subprocess.run([sys.executable, str(APP), kinesis_stream.stack.kinesis_endpoint, kinesis_stream.name],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = orjson.loads(proc.stdout.splitlines()[-1])
    assert out["consumed"] == 10 and out["handled"] == 10
    assert out["kinesis_records"] == 1  # one aggregate: five traced sub-records, five without a context
    request = out["request"]
    for name in ("kinesis.process_records", "kinesis.lambda_handler"):
        (span,) = [s for s in out["spans"] if s["name"] == name]
        assert span["links"] == [request]  # the one context the batch's records carry
        assert span["parent"] == request
        assert span["context"][0] == request[0]  # the same trace
