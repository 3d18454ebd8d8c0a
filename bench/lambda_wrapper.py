"""Lambda wrapper cost per record: streamkit's kinesis_handler vs Powertools' BatchProcessor, one process.

A 1,000-record Kinesis event of small JSON sensor readings; both handlers decode each record's JSON
and do nothing else. Also an aggregated event (the same readings KPL-aggregated), which Powertools
cannot deaggregate: its handler sees a handful of binary blobs, not the readings.

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
    print(f"streamkit / Powertools time: {t_sk / t_pt:.2f}x (streamkit takes {t_sk / t_pt:.0%} of Powertools' time)")
    print()
    print(f"aggregated event ({len(aggs)} KPL records holding the same {N:,} readings): streamkit "
          f"{t_sk_agg * us:.2f} us per reading, deaggregated; Powertools cannot deaggregate (its handler "
          f"gets {len(aggs)} binary blobs, and data_as_json() fails on them)")
    del sink


if __name__ == "__main__":
    main()
