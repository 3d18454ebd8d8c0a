"""Tail: read a stream's user records as they are, for a person looking at it (`streamkit tail`, the console).

Read-only: no leases, no checkpoints. Each shard is read by the shard reader (`streamkit.shard_reader`:
iterators, expiry, backoff, 5 calls/s) in a thread of its own, deaggregated by the consumer's
`to_stream_records`, and its records come out of `Tail.records()` in order per shard, shards
interleaved. Parents are read before their children (`startable`), so a split or a merge mid-follow
goes on in the children; children always start at their first record.

A viewer shares the shard's read limits with the stream's real consumers, so it is gentler than one:
at most `TailConfig.calls_per_second` GetRecords calls per shard while behind, one call per
`idle_poll_interval` once caught up, and a token bucket (`streamkit.ratelimit`) holding its bytes to
`read_share` of a shard's 2 MiB/s. Throttling is backed off by the reader, halves the viewer's own call
rate for good (down to one call per `MAX_POLL_INTERVAL`), and is reported to `on_read_error`, as every
failed call is; after `TailConfig.give_up_after` seconds without any answer from the endpoint, `records()`
raises `NoProgressError` (a dead server is said, never waited on in silence).

Without `follow` a shard is done once a read finds it caught up (or it ends and its children are done):
`records()` returns when every shard is done, after `limit` records, or at `stop()`.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from streamkit.checkpoints.model import TRIM_HORIZON, Checkpoint
from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.consumer.retrieval import to_stream_records
from streamkit.errors import ConfigurationError, NoProgressError, StreamkitError, ThrottledError
from streamkit.hashing import ShardInfo
from streamkit.limits import MIB, SHARD_READ_BYTES_PER_S
from streamkit.positions import ReadPosition
from streamkit.ratelimit import TokenBucket
from streamkit.records import StreamRecord
from streamkit.shard_reader import ReaderSettings, ShardReader, fetched_bytes, startable
from streamkit.transport import KinesisTransport, StreamSummary, as_kinesis

__all__ = ["BODY_KINDS", "Tail", "TailConfig", "TailStats", "decode_body", "record_json"]

log = logging.getLogger("streamkit.tail")

#: The slowest a throttled viewer polls a shard (seconds between calls).
MAX_POLL_INTERVAL = 2.0
#: How long the reading threads get to notice a stop before `records()` returns without them.
_JOIN_TIMEOUT = 10.0


@dataclass(frozen=True, kw_only=True)
class TailConfig:
    """What to read: from where, which shards, until when."""

    position: ReadPosition = field(default_factory=lambda: ReadPosition(kind="LATEST"))
    #: Keep reading (and following reshards) until stopped; else stop once every shard is caught up.
    follow: bool = False
    #: Only these shards (and, once they end, their children); empty: every shard.
    shards: tuple[str, ...] = ()
    #: Stop after this many user records (None: no limit).
    limit: int | None = None
    calls_per_second: float = 4.0
    idle_poll_interval: float = 0.5
    #: The share of a shard's read bandwidth (2 MiB/s) this viewer takes, averaged over a second.
    read_share: float = 0.5
    #: Bytes one GetRecords call may return, about (10 MiB records still come, one per call).
    max_fetch_bytes: int = 2 * MIB
    #: Seconds of calls getting no answer at all (refused, reset, timed out) before giving up.
    give_up_after: float = 30.0

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ConfigurationError(f"limit must be at least 1, got {self.limit}")
        if not 0 < self.calls_per_second <= 5:
            raise ConfigurationError("calls_per_second must be in (0, 5]: a shard serves 5 GetRecords calls/s")
        if not 0 < self.read_share <= 1:
            raise ConfigurationError("read_share must be in (0, 1]")
        if self.position.kind == "AT_SEQUENCE_NUMBER" and len(self.shards) != 1:
            raise ConfigurationError("at-sequence names a record of one shard: give that shard (--shard SHARD_ID)")


@dataclass
class TailStats:
    records: int = 0
    shards_read: set[str] = field(default_factory=set)
    throttled: int = 0
    #: Why `records()` returned: "caught up", "limit", "stopped".
    ended_by: str = ""


@dataclass(frozen=True, slots=True)
class _Event:
    shard_id: str
    records: list[StreamRecord] | None = None  # a batch
    done: bool = False  # caught up (no follow) or ended
    children: tuple[ShardInfo, ...] = ()
    ended: bool = False
    error: BaseException | None = None


class Tail:
    """Reads `stream` (a name or an ARN) as `config` says; see the module docstring."""

    def __init__(self, stream: str, *, client: Any = None, config: TailConfig | None = None,
                 clock: Clock = SYSTEM_CLOCK,
                 on_read_error: Callable[[str, StreamkitError, int], None] | None = None) -> None:
        """`on_read_error(shard_id, error, count)`: each failed call (throttling included), as it is retried;
        `count` is the shard's throttles so far for a `ThrottledError`, else its failures in a row."""
        self.stream = stream
        self.transport: KinesisTransport = as_kinesis(client, stream=stream)
        self.config = config or TailConfig()
        self.clock = clock
        self.on_read_error = on_read_error
        self.stats = TailStats()
        self._stop = threading.Event()
        self._events: queue.Queue[_Event] = queue.Queue(maxsize=8)
        self._threads: list[threading.Thread] = []
        self._summary: StreamSummary | None = None

    def stop(self) -> None:
        """Stop reading; `records()` returns soon after (a signal handler may call this)."""
        self._stop.set()

    def check(self) -> StreamSummary:
        """The stream's summary and its shards checked against `config.shards`: the errors a user makes,
        found before any read (`StreamNotFoundError`, `ConfigurationError`)."""
        if self._summary is None:
            summary = self.transport.describe_stream_summary(self.stream)
            shards = self.transport.list_shards(self.stream)
            unknown = sorted(set(self.config.shards) - {s.shard_id for s in shards})
            if unknown:
                raise ConfigurationError(f"stream {summary.name!r} has no shard {', '.join(unknown)}")
            self._summary = summary
        return self._summary

    def records(self) -> Iterator[StreamRecord]:
        """User records, in order per shard, until caught up (or stopped, with `follow`)."""
        summary = self.check()
        cfg = self.config
        known: dict[str, ShardInfo] = {}
        finished: set[str] = set()
        running: set[str] = set()
        try:
            self._discover(known, finished, running, summary, first=True)
            while True:
                if self._stop.is_set():
                    self.stats.ended_by = "stopped"
                    return
                if not running:
                    self.stats.ended_by = "caught up"
                    return
                try:
                    ev = self._events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if ev.error is not None:
                    raise ev.error
                if ev.records:
                    for rec in ev.records:
                        self.stats.records += 1
                        yield rec
                        if cfg.limit is not None and self.stats.records >= cfg.limit:
                            self.stats.ended_by = "limit"
                            return
                if ev.done:
                    running.discard(ev.shard_id)
                    finished.add(ev.shard_id)
                    if ev.ended:
                        for child in ev.children:
                            known.setdefault(child.shard_id, child)
                        self._discover(known, finished, running, summary, first=False,
                                       listed=bool(ev.children))
        finally:
            self._stop.set()
            for t in self._threads:
                t.join(_JOIN_TIMEOUT)

    # -- shards ------------------------------------------------------------------------------------
    def _discover(self, known: dict[str, ShardInfo], finished: set[str], running: set[str], summary: StreamSummary,
                  *, first: bool, listed: bool = False) -> None:
        """Start the shards that may be read now: the chosen ones at first, children as parents end."""
        cfg = self.config
        if not listed:
            for s in self.transport.list_shards(self.stream):
                known.setdefault(s.shard_id, s)
        if first:
            chosen = set(cfg.shards) if cfg.shards else set(known)
            # Shards not chosen count as finished, so the chosen ones (and their children) start.
            finished.update(sid for sid in known if sid not in chosen)
            if cfg.position.kind == "LATEST" and not cfg.shards:
                # A closed shard holds nothing newer than now: only its children could.
                finished.update(sid for sid, s in known.items() if not s.is_open)
        elif cfg.shards:
            # Only descendants of the chosen shards: a shard none of whose parents we read is not ours.
            for sid, s in known.items():
                if sid not in finished and sid not in running and not any(p in self.stats.shards_read for p in s.parents):
                    finished.add(sid)
        for s in startable(known.values(), lambda sid: sid in finished or sid in running):
            self._start(s, summary, first=first)
            running.add(s.shard_id)

    def _start(self, shard: ShardInfo, summary: StreamSummary, *, first: bool) -> None:
        pos = self.config.position
        if not first:
            start = TRIM_HORIZON  # a child: from its first record
        elif pos.kind == "AT_TIMESTAMP":
            start = Checkpoint("AT_TIMESTAMP", timestamp=pos.epoch_seconds)
        elif pos.kind == "AT_SEQUENCE_NUMBER":
            # Resuming "inside" the record's aggregate before sub-record 0 reads it whole, from that record.
            start = Checkpoint(str(pos.sequence_number), sub_sequence_number=-1)
        else:
            start = Checkpoint(pos.kind)
        self.stats.shards_read.add(shard.shard_id)
        t = threading.Thread(target=self._read, args=(shard.shard_id, start, summary.arn),
                             name=f"tail-{shard.shard_id}", daemon=True)
        self._threads.append(t)
        t.start()

    def _put(self, ev: _Event) -> bool:
        """Hand `ev` to `records()`; False if stopping (bounded: a slow terminal slows the reads)."""
        while not self._stop.is_set():
            try:
                self._events.put(ev, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _read(self, shard_id: str, start: Checkpoint, arn: str) -> None:
        cfg = self.config
        throttles = 0

        settings = ReaderSettings(min_poll_interval=1.0 / cfg.calls_per_second,
                                  idle_poll_interval=cfg.idle_poll_interval, max_fetch_bytes=cfg.max_fetch_bytes)
        pace = settings.min_poll_interval  # seconds between our calls; the reader keeps at least its own

        def failed(err: StreamkitError, failures: int, delay: float) -> None:
            nonlocal throttles, pace
            if isinstance(err, ThrottledError):
                throttles += 1
                self.stats.throttled += 1
                # Others need this shard more than a viewer: every throttle halves our call rate, for good.
                pace = min(MAX_POLL_INTERVAL, pace * 2)
            if self.on_read_error is not None:
                self.on_read_error(shard_id, err, throttles if isinstance(err, ThrottledError) else failures)
            silent = reader.unanswered_for()
            if silent >= cfg.give_up_after:  # raised through the reader's retry loop, out of records()
                raise NoProgressError(f"no answer from Kinesis for {silent:.0f} s while reading {shard_id} ({err})")

        reader = ShardReader(self.transport, self.stream, shard_id, start, stop=self._stop, clock=self.clock,
                             settings=settings, on_error=failed)
        share = SHARD_READ_BYTES_PER_S * cfg.read_share
        budget = TokenBucket.full(share, self.clock.monotonic())
        try:
            for batch in reader.batches():
                # An at-sequence start reads that record whole: sub-record -1 means skip nothing of it.
                after = batch.after if batch.after is not None and batch.after[1] >= 0 else None
                records = to_stream_records(batch.records, shard_id, after=after, event_source_arn=arn, body="bytes")
                if records and not self._put(_Event(shard_id, records=records)):
                    return
                if batch.ended:
                    self._put(_Event(shard_id, done=True, ended=True, children=tuple(batch.children)))
                    return
                if batch.caught_up and not cfg.follow:
                    self._put(_Event(shard_id, done=True))
                    return
                # Pay for what was read before the next call: a 10 MiB record waits its share of seconds.
                budget.charge(fetched_bytes(batch.records), self.clock.monotonic())
                wait = budget.wait_time(0, self.clock.monotonic())
                # And keep to our pace, beyond the pause the reader takes itself before its next call.
                wait = max(wait, pace - (settings.idle_poll_interval if batch.caught_up else settings.min_poll_interval))
                if wait > 0 and self.clock.wait(self._stop, wait):
                    return
        except BaseException as exc:  # handed to records(), which raises it in the caller's thread
            self._put(_Event(shard_id, error=exc))


BODY_KINDS = ("auto", "json", "text", "bytes")


def decode_body(data: bytes, mode: str = "auto") -> tuple[str, Any]:
    """(kind, value) of a record's data for display: ``("json", obj)``, ``("text", str)`` or ``("base64", str)``.

    ``auto`` tries JSON, then UTF-8 text, then shows base64; ``json``/``text`` fall back to base64 for a
    record that is not what was asked (the caller says so), never dropping it.
    """
    if mode in ("auto", "json"):
        try:
            return "json", orjson.loads(data)
        except orjson.JSONDecodeError:
            if mode == "json":
                return "base64", base64.b64encode(data).decode("ascii")
    if mode in ("auto", "text"):
        try:
            return "text", data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return "base64", base64.b64encode(data).decode("ascii")


def _arrival(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_json(rec: StreamRecord, body_mode: Any = "auto") -> dict[str, Any]:
    """A record as `streamkit tail --json` prints it and the console shows it. `body_mode`: a mode, or a
    model type (a record that does not validate is shown as ``auto`` would, with its ``validation_errors``)."""
    errors: list[dict[str, str]] | None = None
    if isinstance(body_mode, str):
        kind, body = decode_body(rec.data, body_mode)
    else:
        from streamkit.bodies import body_decoder, to_builtins
        from streamkit.errors import BodyValidationError

        try:
            kind, body = "json", to_builtins(body_decoder(body_mode)(rec.data))
        except BodyValidationError as exc:
            kind, body = decode_body(rec.data, "auto")
            errors = [{"field": f, "message": m} for f, m in exc.errors]
    fields = {"shard_id": rec.shard_id, "sequence_number": rec.sequence_number,
              "sub_sequence_number": rec.sub_sequence_number, "partition_key": rec.partition_key,
              "explicit_hash_key": rec.explicit_hash_key, "arrival": _arrival(rec.approximate_arrival_timestamp),
              "size": len(rec.data), "body_kind": kind, "body": body}
    if errors is not None:
        fields["validation_errors"] = errors
    return fields
