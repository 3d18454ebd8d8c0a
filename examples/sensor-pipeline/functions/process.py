"""ProcessReadings: per-sensor aggregates over each tumbling window, written to the aggregates stream.

Tumbling windows (TumblingWindowInSeconds): Lambda hands the window's `state` from one invocation to the
next; the last invocation of a window (`isFinalInvokeForWindow`) writes one aggregate per sensor. A
reading whose body is not a JSON object with a numeric temp_c is reported in batchItemFailures; after
MaximumRetryAttempts the mapping sends its metadata to the on-failure queue.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import boto3

_kinesis = boto3.client("kinesis")  # made once per execution environment (INIT), reused by every invocation


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    state: dict[str, list[float]] = dict(event.get("state") or {})  # sensor -> [count, sum, max]
    failures = []
    for record in event.get("Records", []):
        try:
            reading = json.loads(base64.b64decode(record["kinesis"]["data"]))
            sensor, temp = str(reading["sensor_id"]), float(reading["temp_c"])
        except (ValueError, KeyError, TypeError):
            failures.append({"itemIdentifier": record["kinesis"]["sequenceNumber"]})
            continue
        count, total, top = state.get(sensor, [0, 0.0, temp])
        state[sensor] = [count + 1, total + temp, max(top, temp)]
    if event.get("isFinalInvokeForWindow") and state:
        window = event.get("window", {})
        _kinesis.put_records(StreamName=os.environ["AGGREGATES_STREAM"], Records=[
            {"PartitionKey": sensor, "Data": json.dumps({
                "sensor_id": sensor, "window_start": window.get("start"), "count": int(count),
                "mean_temp_c": round(total / count, 3), "max_temp_c": top}).encode()}
            for sensor, (count, total, top) in sorted(state.items())])
        state = {}
    return {"state": state, "batchItemFailures": failures}
