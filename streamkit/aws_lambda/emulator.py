"""A local emulator of Lambda's Kinesis event source mapping: polls a stream and invokes a handler.

Per shard it polls GetRecords (back to back while behind, once a second when caught up), splits the
records over `parallelization_factor` lanes by partition key (so each key stays in order while a
shard's batches overlap), builds events exactly as AWS does, invokes the handler synchronously, and
applies AWS's semantics through `esm_core.decide`: batch size and batching window, the 6 MB payload
cap, retries, bisection, record age, partial batch responses, OnFailure records (metadata only, as
AWS sends them) and tumbling windows with state. Parents are handled before their children. With a
`checkpoint_store`, the mapping's position per shard (the last record before the first unfinished
one) is kept there, so a restart resumes where the last run stopped.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from streamkit.aws_lambda.esm_core import (
    EVENT_PAYLOAD_LIMIT,
    Outcome,
    PendingRecord,
    ShardProgress,
    decide,
    payload_size,
)
from streamkit.checkpoints.base import NO_OWNER_CHECK, CheckpointStore
from streamkit.checkpoints.model import LATEST, SHARD_END, TRIM_HORIZON, Checkpoint, Lease
from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.destinations import as_destination
from streamkit.errors import ConfigurationError, NoProgressError, StreamkitError, ThrottledError
from streamkit.hashing import ShardInfo, lane_of
from streamkit.retry import Interrupted, call_until_answered
from streamkit.shard_reader import ReaderSettings, ShardReader, startable
from streamkit.transport import as_kinesis, stream_name_of
from streamkit.validation import check_fields

__all__ = ["EsmConfig", "EsmStats", "EventSourceMapping", "LambdaContext"]

log = logging.getLogger("streamkit.esm")
ACCOUNT = "000000000000"


@dataclass(frozen=True, kw_only=True)
class EsmConfig:
    """The event source mapping's settings, with AWS's names and ranges."""

    batch_size: int = 100
    batching_window: float = 0.0
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "LATEST"
    parallelization_factor: int = 1
    bisect_on_error: bool = False
    max_retry_attempts: int = -1  # -1: until the record expires, as AWS's default
    max_record_age: float = -1  # -1: until retention runs out
    report_batch_item_failures: bool = False
    on_failure: Any = None  # "file:PATH", "sqs:URL" or a destination with send_json
    tumbling_window: float = 0.0
    function_name: str = "streamkit-local-function"
    timeout: float = 60.0  # the function timeout the handler's context counts down from
    region: str = "us-east-1"
    retry_delay: float = 0.2  # pause before re-invoking a failed batch

    def __post_init__(self) -> None:
        check_fields(self)  # types, NaN and infinity first
        checks = [
            (1 <= self.batch_size <= 10_000, f"batch_size must be 1..10000, got {self.batch_size}"),
            (0 <= self.batching_window <= 300, f"batching_window must be 0..300 s, got {self.batching_window}"),
            (self.starting_position in ("TRIM_HORIZON", "LATEST"), "starting_position must be TRIM_HORIZON or LATEST"),
            (1 <= self.parallelization_factor <= 10, "parallelization_factor must be 1..10"),
            (self.max_retry_attempts == -1 or 0 <= self.max_retry_attempts <= 10_000,
             "max_retry_attempts must be -1 or 0..10000"),
            (self.max_record_age == -1 or 60 <= self.max_record_age <= 604_800,
             "max_record_age must be -1 or 60..604800 s"),
            (0 <= self.tumbling_window <= 900, "tumbling_window must be 0..900 s"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigurationError(message)
        if self.on_failure is not None:
            from streamkit.destinations import check_destination

            check_destination(self.on_failure)  # the EventSourceMapping opens it


class PayloadTooLargeError(Exception):
    """The invocation Lambda refuses: its payload is over the synchronous invoke limit."""


class LambdaContext:
    """The fields of Lambda's context object a handler may use; the remaining time counts down."""

    def __init__(self, function_name: str, timeout: float, region: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = "128"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._clock = clock
        self._deadline = clock.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock.monotonic()) * 1000))


