"""A traced application for tests/integration/test_tracing.py, run in a process of its own (an
OpenTelemetry tracer provider is global to a process): a request span around Producer.put, then the
consumer and the Lambda wrapper read the records back; prints the spans as JSON."""

from __future__ import annotations

import base64
import sys
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from producer import Producer, ProducerConfig
from streamkit import kinesis_handler
from streamkit.aws.clients import aws_client
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.consumer import Consumer

endpoint, stream = sys.argv[1], sys.argv[2]
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("app")
client = aws_client("kinesis", endpoint_url=endpoint)

with Producer(stream, client=client, config=ProducerConfig(record_max_buffered_time=5.0)) as p:
    with tracer.start_as_current_span("request") as request:
        for i in range(5):
            p.put_json({"i": i, "traced": True}, "sensor-1")
    for i in range(5):
        p.put_json({"i": i, "traced": False}, "sensor-1")  # outside any span: no context
    p.flush()

got: list[Any] = []
Consumer(stream, lambda r: got.append(r.body), application_name="traced", checkpoint_store=MemoryCheckpointStore(),
         client=client).run(install_signal_handlers=False, stop_after_idle=1.5)

shard = client.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
it = client.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
raw = client.get_records(ShardIterator=it)["Records"]
event = {"Records": [{"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": r["PartitionKey"],
                                  "sequenceNumber": r["SequenceNumber"], "data": base64.b64encode(r["Data"]).decode(),
                                  "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp()},
                      "eventSource": "aws:kinesis", "eventID": f"{shard}:{r['SequenceNumber']}",
                      "eventSourceARN": f"arn:aws:kinesis:us-east-1:000000000000:stream/{stream}"} for r in raw]}
seen: list[Any] = []
kinesis_handler(lambda r: seen.append(r.data))(event, None)


def ids(ctx: Any) -> list[str]:
    return [f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"]


spans = [{"name": s.name, "context": ids(s.context), "parent": ids(s.parent) if s.parent else None,
          "links": [ids(link.context) for link in s.links]} for s in exporter.get_finished_spans()]
print(orjson.dumps({"request": ids(request.get_span_context()), "consumed": len(got), "handled": len(seen),
                    "kinesis_records": len(raw), "spans": spans}).decode())
