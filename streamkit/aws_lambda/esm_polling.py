"""Polling one shard: GetRecords through the shared `ShardReader`, records handed to the shard's lanes.

Lambda polls each shard about once a second when caught up, back to back (5 calls/s) while behind,
and keeps a bounded backlog in flight: the poller does not read far ahead of the slowest lane.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from streamkit.aws_lambda.esm_core import PendingRecord
from streamkit.aws_lambda.esm_lanes import Lane, split_by_lane
from streamkit.aws_lambda.esm_positions import Positions
from streamkit.clock import Clock
from streamkit.errors import StreamkitError, ThrottledError
from streamkit.limits import GET_RECORDS_MAX_RECORDS
from streamkit.shard_reader import ReaderBase, ReaderSettings

__all__ = ["POLLING", "PollState", "backlog_full", "consumer_source", "poll_shard", "read_failed"]

#: A stream consumer's ARN (enhanced fan-out), as EventSourceArn takes it: the stream's ARN, /consumer/NAME:EPOCH.
_CONSUMER_ARN = re.compile(r"^(arn:aws[a-z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/[A-Za-z0-9_.-]{1,128})"
                           r"/consumer/[A-Za-z0-9_.-]{1,128}:\d+$")


def consumer_source(source: str) -> tuple[str, str | None]:
    """(the stream, the consumer ARN or None) for a mapping's source: a stream name or ARN, or a consumer ARN
    (then records are pushed with SubscribeToShard instead of polled)."""
    m = _CONSUMER_ARN.match(source)
    return (m.group(1), source) if m else (source, None)

log = logging.getLogger("streamkit.esm")

#: Lambda polls each shard about once a second when caught up, back to back (5 calls/s) while behind.
POLLING = ReaderSettings(max_records=GET_RECORDS_MAX_RECORDS, min_poll_interval=0.2, idle_poll_interval=1.0)


@dataclass
class PollState:
    """What the pollers tell the mapping: when a record last arrived, and which shards are caught up."""

    last_record: float
    caught_up: set[str] = field(default_factory=set)  # shards whose last GetRecords found nothing new


def read_failed(shard_id: str, err: StreamkitError, failures: int) -> None:
    """Say so when a shard's reads keep failing (routine throttling stays quiet)."""
    if isinstance(err, ThrottledError) and failures < 5:
        return  # routine throttling: the reader backs off quietly
    if failures in (1, 5) or failures % 20 == 0:
        log.warning("shard %s: GetRecords failed %d time(s) in a row (%s); retrying with backoff", shard_id,
                    failures, err)


def backlog_full(lanes: list[Lane], batch_size: int, max_fetch_bytes: int) -> bool:
    """The lanes hold enough: more than four batches each, or more bytes than one fetch may hold."""
    if sum(len(lane.pending) for lane in lanes) > 4 * batch_size * len(lanes):
        return True
    return sum(lane.pending_bytes() for lane in lanes) > max_fetch_bytes


def poll_shard(shard_id: str, reader: ReaderBase, lanes: list[Lane], *, closed: bool, positions: Positions,
               state: PollState, clock: Clock, settings: ReaderSettings, on_end: Callable[[str], None],
               select: Callable[[str, list[PendingRecord]], list[PendingRecord]]) -> None:
    """Read the shard to its end (then `on_end`) or until the mapping stops, feeding its lanes the
    records `select` keeps (it finishes those it drops: the filter)."""
    owner = lanes[0].owner
    for batch in reader.batches():
        if batch.records:
            state.last_record = clock.monotonic()
            in_order: list[PendingRecord] = []
            for raw in batch.records:
                if raw.get("ApproximateArrivalTimestamp") is None:
                    raw["ApproximateArrivalTimestamp"] = clock.time()
                in_order.append(PendingRecord(raw))
            positions.read(shard_id, in_order)
            for i, recs in split_by_lane(select(shard_id, in_order), len(lanes)).items():
                lanes[i].offer(recs)
        if batch.ended:
            for lane in lanes:
                lane.shard_ended()  # its open windows close now
            on_end(shard_id)
            return
        # A closed shard is never caught up: it ends, and its children then have records to read.
        with positions.lock:
            if batch.caught_up and not closed:
                state.caught_up.add(shard_id)
            else:
                state.caught_up.discard(shard_id)
        # Lambda keeps a bounded backlog in flight; do not read far ahead of the slowest lane, in
        # records or in bytes (what one fetch may hold: the reader's max_fetch_bytes).
        while not owner.stopping.is_set() and backlog_full(lanes, owner.config.batch_size, settings.max_fetch_bytes):
            clock.wait(owner.stopping, 0.05)