@dataclass
class EsmStats:
    invocations: int = 0
    records_delivered: int = 0
    records_succeeded: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    records_discarded: int = 0
    bisections: int = 0
    max_concurrent_per_shard: int = 0
    windows_closed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_json(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k != "lock"}


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Lane:
    """One of a shard's parallel lanes: its records in order, batches, retries and window state."""

    def __init__(self, owner: EventSourceMapping, shard_id: str, index: int) -> None:
        self.owner = owner
        self.shard_id = shard_id
        self.index = index
        self.pending: deque[PendingRecord] = deque()
        self.retry: deque[list[PendingRecord]] = deque()
        self.cond = threading.Condition()
        self.first_wait: float | None = None
        self.window_start: float | None = None
        self.window_state: dict[str, Any] = {}
        self.busy = False

    def offer(self, records: list[PendingRecord]) -> None:
        with self.cond:
            self.pending.extend(records)
            self.cond.notify_all()

    def idle(self) -> bool:
        """Nothing to deliver, nothing in flight, and no tumbling window still open (its final call is due)."""
        with self.cond:
            return not self.pending and not self.retry and not self.busy and self.window_start is None

    def head(self) -> list[PendingRecord]:
        """The first record waiting for a retry, if any (for messages)."""
        with self.cond:
            return [self.retry[0][0]] if self.retry and self.retry[0] else []

    # -- batching --------------------------------------------------------------------------------
    def _next_batch(self) -> list[PendingRecord] | None:
        cfg = self.owner.config
        with self.cond:
            while not self.owner.stopping.is_set():
                if self.retry:
                    self.busy = True
                    return self.retry.popleft()
                if self.pending:
                    now = self.owner.clock.monotonic()
                    if self.first_wait is None:
                        self.first_wait = now
                    window = cfg.tumbling_window
                    if window and self.window_start is not None and \
                            self.pending[0].arrival >= self.window_start + window:
                        self.busy = True
                        return []  # the window closed: a final invocation for it first
                    full = len(self.pending) >= cfg.batch_size
                    if full or now - self.first_wait >= cfg.batching_window:
                        batch: list[PendingRecord] = []
                        size = 0
                        while self.pending and len(batch) < cfg.batch_size:
                            r = self.pending[0]
                            if window:
                                start = r.arrival - r.arrival % window
                                if self.window_start is None:
                                    self.window_start = start
                                elif start != self.window_start:
                                    break
                            if batch and size + r.event_size > EVENT_PAYLOAD_LIMIT:
                                break  # the 6 MB synchronous payload cap
                            batch.append(self.pending.popleft())
                            size += r.event_size
                        self.first_wait = None if not self.pending else self.owner.clock.monotonic()
                        self.busy = True
                        return batch
                    self.cond.wait(max(0.001, cfg.batching_window - (now - self.first_wait)))
                    continue
                if cfg.tumbling_window and self.window_start is not None and \
                        self.owner.clock.time() >= self.window_start + cfg.tumbling_window:
                    self.busy = True
                    return []  # the window ended with nothing more to deliver: its final invocation
                self.cond.wait(0.05)
            return None

    def run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                if not batch and self.owner.config.tumbling_window:
                    self._close_window()
                else:
                    self._deliver(batch)
            finally:
                with self.cond:
                    self.busy = False
                    self.cond.notify_all()

    # -- invoking --------------------------------------------------------------------------------
    def _deliver(self, batch: list[PendingRecord]) -> None:
        owner, cfg = self.owner, self.owner.config
        response, error = owner.invoke(self, batch, final=False)
        outcome = decide(batch, error=error, response=response, report_batch_item_failures=cfg.report_batch_item_failures,
                         bisect_on_error=cfg.bisect_on_error, max_retry_attempts=cfg.max_retry_attempts,
                         max_record_age=cfg.max_record_age, now=owner.clock.time())
        if cfg.tumbling_window and error is None and isinstance(response, Mapping) and "state" in response:
            self.window_state = dict(response["state"] or {})
        owner.account(self, batch, outcome, error)
        if outcome.retry:
            with self.cond:
                self.retry.extendleft(reversed(outcome.retry))
            if len(outcome.retry) == 1:
                owner.clock.wait(owner.stopping, cfg.retry_delay)

    def _close_window(self) -> None:
        owner = self.owner
        owner.invoke(self, [], final=True)
        with owner.stats.lock:
            owner.stats.windows_closed += 1
        self.window_state = {}
        self.window_start = None


