"""AlertWorker: the slow per-record work behind the dispatcher (here: flag hot windows).

Deployed, the dispatcher invokes it with {"records": [...]} (each a StreamRecord as JSON, data base64);
locally, `streamkit dispatch --template ... --worker alert:work` calls `work` with each StreamRecord.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

HOT_C = 30.0


def work(record: Any) -> None:
    """One aggregate: a StreamRecord (locally) whose body is the window's aggregate."""
    aggregate = json.loads(record.data)
    _flag(aggregate)


def handler(event: dict[str, Any], context: Any) -> None:
    for doc in event.get("records", []):
        _flag(json.loads(base64.b64decode(doc["data"])))


def _flag(aggregate: dict[str, Any]) -> None:
    line = f"{aggregate['sensor_id']} {aggregate['count']} {aggregate['max_temp_c']} " \
           f"{'HOT' if aggregate['max_temp_c'] >= HOT_C else 'ok'}"
    out = os.environ.get("SENSOR_PIPELINE_OUT")
    if out:  # the local run's record of what the workers did
        with open(out, "a") as fh:
            fh.write(line + "\n")
    else:
        print(line)
