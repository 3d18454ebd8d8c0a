"""The templates' function: writes each record's data to $STREAMKIT_TEST_OUT with the function's STAGE variable."""

from __future__ import annotations

import base64
import os

STAGE = os.environ.get("STAGE", "unset")  # read at import, as Lambda's module-level code does


def handler(event: dict, context: object) -> dict:
    with open(os.environ["STREAMKIT_TEST_OUT"], "a") as fh:
        for r in event["Records"]:
            fh.write(f"{STAGE} {base64.b64decode(r['kinesis']['data']).decode()}\n")
    # A tumbling-window function hands its state on (here unchanged), as Lambda requires of it.
    return {"batchItemFailures": [], "state": event.get("state") or {}}