#: Lambda polls each shard about once a second when caught up, back to back (5 calls/s) while behind.
_POLLING = ReaderSettings(max_records=10_000, min_poll_interval=0.2, idle_poll_interval=1.0)


class EventSourceMapping:
    """Runs a Lambda handler ``(event, context)`` over a stream the way AWS's event source mapping does.

    ``stream`` is a name or an ARN; ``client`` a boto3 Kinesis client or any `KinesisTransport`.
    """

    def __init__(self, stream: str, handler: Callable[[dict[str, Any], Any], Any], *, client: Any = None,
                 config: EsmConfig | None = None, checkpoint_store: CheckpointStore | None = None,
                 clock: Clock = SYSTEM_CLOCK, metrics: Any = None) -> None:
        """`metrics`: a `streamkit.metrics.Metrics` or a spec: RecordsProcessed, RecordsFailed,
        RecordsDeadLettered, RecordsRetried, IteratorAgeMilliseconds (per shard at `detailed`)."""
        self.stream = stream
        self.stream_name = stream_name_of(stream)
        from streamkit.metrics import as_metrics

        self._recorder, self._own_recorder = as_metrics(metrics)
        self.metrics = self._recorder.scope(self.stream_name, "Invoke")
        self.checkpoint_store = checkpoint_store
        self.handler = handler
        self.config = config or EsmConfig()
        # The first GetRecords of a shard asks for one batch per lane (more as the records' size allows).
        self._polling = replace(_POLLING, first_limit=min(10_000, self.config.batch_size * self.config.parallelization_factor))
        self.clock = clock
        self._failure_destination = None if self.config.on_failure is None else as_destination(self.config.on_failure)
        self.transport = as_kinesis(client, stream=self.stream, retries=0, region=self.config.region)  # streamkit retries itself
        self.stopping = threading.Event()
        self.stats = EsmStats()
        self._lanes: dict[str, list[_Lane]] = {}
        self._active: dict[str, int] = {}
        # Shards by id as listed, those read to their end (records all handled), and those of the
        # first listing (read from `starting_position`; shards that appear later from TRIM_HORIZON).
        self._known: dict[str, ShardInfo] = {}
        self._done: set[str] = set()
        self._initial: set[str] = set()
        self._caught_up: set[str] = set()  # shards whose last GetRecords found nothing new
        self._readers: dict[str, ShardReader] = {}
        self._shard_lock = threading.Lock()
        # With a checkpoint store: each shard's progress and lease (one writer per shard: this mapping).
        self._progress: dict[str, ShardProgress] = {}
        self._leases: dict[str, Lease] = {}
        self._threads: list[threading.Thread] = []
        self._arn = ""
        self._last_record = clock.monotonic()
        self._failing_since: float | None = None  # the first failed invocation since the last one that succeeded
        self._errors: list[BaseException] = []

    @property
    def namespace(self) -> str:
        """Where the mapping's positions live in the checkpoint store."""
        return f"esm:{self.config.function_name}:{self.stream_name}"

    # -- public ----------------------------------------------------------------------------------
    def run(self, *, stop_after_idle: float | None = None) -> EsmStats:
        """Poll and invoke until `stop()` or until nothing arrived for `stop_after_idle` seconds.

        Idle: every shard's last read found nothing new and every batch was handled. With
        `stop_after_idle`, that many seconds in which Kinesis did not answer, or every invocation failed, raise
        `NoProgressError`: a run that keeps failing is not idle, and does not end silently.
        """
        def start() -> None:
            self._arn = self.transport.describe_stream_summary(self.stream).arn
            self._refresh_shards(initial=True)

        try:
            try:
                call_until_answered(start, what=f"start on {self.stream}", warn=log.warning, clock=self.clock,
                                    stop=self.stopping, give_up_after=stop_after_idle)
            except Interrupted:
                return self.stats
            while not self.clock.wait(self.stopping, 0.1):
                if self._errors:
                    break
                if stop_after_idle is not None:
                    if self._idle_for(stop_after_idle):
                        break
                    self._check_progress(stop_after_idle)
        finally:
            self.stop()
            for t in self._threads:
                t.join(30)
            if self._own_recorder:
                self._recorder.close()
            else:
                self._recorder.flush()
        if self._errors:
            raise self._errors[0]
        return self.stats

    def _idle_for(self, seconds: float) -> bool:
        """Nothing arrived for `seconds`, every shard's last read found nothing new (a poller still
        throttled or backing off is not idle), and every lane has handled what it was given."""
        if self.clock.monotonic() - self._last_record < seconds:
            return False
        with self._shard_lock:
            shards = [sid for sid in self._lanes if sid not in self._done]
            # A shard whose last call failed is not caught up, whatever its last successful read said.
            if any(sid not in self._caught_up or self._readers[sid].troubled for sid in shards):
                return False
        return all(lane.idle() for lanes in list(self._lanes.values()) for lane in lanes)

    def _check_progress(self, limit: float) -> None:
        now = self.clock.monotonic()
        with self._shard_lock:
            readers = [r for sid, r in self._readers.items() if sid not in self._done]
        stuck = [r for r in readers if r.unanswered_for() >= limit]
        if stuck:
            r = stuck[0]
            self._fail(NoProgressError(f"no answer from Kinesis for {r.shard_id} in {r.unanswered_for():.0f} s "
                                       f"(stop_after_idle={limit:g}): the endpoint does not answer"))
            return
        failing_since = self._failing_since
        if failing_since is not None and now - failing_since >= limit:
            waiting = [(lane.shard_id, rec) for lanes in list(self._lanes.values()) for lane in lanes
                       for rec in lane.head()]
            detail = ", ".join(f"{sid} from {r.sequence_number} (attempt {r.attempts})" for sid, r in waiting[:3])
            self._fail(NoProgressError(f"every invocation failed for {now - failing_since:.0f} s "
                                       f"(stop_after_idle={limit:g}): the handler keeps failing on {detail or 'a batch'}"))

    def _fail(self, error: BaseException) -> None:
        self._errors.append(error)
        self.stopping.set()

    def stop(self) -> None:
        self.stopping.set()
        for lanes in list(self._lanes.values()):
            for lane in lanes:
                with lane.cond:
                    lane.cond.notify_all()

    # -- shards ----------------------------------------------------------------------------------
    def _refresh_shards(self, *, initial: bool = False, ended: str | None = None) -> None:
        """Learn the stream's shards and start each whose parents are done: as AWS does, a parent's
        records are all handled before its children's first batch.

        `ended` (a shard read to its end and handled) is marked done under the same lock as its
        children start, so the idle check never sees a moment with the one done and the others not
        yet started.
        """
        shards = self.transport.list_shards(self.stream)
        with self._shard_lock:
            if ended is not None:
                self._save_position(ended, SHARD_END)
                self._done.add(ended)
            for shard in shards:
                sid = shard.shard_id
                if sid in self._known:
                    continue
                self._known[sid] = shard
                if self._load_lease(sid).checkpoint.is_shard_end:
                    self._done.add(sid)  # handled to its end by an earlier run
                    continue
                if initial:
                    self._initial.add(sid)
                    if self.config.starting_position == "LATEST" and not shard.is_open:
                        self._done.add(sid)  # closed before the mapping started: nothing to read from it
            ready = startable(list(self._known.values()), lambda sid: sid in self._done)
            for shard in ready:
                if shard.shard_id not in self._lanes:
                    self._start_shard(shard.shard_id)

    def _shard_ended(self, shard_id: str) -> None:
        """The shard is read to its end: once its lanes have handled everything, its children may start."""
        lanes = self._lanes[shard_id]
        while not self.stopping.is_set() and not all(lane.idle() for lane in lanes):
            self.clock.wait(self.stopping, 0.05)
        if self.stopping.is_set():
            return
        log.info("shard %s finished; starting the children that are ready", shard_id)
        try:
            call_until_answered(lambda: self._refresh_shards(ended=shard_id), what=f"list the shards of {self.stream}",
                                warn=log.warning, clock=self.clock, stop=self.stopping)
        except Interrupted:
            return

    # -- positions -------------------------------------------------------------------------------
    def _load_lease(self, shard_id: str) -> Lease:
        """The shard's lease in the store (created at TRIM_HORIZON if new); a bare one without a store."""
        store = self.checkpoint_store
        if store is None:
            return Lease(shard_id=shard_id)
        lease = store.get_lease(self.namespace, shard_id)
        if lease is None:
            store.create_lease(self.namespace, Lease(shard_id=shard_id))
            lease = store.get_lease(self.namespace, shard_id)
        assert lease is not None
        self._leases[shard_id] = lease
        self._progress.setdefault(shard_id, ShardProgress())
        return lease

    def _save_position(self, shard_id: str, checkpoint: Checkpoint) -> None:
        store = self.checkpoint_store
        if store is None:
            return
        lease = self._leases[shard_id]
        new = store.update_lease(self.namespace, shard_id, expected_counter=lease.counter,
                                 expected_owner=NO_OWNER_CHECK, checkpoint=checkpoint)
        if new is None:  # another writer changed it (a second mapping on the same store): theirs stands
            log.warning("position of %s changed under the mapping; reloading it", shard_id)
            new = store.get_lease(self.namespace, shard_id) or lease
        self._leases[shard_id] = new

    def _finished(self, shard_id: str, records: list[PendingRecord]) -> None:
        """Records succeeded or were discarded: move the stored position past those now all finished."""
        if self.checkpoint_store is None or not records:
            return
        with self._shard_lock:
            seq = self._progress[shard_id].finish(records)
            if seq is None:
                return
            try:
                self._save_position(shard_id, Checkpoint(seq))
            except StreamkitError as exc:
                if not exc.retryable:
                    raise
                # The store does not answer (restarting?): the next finished batch stores a later position,
                # which covers this one; a crash meanwhile redelivers from the last one stored.
                log.warning("could not store the position of %s (%s); storing a later one next time", shard_id, exc)

    def _start_position(self, shard_id: str) -> Checkpoint:
        stored = self._leases.get(shard_id)
        if stored is not None and not stored.checkpoint.is_sentinel:
            return Checkpoint(stored.checkpoint.sequence_number)  # where an earlier run stopped
        if shard_id in self._initial:
            return LATEST if self.config.starting_position == "LATEST" else TRIM_HORIZON
        return TRIM_HORIZON  # a child shard: from its first record

    def _start_shard(self, shard_id: str) -> None:
        lanes = [_Lane(self, shard_id, i) for i in range(self.config.parallelization_factor)]
        self._lanes[shard_id] = lanes
        self._active[shard_id] = 0
        self._readers[shard_id] = ShardReader(self.transport, self.stream, shard_id, self._start_position(shard_id),
                                              stop=self.stopping, clock=self.clock, settings=self._polling,
                                              on_error=lambda err, n, delay: self._read_failed(shard_id, err, n))
        for lane in lanes:
            self._spawn(lane.run, f"esm-{shard_id}-lane{lane.index}")
        self._spawn(lambda: self._poll(shard_id), f"esm-{shard_id}-poller")

    def _read_failed(self, shard_id: str, err: StreamkitError, failures: int) -> None:
        if isinstance(err, ThrottledError) and failures < 5:
            return  # routine throttling: the reader backs off quietly
        if failures in (1, 5) or failures % 20 == 0:
            log.warning("shard %s: GetRecords failed %d time(s) in a row (%s); retrying with backoff", shard_id,
                        failures, err)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        def guarded() -> None:
            try:
                target()
            except BaseException as exc:
                log.error("%s stopped: %s", name, exc)
                self._fail(exc)

        t = threading.Thread(target=guarded, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _poll(self, shard_id: str) -> None:
        lanes = self._lanes[shard_id]
        closed = not self._known[shard_id].is_open
        p = len(lanes)
        for batch in self._readers[shard_id].batches():
            if batch.records:
                now = self.clock.monotonic()
                self._last_record = now
                by_lane: dict[int, list[PendingRecord]] = {}
                in_order: list[PendingRecord] = []
                for raw in batch.records:
                    if raw.get("ApproximateArrivalTimestamp") is None:
                        raw["ApproximateArrivalTimestamp"] = self.clock.time()
                    key = raw.get("PartitionKey")
                    # A keyless record (AUTO streams) has no order to keep: its sequence number spreads it.
                    lane = 0 if p == 1 else lane_of(key if key is not None else raw["SequenceNumber"], p)
                    record = PendingRecord(raw)
                    in_order.append(record)
                    by_lane.setdefault(lane, []).append(record)
                if self.checkpoint_store is not None:
                    with self._shard_lock:
                        self._progress[shard_id].read(in_order)
                for i, recs in by_lane.items():
                    lanes[i].offer(recs)
            if batch.ended:
                self._shard_ended(shard_id)
                return
            # A closed shard is never caught up: it ends, and its children then have records to read.
            with self._shard_lock:
                if batch.caught_up and not closed:
                    self._caught_up.add(shard_id)
                else:
                    self._caught_up.discard(shard_id)
            # Lambda keeps a bounded backlog in flight; do not read far ahead of the slowest lane, in
            # records or in bytes (what one fetch may hold: the reader's max_fetch_bytes).
            while not self.stopping.is_set() and self._backlog_full(lanes):
                self.clock.wait(self.stopping, 0.05)

    def _backlog_full(self, lanes: list[_Lane]) -> bool:
        if sum(len(lane.pending) for lane in lanes) > 4 * self.config.batch_size * len(lanes):
            return True
        return sum(len(r.raw["Data"]) for lane in lanes for r in lane.pending) > self._polling.max_fetch_bytes

    # -- invocations -------------------------------------------------------------------------------
    def build_event(self, lane: _Lane, batch: list[PendingRecord], *, final: bool) -> dict[str, Any]:
        cfg = self.config
        records = [{
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                **({"partitionKey": r.raw["PartitionKey"]} if r.raw.get("PartitionKey") is not None else {}),
                "sequenceNumber": r.sequence_number,
                "data": base64.b64encode(r.raw["Data"]).decode("ascii"),
                "approximateArrivalTimestamp": r.arrival,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{lane.shard_id}:{r.sequence_number}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/streamkit-local-esm",
            "awsRegion": cfg.region,
            "eventSourceARN": self._arn,
        } for r in batch]
        event: dict[str, Any] = {"Records": records}
        if cfg.tumbling_window:
            start = lane.window_start if lane.window_start is not None else self.clock.time()
            event.update(window={"start": _iso(start), "end": _iso(start + cfg.tumbling_window)},
                         state=dict(lane.window_state), shardId=lane.shard_id, eventSourceARN=self._arn,
                         isFinalInvokeForWindow=final, isWindowTerminatedEarly=False)
        return event

    def invoke(self, lane: _Lane, batch: list[PendingRecord], *, final: bool) -> tuple[Any, BaseException | None]:
        size = payload_size(batch)
        if size > EVENT_PAYLOAD_LIMIT:
            # A record too large for a synchronous invoke (a stream with records above ~4.5 MiB: base64 grows
            # them by a third). AWS documents the 6 MB limit, not what the mapping then does; here the
            # invocation fails without reaching the handler, and the mapping's retry policy applies
            # (MaximumRetryAttempts / MaximumRecordAgeInSeconds, then OnFailure; by default the shard waits).
            with self.stats.lock:
                self.stats.invocations += 1
            return None, PayloadTooLargeError(
                f"RequestEntityTooLargeException: the event of {len(batch)} record(s) is {size:,} bytes; Lambda "
                f"takes at most {EVENT_PAYLOAD_LIMIT:,} bytes for a synchronous invoke")
        event = self.build_event(lane, batch, final=final)
        with self.stats.lock:
            self.stats.invocations += 1
            self.stats.records_delivered += len(batch)
            self._active[lane.shard_id] += 1
            self.stats.max_concurrent_per_shard = max(self.stats.max_concurrent_per_shard, self._active[lane.shard_id])
        try:
            return self.handler(event, LambdaContext(self.config.function_name, self.config.timeout,
                                                     self.config.region, self.clock)), None
        except Exception as exc:
            return None, exc
        finally:
            with self.stats.lock:
                self._active[lane.shard_id] -= 1

    def account(self, lane: _Lane, batch: list[PendingRecord], outcome: Outcome, error: BaseException | None) -> None:
        with self.stats.lock:
            self.stats.records_succeeded += len(outcome.done)
            if error is not None:
                self.stats.function_errors += 1
            elif outcome.function_error:
                self.stats.partial_failures += 1
            if len(outcome.retry) == 2:
                self.stats.bisections += 1
            self.stats.records_discarded += len(outcome.discard)
        if outcome.done or outcome.discard or not outcome.function_error:
            self._failing_since = None  # records moved on (succeeded, or given up on to OnFailure)
        elif self._failing_since is None:
            self._failing_since = self.clock.monotonic()
        if outcome.function_error and batch:
            failed = [r for r in batch if r not in outcome.done]
            if failed:
                log.warning("invocation on %s failed (attempt %d) with %d record(s) from %s to %s: %s%s", lane.shard_id,
                            max(r.attempts for r in failed), len(failed), failed[0].sequence_number,
                            failed[-1].sequence_number, outcome.function_error,
                            "; retrying" if outcome.retry else "")
        m = self.metrics
        if m.enabled:
            shard = lane.shard_id
            m.count("RecordsProcessed", len(outcome.done), shard=shard)
            m.count("RecordsDeadLettered", len(outcome.discard), shard=shard)
            n_failed = len(batch) - len(outcome.done) - len(outcome.discard) if outcome.function_error else 0
            m.count("RecordsFailed", n_failed, shard=shard)
            m.count("RecordsRetried", sum(len(r) for r in outcome.retry), shard=shard)
            if batch:
                m.gauge("IteratorAgeMilliseconds", max(0.0, (self.clock.time() - batch[-1].arrival) * 1000), shard=shard,
                        unit="Milliseconds")
        if outcome.discard:
            self._on_failure(lane, outcome)
        self._finished(lane.shard_id, outcome.done + outcome.discard)

    def _on_failure(self, lane: _Lane, outcome: Outcome) -> None:
        recs = outcome.discard
        doc = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{self.config.region}:{ACCOUNT}:function:{self.config.function_name}",
                "condition": outcome.condition,
                "approximateInvokeCount": max(r.attempts for r in recs),
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": _iso(self.clock.time()),
            "KinesisBatchInfo": {
                "shardId": lane.shard_id,
                "startSequenceNumber": recs[0].sequence_number,
                "endSequenceNumber": recs[-1].sequence_number,
                "approximateArrivalOfFirstRecord": _iso(recs[0].arrival),
                "approximateArrivalOfLastRecord": _iso(recs[-1].arrival),
                "batchSize": len(recs),
                "streamArn": self._arn,
            },
        }
        log.error("discarding %d record(s) of %s (%s): %s", len(recs), lane.shard_id, outcome.condition,
                  outcome.function_error)
        if self._failure_destination is not None:
            self._failure_destination.send_json([doc])

