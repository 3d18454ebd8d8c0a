"""A kclpy (v3) record processor for the interop tests: the same class runs under the real KCL's
MultiLangDaemon (``python -m tests.e2e.kcl_recorder``, through amazon_kclpy) and under `streamkit kcl run`.

It appends one JSON line per record to $RECORDER_OUT (side, run, shard, sequence, sub-sequence, data) and
checkpoints after each batch and on shutdown. With $RECORDER_CUT set to a record's data it checkpoints
exactly at that record (``checkpoint(sequence, sub_sequence)``, inside an aggregate too), touches
$RECORDER_CUT_MARK, and from then on records and checkpoints nothing more: the next owner must resume at
the next (sub-)record. With $RECORDER_HANG_AT set to a record's data it records the batch up to that
record, touches $RECORDER_CUT_MARK and hangs there, checkpointing nothing of the batch: the test then
SIGKILLs the worker mid-batch.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class Recorder:
    version = 3  # amazon_kclpy's processor interface version (v3: lease_lost, shard_ended, ...)

    def __init__(self) -> None:
        self.shard = ""
        self.frozen = False
        self.side = os.environ.get("RECORDER_SIDE", "?")
        self.run = int(os.environ.get("RECORDER_RUN", "0"))
        self.out = Path(os.environ["RECORDER_OUT"])
        self.cut = os.environ.get("RECORDER_CUT")
        self.hang_at = os.environ.get("RECORDER_HANG_AT")

    def initialize(self, initialize_input: Any) -> None:
        self.shard = initialize_input.shard_id

    def process_records(self, process_records_input: Any) -> None:
        if self.frozen:
            return
        lines = []
        cut_at = None
        for r in process_records_input.records:
            data = r.binary_data.decode()
            lines.append(json.dumps({"side": self.side, "run": self.run, "shard": self.shard, "seq": r.sequence_number,
                                     "sub": r.sub_sequence_number, "data": data}))
            if data == self.cut:
                cut_at = r
                break
            if data == self.hang_at:
                self._write(lines)
                Path(os.environ["RECORDER_CUT_MARK"]).touch()
                time.sleep(3600)  # killed here, mid-batch
        self._write(lines)
        if cut_at is not None:
            process_records_input.checkpointer.checkpoint(cut_at.sequence_number, cut_at.sub_sequence_number)
            self.frozen = True
            Path(os.environ["RECORDER_CUT_MARK"]).touch()
            return
        process_records_input.checkpointer.checkpoint()

    def _write(self, lines: list[str]) -> None:
        with self.out.open("a") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())

    def lease_lost(self, lease_lost_input: Any) -> None:
        pass

    def shard_ended(self, shard_ended_input: Any) -> None:
        shard_ended_input.checkpointer.checkpoint()

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        if not self.frozen:
            shutdown_requested_input.checkpointer.checkpoint()


if __name__ == "__main__":
    from amazon_kclpy import kcl

    kcl.KCLProcess(Recorder()).run()
