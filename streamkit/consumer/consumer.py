"""The Consumer: finds shards, takes and renews leases, runs a ShardConsumer thread per held shard."""

from __future__ import annotations

import inspect
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from streamkit.aio import blocking_methods
from streamkit.checkpoints.base import CheckpointStore
from streamkit.checkpoints.model import AT_TIMESTAMP, LATEST, SHARD_END, TRIM_HORIZON, Checkpoint, Lease
from streamkit.clock import Clock, as_clock
from streamkit.consumer.config import ConsumerConfig
from streamkit.consumer.leases import (
    LeaseHolder,
    LeaseObserver,
    RateMeter,
    adopt_lease,
    plan_takes,
    request_handoff,
    take_lease,
)
from streamkit.consumer.processor import LIFECYCLE, FunctionProcessor, RecordProcessor
from streamkit.consumer.shard_consumer import ShardConsumer, ShardStats
from streamkit.destinations import Destination, as_destination
from streamkit.errors import ConfigurationError, NoProgressError, ShardFailedError, StreamkitError
from streamkit.hashing import ShardInfo
from streamkit.records import StreamRecord
from streamkit.retry import Interrupted, call_until_answered
from streamkit.shard_reader import IdleConfirmation
from streamkit.signals import stopping_on_signals
from streamkit.transport import as_kinesis, is_stream_arn, region_of, stream_name_of

__all__ = ["DEFAULT_CHECKPOINT_FILE", "Consumer", "ShardFailedError"]

#: ``account:name:creation-epoch``: the KCL's serialized StreamIdentifier (StreamIdentifier.java's pattern).
_KCL_IDENTIFIER = re.compile(r"^[0-9]+:[A-Za-z0-9_.-]{1,128}:[0-9]+$")

#: Where a Consumer given no checkpoint_store keeps its positions: this file in the working directory.
DEFAULT_CHECKPOINT_FILE = "streamkit-checkpoints.db"

log = logging.getLogger("streamkit.consumer")


