"""Lambda wrapper cost per record: streamkit's kinesis_handler vs Powertools' BatchProcessor, one process.

A 1,000-record Kinesis event of small JSON sensor readings; both handlers decode each record's JSON
and do nothing else. Also an aggregated event (the same readings KPL-aggregated), which Powertools
cannot deaggregate: its handler sees a handful of binary blobs, not the readings.

Typed bodies, on the same event: streamkit's ``kinesis_handler(body=Model)`` with a Pydantic model and
with a msgspec Struct, against Powertools' parser (``@event_parser`` with ``KinesisDataStreamEnvelope``
and the same Pydantic model), each handler reading one field of every validated reading.

Run: make bench   (or .venv/bin/python bench/lambda_wrapper.py)
"""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from streamkit import kinesis_handler
from streamkit.aggregation import UserRecord, build_all
from streamkit.records import StreamRecord

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/sensors"
N = 1000


class Context:
    function_name = "bench"
    aws_request_id = "req"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def record(data: bytes, key: str, seq: int) -> dict[str, Any]:
    return {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": key, "sequenceNumber": str(seq),
                        "data": base64.b64encode(data).decode(), "approximateArrivalTimestamp": 1_700_000_000.5},
            "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": f"shardId-000000000000:{seq}",
            "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/r",
            "awsRegion": "us-east-1", "eventSourceARN": ARN}


def readings() -> list[tuple[str, bytes]]:
    return [(f"sensor-{i % 50}", orjson.dumps({"sensor_id": f"sensor-{i % 50}", "seq": i, "temp_c": 21.5 + i % 7,
                                                "humidity": 40 + i % 13})) for i in range(N)]


def best(fn: Any, runs: int = 30) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    base = 49590338271490256608559692538361571095921575989136588800
    data = readings()
    plain_event = {"Records": [record(d, k, base + i) for i, (k, d) in enumerate(data)]}
    aggs = build_all([UserRecord(d, k) for k, d in data], max_bytes=25 * 1024)
    agg_event = {"Records": [record(a.build(), a.partition_key or "", base + i) for i, a in enumerate(aggs)]}
    ctx = Context()

    sink: list[Any] = []

    @kinesis_handler(body="json")
    def sk_handler(r: StreamRecord) -> None:
        r.body  # noqa: B018 - decode, as the Powertools handler does

    processor = BatchProcessor(event_type=EventType.KinesisDataStreams)

    def pt_record_handler(record: KinesisStreamRecord) -> None:
        record.kinesis.data_as_json()

    def pt_noop(record: KinesisStreamRecord) -> None:
        return None

    def pt(event: dict[str, Any], handler: Any) -> Any:
        return process_partial_response(event=event, record_handler=handler, processor=processor, context=ctx)

    # Sanity: both see every reading in the plain event; on the aggregated one Powertools sees blobs.
    seen: list[Any] = []
    kinesis_handler(body="json")(lambda r: seen.append(r.body))(agg_event, ctx)
    assert len(seen) == N
    assert pt(agg_event, pt_noop) == {"batchItemFailures": []}

    t_sk = best(lambda: sk_handler(plain_event, ctx))
    t_pt = best(lambda: pt(plain_event, pt_record_handler))
    t_pt_noop = best(lambda: pt(plain_event, pt_noop))
    t_sk_agg = best(lambda: sk_handler(agg_event, ctx))
    t_b64_json = best(lambda: [orjson.loads(base64.b64decode(r["kinesis"]["data"])) for r in plain_event["Records"]])
    us = 1e6 / N
    print(f"Lambda wrapper, {N:,}-record event of small JSON readings, best of 30 runs, one process")
    print()
    print(f"{'handler':<58} {'us/record':>10}")
    print(f"{'streamkit kinesis_handler(body=json)':<58} {t_sk * us:>10.2f}")
    print(f"{'Powertools BatchProcessor + data_as_json()':<58} {t_pt * us:>10.2f}")
    print(f"{'Powertools BatchProcessor, do-nothing handler':<58} {t_pt_noop * us:>10.2f}")
    print(f"{'base64 + orjson alone (the floor)':<58} {t_b64_json * us:>10.2f}")
    print()
    print(f"streamkit / Powertools time: {t_sk / t_pt:.2f}x (streamkit takes {t_sk / t_pt:.0%} of Powertools' time; "
          f"goal <= 0.35x)")
    print(f"streamkit / the floor: {t_sk / t_b64_json:.2f}x (goal <= 1.6x)")
    print()
    print(f"aggregated event ({len(aggs)} KPL records holding the same {N:,} readings): streamkit "
          f"{t_sk_agg * us:.2f} us per reading, deaggregated; Powertools cannot deaggregate (its handler "
          f"gets {len(aggs)} binary blobs, and data_as_json() fails on them)")
    del sink
    print()
    typed_rows(plain_event, ctx)


def typed_rows(event: dict[str, Any], ctx: Context) -> None:
    """body=Model (Pydantic, msgspec) against Powertools' parser with a Kinesis envelope, same event, same run."""
    import msgspec
    import pydantic
    from aws_lambda_powertools.utilities.parser import envelopes, event_parser

    class PydanticReading(pydantic.BaseModel):
        sensor_id: str
        seq: int
        temp_c: float
        humidity: int

    class StructReading(msgspec.Struct):
        sensor_id: str
        seq: int
        temp_c: float
        humidity: int

    total = [0.0]

    @kinesis_handler(body=PydanticReading, on_failure=lambda letters: None)
    def sk_pydantic(r: StreamRecord[PydanticReading]) -> None:
        total[0] += r.body.temp_c

    @kinesis_handler(body=StructReading, on_failure=lambda letters: None)
    def sk_msgspec(r: StreamRecord[StructReading]) -> None:
        total[0] += r.body.temp_c

    @event_parser(model=PydanticReading, envelope=envelopes.KinesisDataStreamEnvelope)
    def pt_parser(readings: list[PydanticReading], context: Any) -> None:
        for reading in readings:
            total[0] += reading.temp_c

    # Sanity: each sees every reading, validated, with the same values.
    for h in (sk_pydantic, sk_msgspec, pt_parser):
        total[0] = 0.0
        h(event, ctx)
        assert total[0] == sum(21.5 + i % 7 for i in range(N)), h

    rows = [("streamkit kinesis_handler(body=PydanticModel)", sk_pydantic),
            ("streamkit kinesis_handler(body=msgspec.Struct)", sk_msgspec),
            ("Powertools @event_parser(model, KinesisDataStreamEnvelope)", pt_parser)]
    times = {name: best(lambda h=h: h(event, ctx)) for name, h in rows}
    t_pt = times[rows[2][0]]
    us = 1e6 / N
    print(f"Typed bodies, the same {N:,}-record event, each reading validated into a 4-field model, best of 30 runs")
    print()
    print(f"{'handler':<62} {'us/record':>10} {'vs Powertools parser':>21}")
    for name, _h in rows:
        print(f"{name:<62} {times[name] * us:>10.2f} {times[name] / t_pt:>20.2f}x")
    print()
    print(f"streamkit typed / Powertools parser time: Pydantic {times[rows[0][0]] / t_pt:.2f}x, "
          f"msgspec {times[rows[1][0]] / t_pt:.2f}x (below 1: streamkit is faster)")


if __name__ == "__main__":
    main()
