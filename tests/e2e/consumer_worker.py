"""A consumer worker process for the crash, lease and shutdown tests: logs every record and lifecycle event.

Each record is appended to --log as a JSON line before the batch is checkpointed, so the log always
holds everything the worker processed, even when it is SIGKILLed between two writes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import IO, Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from streamkit.aws.clients import aws_client
from streamkit.checkpoints import DynamoDBCheckpointStore, SqliteCheckpointStore
from streamkit.consumer import (
    Consumer,
    ConsumerConfig,
    InitializationInput,
    LeaseLostInput,
    ProcessRecordsInput,
    RecordProcessor,
    ShardEndedInput,
    ShutdownRequestedInput,
)
from streamkit.errors import LeaseLostError


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--stream", required=True, action="append", help="repeat for several streams")
    ap.add_argument("--app", default="crash-app")
    ap.add_argument("--log", required=True)
    ap.add_argument("--sqlite")
    ap.add_argument("--dynamodb-endpoint")
    ap.add_argument("--table")
    ap.add_argument("--layout", default="streamkit", choices=("streamkit", "kcl"))
    ap.add_argument("--balance", default="count", choices=("count", "load"))
    ap.add_argument("--worker-id", default=f"w-{os.getpid()}")
    ap.add_argument("--lease-duration", type=float, default=1.5)
    ap.add_argument("--max-records", type=int, default=500)
    ap.add_argument("--stop-after-idle", type=float, default=None)
    ap.add_argument("--slow", type=float, default=0.0, help="seconds to sleep per checkpointed chunk")
    ap.add_argument("--checkpoint-every", type=int, default=0, help="records per checkpoint (0: per batch)")
    args = ap.parse_args()
    log: IO[bytes] = open(args.log, "ab", buffering=0)  # noqa: SIM115 - lives as long as the process

    def event(kind: str, **fields: Any) -> None:
        log.write(orjson.dumps({"ev": kind, "w": args.worker_id, "t": time.time(), **fields}) + b"\n")

    class Logging(RecordProcessor):
        shard = ""

        def initialize(self, input: InitializationInput) -> None:
            self.shard = input.shard_id
            event("init", s=input.shard_id, cp=input.extended_sequence_number)

        def process_records(self, input: ProcessRecordsInput) -> None:
            # Log a chunk, then checkpoint after its last record: with --checkpoint-every smaller than an
            # aggregate, checkpoints (and so restarts) fall inside aggregates.
            step = args.checkpoint_every or len(input.records)
            for start in range(0, len(input.records), step):
                chunk = input.records[start:start + step]
                lines = [orjson.dumps({"ev": "rec", "w": args.worker_id, "st": r.stream_name, "s": r.shard_id,
                                       "q": r.sequence_number, "u": r.sub_sequence_number, "k": r.partition_key,
                                       "d": r.data.decode()})
                         for r in chunk]
                log.write(b"\n".join(lines) + b"\n")
                if args.slow:
                    time.sleep(args.slow)
                last = chunk[-1]
                try:
                    input.checkpointer.checkpoint(last)
                except LeaseLostError:
                    event("cp_rejected", s=self.shard, q=last.sequence_number, u=last.sub_sequence_number)
                    raise
                event("cp", s=self.shard, q=last.sequence_number, u=last.sub_sequence_number)

        def lease_lost(self, input: LeaseLostInput) -> None:
            event("lost", s=input.shard_id)

        def shard_ended(self, input: ShardEndedInput) -> None:
            input.checkpointer.checkpoint_shard_end()
            event("end", s=input.shard_id)

        def shutdown_requested(self, input: ShutdownRequestedInput) -> None:
            input.checkpointer.checkpoint()
            event("shutdown", s=input.shard_id, h=input.handoff_to)

    if args.sqlite:
        store: Any = SqliteCheckpointStore(args.sqlite)
    else:
        store = DynamoDBCheckpointStore(args.table, client=aws_client("dynamodb", endpoint_url=args.dynamodb_endpoint),
                                        layout=args.layout)
    client = aws_client("kinesis", endpoint_url=args.endpoint, retries=2)
    config = ConsumerConfig(worker_id=args.worker_id, lease_duration=args.lease_duration,
                            max_records=args.max_records, idle_poll_interval=0.2, shard_sync_interval=2.0,
                            balance=args.balance)
    event("start")
    streams = args.stream if len(args.stream) > 1 else args.stream[0]
    Consumer(streams, Logging, application_name=args.app, checkpoint_store=store, client=client,
             config=config).run(stop_after_idle=args.stop_after_idle)
    event("exit")


if __name__ == "__main__":
    main()
