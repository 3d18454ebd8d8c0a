"""Handlers the CLI tests import as tests.e2e.handlers:NAME. Output goes to $STREAMKIT_TEST_OUT."""

from __future__ import annotations

import os
import threading
import time
from typing import IO

from streamkit.records import StreamRecord

_files: dict[str, IO[str]] = {}
_lock = threading.Lock()


def _out(line: str) -> None:
    # One handle per file for the process, line-buffered: every line is written at once (a SIGKILLed
    # worker loses none), without an open and close per record.
    path = os.environ["STREAMKIT_TEST_OUT"]
    with _lock:
        fh = _files.get(path)
        if fh is None:
            fh = _files[path] = open(path, "a", buffering=1)  # noqa: SIM115 - kept open for the process
        fh.write(line + "\n")


def collect(record: StreamRecord) -> None:
    _out(f"{record.shard_id} {record.sequence_number} {record.sub_sequence_number} {record.partition_key} "
         f"{record.data.decode()}")


def slow_collect(record: StreamRecord) -> None:
    time.sleep(0.01)
    collect(record)


def poison(record: StreamRecord) -> None:
    if record.data.endswith(b"7"):
        raise ValueError(f"poison {record.data!r}")
    collect(record)


def _dead_letter_file() -> str:
    return "file:" + os.environ["STREAMKIT_TEST_DEAD"]


def lambda_handler(event: dict, context: object) -> dict:  # type: ignore[type-arg]
    """A Lambda handler built with kinesis_handler: poison readings go to the dead-letter file."""
    from streamkit import kinesis_handler

    @kinesis_handler(body="json", max_attempts=2, on_failure=_dead_letter_file(), backoff_base=0.001)
    def handle(record: StreamRecord) -> None:
        if record.body.get("poison"):
            raise ValueError(f"poisoned reading {record.body}")
        # "seq" when the test wrote one; the README's readings have sensor_id and temp_c.
        _out(f"{record.partition_key} {record.body.get('seq', record.body.get('sensor_id'))} {record.body.get('temp_c')}")

    return handle(event, context)


def costs_two_ms(record: StreamRecord) -> None:
    """A handler of known cost, for the estimator's --measure."""
    time.sleep(0.002)


def lambda_worker(event: dict, context: object) -> dict:  # type: ignore[type-arg]
    """A Lambda function for the local Invoke endpoint: records the dispatcher's payloads."""
    for record in event.get("records", []):
        _out(f"{record['partition_key']} {record['sequence_number']}")
    return {"ok": len(event.get("records", []))}


def always_fails(event: dict, context: object) -> dict:  # type: ignore[type-arg]
    """A Lambda handler whose downstream is down."""
    raise ConnectionError("downstream down")


def failing_worker(record: StreamRecord) -> None:
    """A dispatcher worker whose downstream is down."""
    raise ConnectionError("downstream down")


class KclpyCollect:
    """A kclpy (v3) record processor, as written for amazon_kclpy: `streamkit kcl run` runs it unchanged."""

    def initialize(self, initialize_input: object) -> None:
        self.shard = initialize_input.shard_id  # type: ignore[attr-defined]

    def process_records(self, process_records_input: object) -> None:
        for r in process_records_input.records:  # type: ignore[attr-defined]
            _out(f"{self.shard} {r.sequence_number} {r.sub_sequence_number} {r.partition_key} {r.binary_data.decode()}")
        process_records_input.checkpointer.checkpoint()  # type: ignore[attr-defined]

    def lease_lost(self, lease_lost_input: object) -> None:
        pass

    def shard_ended(self, shard_ended_input: object) -> None:
        shard_ended_input.checkpointer.checkpoint()  # type: ignore[attr-defined]

    def shutdown_requested(self, shutdown_requested_input: object) -> None:
        shutdown_requested_input.checkpointer.checkpoint()  # type: ignore[attr-defined]


def slow_lambda(event: dict, context: object) -> dict:  # type: ignore[type-arg]
    """A plain Lambda handler (event, context), 10 ms a record: writes each record's data."""
    import base64

    for r in event["Records"]:
        time.sleep(0.01)
        _out(f"{r['eventID']} {base64.b64decode(r['kinesis']['data']).decode()}")
    return {"batchItemFailures": []}


class KclpySlowCollect(KclpyCollect):
    """KclpyCollect at 10 ms a record, checkpointing after each batch."""

    def process_records(self, process_records_input: object) -> None:
        time.sleep(0.01 * len(process_records_input.records))  # type: ignore[attr-defined]
        super().process_records(process_records_input)


def poison_tried(record: StreamRecord) -> None:
    """`poison`, writing a "tried" line at every delivery, so a test can count redeliveries."""
    _out(f"tried {record.data.decode()}")
    poison(record)


def poison_lambda(event: dict, context: object) -> dict:  # type: ignore[type-arg]
    """A plain Lambda handler that raises on a record whose data ends in 7 (the whole batch fails)."""
    import base64

    for r in event["Records"]:
        if base64.b64decode(r["kinesis"]["data"]).endswith(b"7"):
            raise ValueError("poison")
    return {}


class KclpyFailsToInitialize(KclpyCollect):
    """A kclpy processor whose initialize raises (its database is down)."""

    def initialize(self, initialize_input: object) -> None:
        raise RuntimeError("cannot connect to the database")


def _window_add(state: dict, record: StreamRecord) -> dict:  # type: ignore[type-arg]
    return {"n": state.get("n", 0) + 1, "sum": state.get("sum", 0) + record.body["temp_c"]}


def _window_store(window: object) -> None:
    import json

    _out(json.dumps({"start": window.start, "shard": window.shard_id, **window.state}))  # type: ignore[attr-defined]


def window_handler(event: dict, context: object) -> dict:  # type: ignore[type-arg]
    """A tumbling-window aggregation (count and sum of temp_c per shard per window), one line per window."""
    from streamkit.aws_lambda.windows import tumbling_window

    return tumbling_window(_window_add, _window_store)(event, context)