def _as_factory(processor_factory: Any, *, validate: bool = False) -> Callable[[], RecordProcessor]:
    """A RecordProcessor subclass, a zero-argument factory, or a plain per-record function (`validate`: its
    records' bodies are validated into their model before each call)."""
    if isinstance(processor_factory, type) and issubclass(processor_factory, RecordProcessor):
        cls = processor_factory
        return lambda: blocking_methods(cls(), LIFECYCLE)  # async def methods run on streamkit.aio's loop
    if isinstance(processor_factory, RecordProcessor):
        raise ConfigurationError("pass a processor class or factory, not an instance (one is made per shard)")
    if not callable(processor_factory):
        raise ConfigurationError(f"processor_factory must be callable, got {processor_factory!r}")
    try:
        params = [p for p in inspect.signature(processor_factory).parameters.values()
                  if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if params:
        func: Callable[[StreamRecord], Any] = processor_factory  # FunctionProcessor awaits an async def
        return lambda: FunctionProcessor(func, validate=validate)
    return lambda: blocking_methods(processor_factory(), LIFECYCLE)  # async def methods: the same


@dataclass
class _Stream:
    """One stream the consumer reads: as given, its name, and what DescribeStreamSummary said."""

    given: str
    name: str
    arn: str | None = None
    #: The KCL's stream identifier (account:name:epoch) naming its leases; None with one stream.
    ident: str | None = None
    efo_arn: str | None = None
    metrics: Any = None
    #: Given as a KCL identifier: use exactly it, whatever the stream's creation time says.
    forced_ident: str | None = None


@dataclass
class _Running:
    sc: ShardConsumer
    thread: threading.Thread
    stop: threading.Event
    meter: RateMeter


class Consumer:
    """Reads every shard of one or several streams in order, at least once, across any number of workers.

    ``processor_factory`` is a `RecordProcessor` subclass (or a callable returning a new one), or a
    plain function of one `StreamRecord`, called in order per shard and checkpointed after every batch.
    Workers sharing an ``application_name`` and a ``checkpoint_store`` (a DynamoDB one across machines)
    share the shards: each shard has one owner at a time. ``stream`` is a name or an ARN, or a list of
    them: one application, one lease table, leases balanced across streams and workers, and each record's
    `StreamRecord.stream_name` (and `event_source_arn`) says which stream it came from. ``client`` a
    boto3 Kinesis client or any `KinesisTransport` (`streamkit.testing.FakeKinesis` in tests).
    """

    _idle_confirmation: IdleConfirmation  # a new one per run() (`_run`)

    def __init__(self, stream: str | Sequence[str], processor_factory: Any, *, application_name: str,
                 checkpoint_store: CheckpointStore | None = None, client: Any = None,
                 config: ConsumerConfig | None = None, clock: Clock | Callable[[], float] | None = None,
                 metrics: Any = None) -> None:
        """`metrics`: a `streamkit.metrics.Metrics` or a spec ("emf", "emf:PATH", "cloudwatch",
        "prometheus:PORT"): RecordsProcessed, ProcessingTime, MillisBehindLatest, IteratorAgeMilliseconds,
        RecordsDeadLettered per shard, LeasesHeld and LeasesTaken for the worker."""
        given = [stream] if isinstance(stream, str) else list(stream)
        if not given or not all(isinstance(g, str) and g for g in given) or not application_name:
            raise ConfigurationError("stream (a name, an ARN, or a list of them) and application_name must not be empty")
        # A KCL multi-stream identifier (account:name:creation-epoch, as a MultiStreamTracker names its
        # streams) is read as that stream, with its leases under exactly that identifier.
        forced = {g.split(":")[1]: g for g in given if _KCL_IDENTIFIER.match(g)}  # name -> identifier
        given = [g.split(":")[1] if _KCL_IDENTIFIER.match(g) else g for g in given]
        names = [stream_name_of(g) for g in given]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"the same stream is named twice in {given!r}")
        if checkpoint_store is None:
            # DESIGN's default, SQLite, made explicit: a named file in the working directory, and said.
            from streamkit.checkpoints.sqlite import SqliteCheckpointStore

            log.warning("no checkpoint_store given: positions are kept in %s (pass SqliteCheckpointStore(PATH), "
                        "DynamoDBCheckpointStore(TABLE) or MemoryCheckpointStore() to choose)",
                        Path(DEFAULT_CHECKPOINT_FILE).resolve())
            checkpoint_store = SqliteCheckpointStore(DEFAULT_CHECKPOINT_FILE)
        if not isinstance(checkpoint_store, CheckpointStore):
            raise ConfigurationError(f"checkpoint_store must be a CheckpointStore, got {checkpoint_store!r}")
        #: The first (or only) stream, as given, and its name.
        self.stream = given[0]
        self.stream_name = names[0]
        self.streams = given
        self._multi = len(given) > 1
        #: Leases carry the stream identifier (several streams; or one, on a KCL multi-stream table).
        self._keyed_by_stream = self._multi
        self._streams = [_Stream(g, n, forced_ident=forced.get(g)) for g, n in zip(given, names, strict=True)]
        self.application_name = application_name
        self.config = config or ConsumerConfig()
        from streamkit.bodies import body_name, is_model

        typed = is_model(self.config.body)
        self._factory = _as_factory(processor_factory, validate=typed)
        if typed and self.config.on_failure == "stop":
            log.warning("body=%s without on_failure: a record that does not validate stops its shard, which stays "
                        "blocked until that record expires; give on_failure a destination to set such records aside",
                        body_name(self.config.body))
        self.store = checkpoint_store
        arns = [g for g in given if is_stream_arn(g)]
        if len({region_of(a) for a in arns}) > 1:
            raise ConfigurationError(f"the streams {arns} are in different regions: one Consumer reads one region "
                                     "(run one per region)")
        self.transport = as_kinesis(client, stream=arns[0] if arns else self.stream, retries=0,
                                    max_pool_connections=64)  # streamkit retries itself
        # One stream: the leases of `app/stream`, keyed by shard id. Several: the leases of `app`, keyed
        # by the KCL's multi-stream key (account:stream:epoch:shard).
        self.namespace = application_name if self._multi else f"{application_name}/{self.stream_name}"
        from streamkit.metrics import as_metrics

        self._metrics, self._own_metrics = as_metrics(metrics if metrics is not None else self.config.metrics)
        for st in self._streams:
            st.metrics = self._metrics.scope(st.name, "ProcessRecords")
        self.metrics = self._streams[0].metrics
        self.worker_id = self.config.worker_id
        self._clock = as_clock(clock)
        self._observer = LeaseObserver(self._clock.monotonic)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._shards: dict[str, _Running] = {}  # by lease key
        self._ended_children: list[tuple[_Stream, list[ShardInfo]]] = []
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._finished_stats: dict[str, ShardStats] = {}
        self._destination: Destination | None = (
            None if self.config.on_failure == "stop" else as_destination(self.config.on_failure))
        self._next_expiry: float | None = None
        self._incoming_since: dict[str, float] = {}  # leases handed to this worker, by key: first seen pending
        self._waiting_notice = -1e18
        #: With stop_after_idle: when this worker's own shards last did something. Another worker's lease
        #: not seen renewed since then may belong to a worker that died meanwhile: idle waits for it.
        self._quiet_since: float | None = None
        self.started = threading.Event()

    # -- public ----------------------------------------------------------------------------------
    def run(self, *, install_signal_handlers: bool = True, stop_after_idle: float | None = None) -> None:
        """Process until `stop()` (or SIGTERM/SIGINT, or `stop_after_idle` seconds with nothing new).

        Idle means: nothing new for `stop_after_idle` seconds, no shard waiting for a lease another worker
        may have left behind, and every shard held last read to its tip (a confirmed-empty read: a failed
        read never counts). `stop_after_idle` seconds in which Kinesis does not answer at all (servers
        unreachable) raise `NoProgressError` instead.
        Raises `ShardFailedError` if a shard had to stop (records kept failing with on_failure="stop").
        """
        try:
            with stopping_on_signals(self.stop, install=install_signal_handlers):
                self._run(stop_after_idle)
        finally:
            if self._own_metrics:
                self._metrics.close()
            else:
                self._metrics.flush()
        if self._errors:
            raise self._errors[0]

    def _run(self, stop_after_idle: float | None) -> None:
        try:
            if not self._start(stop_after_idle):
                return
            last_sync = self._clock.monotonic()
            idle_since = self._clock.monotonic()
            self._idle_confirmation = IdleConfirmation()
            while not self._stopping.is_set():
                self._cycle()
                if self._errors:
                    break
                with self._lock:
                    ended, self._ended_children = self._ended_children, []
                if ended or self._clock.monotonic() - last_sync >= self.config.seconds.shard_sync_interval:
                    self._sync_shards_safely(ended)
                    last_sync = self._clock.monotonic()
                if stop_after_idle is not None:
                    if self._busy():
                        idle_since = self._clock.monotonic()
                        self._idle_confirmation.reset()
                    elif self._clock.monotonic() - idle_since >= stop_after_idle and self._caught_up():
                        log.info("no new records for %.1f s: stopping", stop_after_idle)
                        break
                    self._check_progress(stop_after_idle)
                self._clock.wait(self._wake, self._next_wait(stop_after_idle))
                self._wake.clear()
        finally:
            self._shutdown()

    def _next_wait(self, stop_after_idle: float | None) -> float:
        """Seconds until the next cycle: the next renewal, or the moment another worker's lease would expire
        (so a dead worker's shards are taken within lease_duration + one renewal interval of its death)."""
        wait = self.config.seconds.renew_interval
        if stop_after_idle is not None:
            wait = min(wait, 0.25)
        if self._next_expiry is not None:
            wait = min(wait, max(0.01, self._next_expiry - self._clock.monotonic() + 0.01))
        return wait

    def stop(self) -> None:
        """Ask every shard to finish its batch, call shutdown_requested, and release its lease."""
        with self._lock:
            self._stopping.set()
            for run in self._shards.values():
                run.stop.set()
        self._wake.set()

    def shard_stats(self) -> list[ShardStats]:
        with self._lock:
            return [run.sc.stats for run in self._shards.values()]

    @property
    def final_stats(self) -> list[ShardStats]:
        """Per shard, what this worker did over the whole run (read after `run` returns)."""
        with self._lock:
            stats = dict(self._finished_stats)
            stats.update({key: run.sc.stats for key, run in self._shards.items()})
        return [stats[k] for k in sorted(stats)]

    def _stream_of(self, lease: Lease) -> _Stream | None:
        if not self._keyed_by_stream:
            return self._streams[0] if lease.stream is None else None
        return next((st for st in self._streams if st.ident == lease.stream), None)

    def _on_a_multi_stream_table(self, ident: str) -> bool:
        """One stream, but the table keys its leases by stream (a KCL multi-stream application tracking
        one stream): keep to that layout rather than create a second set of leases."""
        leases = self.store.list_leases(self.namespace)
        if any(lease.stream == ident for lease in leases):
            log.info("the lease table keys %s's leases by stream (a KCL multi-stream table): using those", ident)
            return True
        return False

    def _say_other_epochs(self, ident: str) -> None:
        """Leases of the same stream under another creation epoch, and none under this one: the stream
        was created again, or the KCL application named it with another epoch. Said, not guessed."""
        account, name, _epoch = ident.split(":")
        leases = self.store.list_leases(self.namespace)
        if any(lease.stream == ident for lease in leases):
            return
        others = sorted({str(lease.stream) for lease in leases if lease.stream is not None
                         and lease.stream.split(":")[:2] == [account, name]})
        if others:
            log.warning("the lease table has leases of %s under %s, not %s (its creation time): new leases start at "
                        "initial_position; if those are this stream's, name it by that identifier (Consumer('%s', ...))",
                        name, ", ".join(others), ident, others[-1])

    def _leases(self) -> list[Lease]:
        """This application's leases of the streams it reads (a shared table may hold others)."""
        leases = self.store.list_leases(self.namespace)
        return [lease for lease in leases if self._stream_of(lease) is not None]

    # -- start -----------------------------------------------------------------------------------
    def _start(self, stop_after_idle: float | None) -> bool:
        """Describe the stream and create missing leases, retrying while the servers do not answer.

        False if a stop came first; `NoProgressError` after `stop_after_idle` seconds of failures.
        """
        def start() -> None:
            for st in self._streams:
                if st.arn is None:
                    summary = self.transport.describe_stream_summary(st.given)
                    st.arn = summary.arn
                    ident = st.forced_ident or summary.identifier
                    if self._multi or st.forced_ident or self._on_a_multi_stream_table(ident):
                        st.ident = ident
                        self._keyed_by_stream = True
                    self._say_other_epochs(ident)
                if self.config.enhanced_fan_out and st.efo_arn is None:
                    from streamkit.consumer.efo import register_consumer

                    name = self.config.efo_consumer_name or self.application_name
                    st.efo_arn = register_consumer(self.transport, st.arn, name, clock=self._clock)
            self._sync_shards()

        try:
            call_until_answered(start, what=f"start on {', '.join(self.streams)}", warn=log.warning, clock=self._clock,
                                stop=self._stopping, give_up_after=stop_after_idle)
        except Interrupted:
            return False
        self.started.set()
        return True

    # -- the loop --------------------------------------------------------------------------------
    def _cycle(self) -> None:
        try:
            self._cycle_leases()
        finally:
            # After this cycle's takes, so the gauge says what the worker holds now, not a cycle ago.
            with self._lock:
                self.metrics.gauge("LeasesHeld",
                                   sum(1 for run in self._shards.values() if not run.sc.finished.is_set()))

    def _cycle_leases(self) -> None:
        self._reap()
        with self._lock:
            running = [run for run in self._shards.values() if not run.sc.finished.is_set()]
        try:
            for run in running:
                h = run.sc.holder
                if h.lost.is_set():
                    continue
                if not h.renew(run.meter.sample(run.sc.stats.bytes)):
                    if self._stopping.is_set() or run.stop.is_set():
                        # Stopping or handing over: the shard's consumer may just have released it
                        # (checkpointed and let go) between the list above and this renewal; nothing was lost.
                        log.debug("lease on %s no longer ours while stopping", h.key)
                    else:
                        log.warning("lost the lease on %s (taken by another worker)", h.key)
                elif h.handoff.is_set() and not run.stop.is_set():
                    log.info("handing %s over to %s: finishing its batch and checkpointing", h.key, h.handing_to)
                    run.stop.set()
            leases = self._leases()
        except StreamkitError as exc:
            if not exc.retryable:
                raise
            log.warning("the checkpoint store did not answer (%s); retrying", exc)
            return
        self._observer.observe(leases)
        duration = self.config.seconds.lease_duration
        self._next_expiry = self._observer.next_expiry(leases, self.worker_id, duration)
        load = (lambda lease: lease.throughput_kbps or 0.0) if self.config.balance == "load" else None
        plan = plan_takes(leases, self.worker_id, lambda lease: self._observer.expired(lease, duration),
                          max_leases=self.config.max_leases_per_worker, load=load)
        with self._lock:
            running_keys = set(self._shards)
        if self._stopping.is_set():  # a shard failed meanwhile: take nothing more (its released lease least of all)
            return
        for lease in plan.adopt:
            if lease.key not in running_keys:
                holder = adopt_lease(self.store, self.namespace, lease, self.worker_id)
                if holder is not None:
                    log.info("worker %s starts %s, handed over (checkpoint %s)", self.worker_id, lease.key,
                             holder.lease.checkpoint)
                    self._launch(holder)
        for lease in plan.take + self._overdue_handoffs(leases):
            if lease.key not in running_keys:
                self._take(lease)
        if plan.steal is not None and plan.steal.key not in running_keys and not self._stopping.is_set():
            how = f"{plan.steal.throughput_kbps or 0:.0f} KB/s" if load else f"target {plan.target} per worker"
            if not self.config.graceful_handoff:
                log.info("taking %s from %s to balance (%s)", plan.steal.key, plan.steal.owner, how)
                self._take(plan.steal)
            elif request_handoff(self.store, self.namespace, plan.steal, self.worker_id):
                log.info("asked %s to hand %s over, to balance (%s)", plan.steal.owner, plan.steal.key, how)
                self._wake.set()
        self._say_what_we_wait_for(leases)

    def _overdue_handoffs(self, leases: list[Lease]) -> list[Lease]:
        """Leases handed to this worker whose owner has not let go within handoff_timeout: taken anyway."""
        now = self._clock.monotonic()
        pending = {lease.key: lease for lease in leases
                   if lease.owner == self.worker_id and lease.checkpoint_owner not in (None, self.worker_id)}
        for key in list(self._incoming_since):
            if key not in pending:
                del self._incoming_since[key]
        overdue = []
        for key, lease in pending.items():
            since = self._incoming_since.setdefault(key, now)
            if now - since >= self.config.seconds.handoff_timeout:
                log.warning("%s did not hand %s over within %.0f s (handoff_timeout); taking it: records after its "
                            "last checkpoint may be processed again", lease.checkpoint_owner, key,
                            self.config.seconds.handoff_timeout)
                overdue.append(lease)
        return overdue

    def _orphaned(self, leases: list[Lease]) -> list[Lease]:
        """Unfinished leases held by another worker not seen renewing them (it may have died: a rerun
        within the lease time of a crash finds its leases still held). With `stop_after_idle`, a lease must
        have been seen renewed since this worker went quiet: a worker SIGKILLed a moment ago looks alive for
        a whole lease duration, and ending idle then would leave its shards unread."""
        duration = self.config.seconds.lease_duration
        since = self._quiet_since
        return [lease for lease in leases if lease.actual_owner not in (None, self.worker_id)
                and not lease.checkpoint.is_shard_end
                and not (self._observer.proven_alive(lease, duration)
                         and (since is None or self._observer.moved_since(lease, since)))]

    def _say_what_we_wait_for(self, leases: list[Lease]) -> None:
        # Said of a lease never seen renewed, or quiet for longer than a renewal takes (not of a live
        # worker's lease in the moment between two of its renewals).
        renew = self.config.seconds.renew_interval
        orphaned = [lease for lease in self._orphaned(leases)
                    if lease.key not in self._observer.moved or self._observer.quiet_for(lease) >= 1.5 * renew]
        now = self._clock.monotonic()
        if not orphaned or now - self._waiting_notice < 10.0:
            return
        self._waiting_notice = now
        duration = self.config.seconds.lease_duration
        left = max(0.0, min(duration - self._observer.quiet_for(lease) for lease in orphaned))
        owners = sorted({str(lease.actual_owner) for lease in orphaned})
        log.warning("waiting for %d shard(s) leased by %s, not seen renewing them lately; they expire in %.0f s "
                    "unless renewed, then this worker reads them", len(orphaned), ", ".join(owners), left)

    def _take(self, lease: Lease) -> None:
        holder = take_lease(self.store, self.namespace, lease, self.worker_id)
        if holder is None:
            return  # another worker got there first
        log.info("worker %s took %s (checkpoint %s)", self.worker_id, lease.key, holder.lease.checkpoint)
        self.metrics.count("LeasesTaken")
        self._launch(holder)

    def _launch(self, holder: LeaseHolder) -> None:
        st = self._stream_of(holder.lease)
        assert st is not None  # _leases() keeps only leases of our streams
        stop = threading.Event()
        sc = ShardConsumer(transport=self.transport, stream=st.given, stream_arn=st.arn,
                           holder=holder, processor=self._factory(), config=self.config, stopping=stop,
                           on_shard_end=lambda _sid, children: self._on_shard_end(st, children),
                           destination=self._destination, clock=self._clock, efo_consumer_arn=st.efo_arn,
                           metrics=st.metrics)
        t = threading.Thread(target=sc.run, name=f"shard-{holder.key}", daemon=True)
        with self._lock:
            if self._stopping.is_set():
                stop.set()
            self._shards[holder.key] = _Running(sc, t, stop, RateMeter(self._clock.monotonic))
        t.start()

    def _reap(self) -> None:
        with self._lock:
            done = [(key, run.sc) for key, run in self._shards.items() if run.sc.finished.is_set()]
            for sid, sc in done:
                del self._shards[sid]
                prev = self._finished_stats.get(sid)
                if prev is not None:  # the same shard again (lease lost, then retaken): add up
                    sc.stats.records += prev.records
                    sc.stats.dead_lettered += prev.dead_lettered
                    sc.stats.corrupt += prev.corrupt
                self._finished_stats[sid] = sc.stats
        for _sid, sc in done:
            if sc.error is not None:
                self._errors.append(sc.error)
                self._stopping.set()
                # Its checkpoint stays where it is; the lease goes, so a rerun takes the shard at once
                # instead of waiting out lease_duration (a processor raising in initialize left it held).
                try:
                    sc.holder.release()
                except StreamkitError as exc:
                    log.warning("could not release the lease on %s (%s); it expires after lease_duration",
                                sc.holder.key, exc)

    def _on_shard_end(self, stream: _Stream, children: list[ShardInfo]) -> None:
        with self._lock:
            self._ended_children.append((stream, children))
        self._wake.set()

    def _busy(self) -> bool:
        """Records are flowing (a shard read some, or is behind, or processed within half a second), or a
        shard waits for a lease another worker may have left behind: the idle clock starts again."""
        now = self._clock.monotonic()
        with self._lock:
            stats = [run.sc.stats for run in self._shards.values()]
        if self._quiet_since is None:
            self._quiet_since = now
        if any(s.state in ("starting", "reading") or now - s.last_activity < 0.5 for s in stats):
            self._quiet_since = now
            return True
        try:
            leases = self._leases()
        except StreamkitError:
            return False
        handing_to_me = any(lease.owner == self.worker_id and lease.key not in self._shards
                            and not lease.checkpoint.is_shard_end for lease in leases)
        if handing_to_me:
            self._quiet_since = now
        return handing_to_me or bool(self._orphaned(leases))

    def _caught_up(self) -> bool:
        """Every shard held was last read to its tip: a confirmed-empty read, not a failure, and every
        reader answered once more since that was first seen (`IdleConfirmation`)."""
        with self._lock:
            runs = list(self._shards.items())
        if not all(run.sc.stats.state == "idle" for _, run in runs):
            self._idle_confirmation.reset()
            return False
        return self._idle_confirmation.confirmed({key: run.sc.reader for key, run in runs})

    def _check_progress(self, limit: float) -> None:
        """`NoProgressError` once a shard's reads have had no answer for `limit` seconds (servers unreachable)."""
        with self._lock:
            stats = [run.sc.stats for run in self._shards.values()]
        for s in stats:
            if s.state == "failing" and s.unanswered_for >= limit:
                self._errors.append(NoProgressError(
                    f"no answer from Kinesis for {s.shard_id} in {s.unanswered_for:.0f} s (stop_after_idle={limit:g}): "
                    f"{s.last_error}"))
                self._stopping.set()
                return

    # -- shards and their leases -----------------------------------------------------------------
    def _initial_checkpoint(self) -> Checkpoint:
        pos = self.config.initial_position
        if pos == "TRIM_HORIZON":
            return TRIM_HORIZON
        if pos == "LATEST":
            return LATEST
        ts = pos.timestamp() if isinstance(pos, datetime) else float(pos)
        return AT_TIMESTAMP(ts)

    def _sync_shards_safely(self, ended: list[tuple[_Stream, list[ShardInfo]]]) -> None:
        try:
            self._sync_shards(ended)
        except StreamkitError as exc:
            if not exc.retryable:
                raise
            log.warning("could not list the shards of %s (%s); trying again later", ", ".join(self.streams), exc)
            with self._lock:
                self._ended_children.extend(ended)

    def _sync_shards(self, ended: list[tuple[_Stream, list[ShardInfo]]] | None = None) -> None:
        """Create leases for shards that have none: children of known shards from TRIM_HORIZON."""
        leases = self._leases()
        for st in self._streams:
            # GetRecords named the children (kinesis-mock, AWS): use them without waiting for ListShards.
            children = [c for s, kids in ended or [] if s is st for c in kids]
            if ended and not children and not any(s is st for s, _k in ended):
                continue  # a shard of another stream ended: this one needs no new ListShards
            self._sync_stream(st, [lease for lease in leases if lease.stream == st.ident], children)

    def _sync_stream(self, st: _Stream, leases: list[Lease], children: list[ShardInfo]) -> None:
        existing = {lease.shard_id for lease in leases}
        # A server without ChildShards (kinesalite), or a periodic sync: ask ListShards.
        shards = children or self.transport.list_shards(st.given)
        first_start = not existing
        initial = self._initial_checkpoint()
        seen: set[str] = set()
        for s in shards:
            sid = s.shard_id
            if sid in existing or sid in seen:
                continue
            seen.add(sid)
            known_parent = any(p in existing or p in seen for p in s.parents)
            if known_parent or initial == TRIM_HORIZON or not first_start:
                cp = TRIM_HORIZON
            elif s.is_open:
                cp = initial
            else:
                cp = SHARD_END  # LATEST / AT_TIMESTAMP on a fresh start: closed shards hold nothing new
            lease = Lease(shard_id=sid, stream=st.ident, checkpoint=cp, parent_shard_ids=s.parents,
                          hash_key_range=(s.starting_hash_key, s.ending_hash_key))
            if self.store.create_lease(self.namespace, lease):
                log.info("new lease for %s (parents %s) at %s", lease.key, ",".join(s.parents) or "-", cp)

    # -- shutdown --------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            threads = list(self._shards.values())
            for run in threads:
                run.stop.set()
        deadline = self._clock.monotonic() + self.config.seconds.shutdown_grace
        for run in threads:
            run.thread.join(max(0.0, deadline - self._clock.monotonic()))
            if run.thread.is_alive():
                log.warning("shard %s did not finish within shutdown_grace; releasing its lease", run.sc.holder.key)
                run.sc.holder.release()
        self._reap()
