"""A no-op kclpy (v3) record processor for bench/kcl_cost.py: it counts each batch's records in $NOOP_OUT (one
small appended line per batch) and checkpoints after every batch. The same class runs under the real KCL's
MultiLangDaemon (``python bench/kcl_noop.py``) and under ``streamkit kcl run --processor kcl_noop:Noop``.
`count` is the handler `streamkit consume` gets for the same work (a line per 100 records)."""

from __future__ import annotations

import os
import threading
from typing import Any

_lock = threading.Lock()
_seen = [0]


def _note(n: int) -> None:
    fd = os.open(os.environ["NOOP_OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"%d\n" % n)
    finally:
        os.close(fd)


class Noop:
    version = 3  # amazon_kclpy's processor interface version

    def initialize(self, initialize_input: Any) -> None:
        pass

    def process_records(self, process_records_input: Any) -> None:
        n = len(process_records_input.records)
        if n:
            _note(n)
        process_records_input.checkpointer.checkpoint()

    def lease_lost(self, lease_lost_input: Any) -> None:
        pass

    def shard_ended(self, shard_ended_input: Any) -> None:
        shard_ended_input.checkpointer.checkpoint()

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        shutdown_requested_input.checkpointer.checkpoint()


def count(record: Any) -> None:
    """`streamkit consume`'s handler: no work, a line per 100 records."""
    with _lock:
        _seen[0] += 1
        if _seen[0] % 100 == 0:
            _note(100)


if __name__ == "__main__":
    from amazon_kclpy import kcl

    kcl.KCLProcess(Noop()).run()
