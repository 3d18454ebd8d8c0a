"""A local emulator of Lambda's Kinesis event source mapping: polls a stream and invokes a handler.

Per shard it polls GetRecords (back to back while behind, once a second when caught up), splits the
records over `parallelization_factor` lanes by partition key (so each key stays in order while a
shard's batches overlap), builds events exactly as AWS does, invokes the handler synchronously, and
applies AWS's semantics through `esm_core.decide`: batch size and batching window, the 6 MB payload
cap, retries, bisection, record age, partial batch responses, OnFailure records (metadata only, as
AWS sends them) and tumbling windows with state. Parents are handled before their children. With a
`checkpoint_store`, the mapping's position per shard (the last record before the first unfinished
one) is kept there, so a restart resumes where the last run stopped.

One module per concern, this one the run loop that ties them together:
`esm_config` (settings, counts), `esm_core` (the pure decisions after an invocation), `esm_lanes`
(batching and retries per lane), `esm_polling` (GetRecords into lanes), `esm_discovery` (which shards,
parents first), `esm_positions` (start and stored positions), `esm_invoke` (event, context, the call),
`esm_on_failure` (the OnFailure record).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from streamkit.aws_lambda.esm_config import EsmConfig, EsmStats
from streamkit.aws_lambda.esm_core import Outcome, PendingRecord
from streamkit.aws_lambda.esm_discovery import ShardDiscovery
from streamkit.aws_lambda.esm_filters import RecordFilter, compile_criteria
from streamkit.aws_lambda.esm_invoke import ACCOUNT, Invoker, LambdaContext, PayloadTooLargeError, WindowView, build_event
from streamkit.aws_lambda.esm_lanes import Lane
from streamkit.aws_lambda.esm_metrics import MappingMetrics, mapping_uuid
from streamkit.aws_lambda.esm_on_failure import failure_record, s3_failure_object, s3_object_key
from streamkit.aws_lambda.esm_polling import POLLING, PollState, consumer_source, poll_shard, read_failed
from streamkit.aws_lambda.esm_positions import Positions, initial_position
from streamkit.checkpoints.base import CheckpointStore
from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.consumer.efo import EfoReader
from streamkit.destinations import S3Destination, as_destination
from streamkit.errors import NoProgressError
from streamkit.limits import GET_RECORDS_MAX_RECORDS
from streamkit.retry import Interrupted, call_until_answered
from streamkit.shard_reader import IdleConfirmation, ReaderBase, ShardReader
from streamkit.transport import as_kinesis, stream_name_of

__all__ = ["ACCOUNT", "EsmConfig", "EsmStats", "EventSourceMapping", "LambdaContext", "PayloadTooLargeError"]

log = logging.getLogger("streamkit.esm")


class EventSourceMapping:
    """Runs a Lambda handler ``(event, context)`` over a stream the way AWS's event source mapping does.

    ``stream`` is a name or an ARN; ``client`` a boto3 Kinesis client or any `KinesisTransport`.
    """

    def __init__(self, stream: str, handler: Callable[[dict[str, Any], Any], Any], *, client: Any = None,
                 config: EsmConfig | None = None, checkpoint_store: CheckpointStore | None = None,
                 clock: Clock = SYSTEM_CLOCK, metrics: Any = None, environments: Any = None,
                 on_report: Callable[[Any], None] | None = None) -> None:
        """`metrics`: a `streamkit.metrics.Metrics` or a spec: RecordsProcessed, RecordsFailed,
        RecordsDeadLettered, RecordsRetried, IteratorAgeMilliseconds (per shard at `detailed`).
        `environments`: where invocations run (`streamkit.aws_lambda.environments`; default: this process);
        `on_report`: called with each invocation's `Report` (the REPORT line's figures)."""
        # An enhanced fan-out consumer's ARN as the source: the same mapping, its records pushed (SubscribeToShard).
        self.stream, self.consumer_arn = consumer_source(stream)
        self.stream_name = stream_name_of(self.stream)
        from streamkit.metrics import as_metrics

        self._recorder, self._own_recorder = as_metrics(metrics)
        self.metrics = self._recorder.scope(self.stream_name, "Invoke")
        self.config = config or EsmConfig()
        self.aws_metrics = MappingMetrics(self._recorder, function_name=self.config.function_name,
                                          uuid=mapping_uuid(self.config.function_name, self.stream_name))
        self.checkpoint_store = checkpoint_store
        self.handler = handler
        # The first GetRecords of a shard asks for one batch per lane (more as the records' size allows).
        first = min(GET_RECORDS_MAX_RECORDS, self.config.batch_size * self.config.parallelization_factor)
        self._polling = replace(POLLING, first_limit=first)
        self.clock = clock
        self._failure_destination = None if self.config.on_failure is None else as_destination(self.config.on_failure)
        self.transport = as_kinesis(client, stream=self.stream, retries=0, region=self.config.region)  # streamkit retries itself
        self.stopping = threading.Event()
        self.stats = EsmStats()
        self.invoker = Invoker(handler, self.config, self.stats, clock, environments=environments, on_report=on_report)
        self.record_filter = RecordFilter(compile_criteria(self.config.filter_criteria))
        self._told_aggregates = False
        self._created_at: float | None = None
        self._lanes: dict[str, list[Lane]] = {}
        self._readers: dict[str, ReaderBase] = {}
        self._idle_confirmation = IdleConfirmation()
        self._shard_lock = threading.Lock()
        self.positions = Positions(checkpoint_store, self.namespace, self._shard_lock)
        self.shards = ShardDiscovery(self.positions, self.config.starting_position)
        self._polled = PollState(last_record=clock.monotonic())
        self._threads: list[threading.Thread] = []
        self._failing_since: float | None = None  # the first failed invocation since the last one that succeeded
        self._errors: list[BaseException] = []

    @property
    def namespace(self) -> str:
        """Where the mapping's positions live in the checkpoint store."""
        return f"esm:{self.config.function_name}:{self.stream_name}"

    @property
    def _arn(self) -> str:
        return self.invoker.arn

    # -- public ----------------------------------------------------------------------------------
    def run(self, *, stop_after_idle: float | None = None) -> EsmStats:
        """Poll and invoke until `stop()` or until nothing arrived for `stop_after_idle` seconds.

        Idle: every shard's last read found nothing new and every batch was handled. With
        `stop_after_idle`, that many seconds in which Kinesis did not answer, or every invocation failed, raise
        `NoProgressError`: a run that keeps failing is not idle, and does not end silently.
        """
        def start() -> None:
            summary = self.transport.describe_stream_summary(self.stream)
            self.invoker.arn, self._created_at = summary.arn, summary.created_at
            self._refresh_shards(initial=True)

        if self.record_filter and self.consumer_arn is None:
            # Known at start, whatever the stream holds: said before the first read, and again when it happens.
            log.warning("a data filter on a polled source: KPL aggregated records (streamkit's producer writes them "
                        "by default) are not JSON and never match it, as on AWS, which applies filters to aggregated "
                        "records only with an enhanced fan-out source; write plain records (produce --no-aggregate) "
                        "or give a stream consumer ARN as the source")
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

    def stop(self) -> None:
        self.stopping.set()
        for lanes in list(self._lanes.values()):
            for lane in lanes:
                lane.wake()

    # -- ending ----------------------------------------------------------------------------------
    def _idle_for(self, seconds: float) -> bool:
        """Nothing arrived for `seconds`, every shard's last read found nothing new (a poller still
        throttled or backing off is not idle), and every lane has handled what it was given."""
        if self.clock.monotonic() - self._polled.last_record < seconds:
            self._idle_confirmation.reset()
            return False
        with self._shard_lock:
            shards = [sid for sid in self._lanes if sid not in self.shards.done]
            # A shard whose last call failed is not caught up, whatever its last successful read said.
            if any(sid not in self._polled.caught_up or self._readers[sid].troubled for sid in shards):
                self._idle_confirmation.reset()
                return False
            readers = {sid: self._readers[sid] for sid in shards}
        if not all(lane.idle() for lanes in list(self._lanes.values()) for lane in lanes):
            self._idle_confirmation.reset()
            return False
        # ... and every poller answered once more since it was first seen so (`IdleConfirmation`).
        return self._idle_confirmation.confirmed(readers)

    def _check_progress(self, limit: float) -> None:
        now = self.clock.monotonic()
        with self._shard_lock:
            readers = [r for sid, r in self._readers.items() if sid not in self.shards.done]
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

    # -- shards ----------------------------------------------------------------------------------
    def _refresh_shards(self, *, initial: bool = False, ended: str | None = None) -> None:
        """List the stream's shards and start each whose parents are done (`esm_discovery`).

        `ended` (a shard read to its end and handled) is marked done under the same lock as its
        children start, so the idle check never sees a moment with the one done and the others not
        yet started.
        """
        shards = self.transport.list_shards(self.stream)
        with self._shard_lock:
            for shard in self.shards.learn(shards, initial=initial, ended=ended):
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

    def _start_shard(self, shard_id: str) -> None:
        lanes = [Lane(self, shard_id, i) for i in range(self.config.parallelization_factor)]
        self._lanes[shard_id] = lanes
        cfg = self.config
        initial = (initial_position(cfg.starting_position, cfg.starting_position_timestamp, self._created_at)
                   if shard_id in self.shards.initial else None)
        start = self.positions.start(shard_id, initial=initial)
        reader: ReaderBase
        if self.consumer_arn is not None:
            reader = EfoReader(self.transport, self.stream, self.consumer_arn, shard_id, start, stop=self.stopping,
                               clock=self.clock, on_error=lambda err, n, delay: read_failed(shard_id, err, n))
        else:
            reader = ShardReader(self.transport, self.stream, shard_id, start, stop=self.stopping, clock=self.clock,
                                 settings=self._polling, on_error=lambda err, n, delay: read_failed(shard_id, err, n))
        self._readers[shard_id] = reader
        for lane in lanes:
            self._spawn(lane.run, f"esm-{shard_id}-lane{lane.index}")
        closed = not self.shards.is_open(shard_id)
        self._spawn(lambda: poll_shard(shard_id, reader, lanes, closed=closed, positions=self.positions,
                                       state=self._polled, clock=self.clock, settings=self._polling,
                                       on_end=self._shard_ended, select=self._select), f"esm-{shard_id}-poller")

    def _select(self, shard_id: str, records: list[PendingRecord]) -> list[PendingRecord]:
        """The records the filter criteria deliver; the others are finished here (the position passes them)."""
        with self.stats.lock:
            self.stats.records_polled += len(records)
        self.aws_metrics.events(PolledEventCount=len(records))
        if not self.record_filter:
            return records
        kept: list[PendingRecord] = []
        dropped: list[PendingRecord] = []
        efo = self.consumer_arn is not None
        for r in records:
            (kept if self.record_filter.keep(r.raw["Data"], enhanced_fan_out=efo) else dropped).append(r)
        if not dropped:
            return records
        with self.stats.lock:
            self.stats.records_filtered_out += len(dropped)
        self.aws_metrics.events(FilteredOutEventCount=len(dropped))
        aggregates = 0 if efo or self._told_aggregates else \
            sum(RecordFilter.meets_aggregate(r.raw["Data"]) for r in dropped)
        if aggregates:
            self._told_aggregates = True
            log.warning("%s holds KPL aggregated records: %d of %s's first read with any were filtered out (AWS "
                        "applies a data filter to aggregated records only with an enhanced fan-out source)",
                        self.stream, aggregates, shard_id)
        self.positions.finished(shard_id, dropped)
        return kept

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

    # -- invocations -------------------------------------------------------------------------------
    def build_event(self, lane: Lane, batch: list[PendingRecord], *, final: bool) -> dict[str, Any]:
        return build_event(batch, shard_id=lane.shard_id, config=self.config, arn=self._arn,
                           window=lane.window_view(final=final))

    def caught_up(self, shard_id: str) -> bool:
        """The shard's last read found nothing new (and its reader is not failing)."""
        with self._shard_lock:
            return shard_id in self._polled.caught_up and not self._readers[shard_id].troubled

    def invoke_lane(self, lane: Lane, batch: list[PendingRecord], window: WindowView | None
                    ) -> tuple[Any, BaseException | None]:
        return self.invoker.invoke(lane.shard_id, batch, window, lane=lane.index)

    def account(self, lane: Lane, batch: list[PendingRecord], outcome: Outcome, error: BaseException | None, *,
                invoked: bool = True) -> None:
        """Count an invocation's outcome (`invoked` False: records discarded before any invocation), say what
        failed, hand discarded records on, move the position."""
        failed_events = 0
        if invoked and (error is not None or outcome.function_error):
            failed_events = len(batch) if error is not None else len(batch) - len(outcome.done)
        with self.stats.lock:
            if invoked:
                self.stats.invoked_events += len(batch)
                self.stats.failed_invoke_events += failed_events
            self.stats.dropped_events += len(outcome.discard)
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
        self._record_metrics(lane.shard_id, batch, outcome)
        self.aws_metrics.events(InvokedEventCount=len(batch) if invoked else 0, FailedInvokeEventCount=failed_events,
                                DroppedEventCount=len(outcome.discard))
        if outcome.discard:
            try:
                self._on_failure(lane, outcome)
            except Interrupted:
                return  # stopped while the destination was down: the records stay unfinished, read again next run
        self.positions.finished(lane.shard_id, outcome.done + outcome.discard)

    def _record_metrics(self, shard: str, batch: list[PendingRecord], outcome: Outcome) -> None:
        m = self.metrics
        if not m.enabled:
            return
        m.count("RecordsProcessed", len(outcome.done), shard=shard)
        m.count("RecordsDeadLettered", len(outcome.discard), shard=shard)
        n_failed = len(batch) - len(outcome.done) - len(outcome.discard) if outcome.function_error else 0
        m.count("RecordsFailed", n_failed, shard=shard)
        m.count("RecordsRetried", sum(len(r) for r in outcome.retry), shard=shard)
        if batch:
            age = max(0.0, (self.clock.time() - batch[-1].arrival) * 1000)
            m.gauge("IteratorAgeMilliseconds", age, shard=shard, unit="Milliseconds")
            self.aws_metrics.iterator_age(age)

    def _on_failure(self, lane: Lane, outcome: Outcome) -> None:
        recs = outcome.discard
        doc = failure_record(recs, outcome, shard_id=lane.shard_id, config=self.config, arn=self._arn,
                             now=self.clock.time())
        log.error("discarding %d record(s) of %s (%s): %s", len(recs), lane.shard_id, outcome.condition,
                  outcome.function_error)
        destination = self._failure_destination
        if destination is None:
            return
        write: Callable[[], None] = lambda: destination.send_json([doc])  # noqa: E731
        if isinstance(destination, S3Destination):  # S3 objects carry the invocation's payload, keyed as AWS keys them
            key = s3_object_key(self.aws_metrics.uuid, lane.shard_id, self.clock.time())
            obj = s3_failure_object(doc, build_event(recs, shard_id=lane.shard_id, config=self.config, arn=self._arn))
            write = lambda: destination.put(key, obj)  # noqa: E731
        # A destination that cannot be written is waited for, saying so: the shard does not move past the
        # records until their OnFailure record is written (never dropped because a destination is down).
        call_until_answered(write, what=f"write the OnFailure record to {destination!r}", warn=log.warning,
                            clock=self.clock, stop=self.stopping)
        with self.stats.lock:
            self.stats.on_failure_delivered_events += len(recs)
        self.aws_metrics.events(OnFailureDestinationDeliveredEventCount=len(recs))
