"""The Consumer: finds shards, takes and renews leases, runs a ShardConsumer thread per held shard."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from streamkit.aio import blocking_methods
from streamkit.checkpoints.base import CheckpointStore
from streamkit.checkpoints.model import AT_TIMESTAMP, LATEST, SHARD_END, TRIM_HORIZON, Checkpoint, Lease
from streamkit.clock import Clock, as_clock
from streamkit.consumer.config import ConsumerConfig
from streamkit.consumer.leases import LeaseHolder, LeaseObserver, plan_takes, take_lease
from streamkit.consumer.processor import LIFECYCLE, FunctionProcessor, RecordProcessor
from streamkit.consumer.shard_consumer import ShardConsumer, ShardStats
from streamkit.destinations import Destination, as_destination
from streamkit.errors import ConfigurationError, NoProgressError, ShardFailedError, StreamkitError
from streamkit.hashing import ShardInfo
from streamkit.records import StreamRecord
from streamkit.retry import Interrupted, call_until_answered
from streamkit.signals import stopping_on_signals
from streamkit.transport import as_kinesis, stream_name_of

__all__ = ["DEFAULT_CHECKPOINT_FILE", "Consumer", "ShardFailedError"]

#: Where a Consumer given no checkpoint_store keeps its positions: this file in the working directory.
DEFAULT_CHECKPOINT_FILE = "streamkit-checkpoints.db"

log = logging.getLogger("streamkit.consumer")


def _as_factory(processor_factory: Any) -> Callable[[], RecordProcessor]:
    """A RecordProcessor subclass, a zero-argument factory, or a plain per-record function."""
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
        return lambda: FunctionProcessor(func)
    return lambda: blocking_methods(processor_factory(), LIFECYCLE)  # async def methods: the same


class Consumer:
    """Reads every shard of a stream in order, at least once, across any number of workers.

    ``processor_factory`` is a `RecordProcessor` subclass (or a callable returning a new one), or a
    plain function of one `StreamRecord`, called in order per shard and checkpointed after every batch.
    Workers sharing an ``application_name`` and a ``checkpoint_store`` (a DynamoDB one across machines)
    share the shards: each shard has one owner at a time. ``stream`` is a name or an ARN; ``client`` a
    boto3 Kinesis client or any `KinesisTransport` (`streamkit.testing.FakeKinesis` in tests).
    """

    def __init__(self, stream: str, processor_factory: Any, *, application_name: str,
                 checkpoint_store: CheckpointStore | None = None, client: Any = None,
                 config: ConsumerConfig | None = None, clock: Clock | Callable[[], float] | None = None,
                 metrics: Any = None) -> None:
        """`metrics`: a `streamkit.metrics.Metrics` or a spec ("emf", "emf:PATH", "cloudwatch",
        "prometheus:PORT"): RecordsProcessed, ProcessingTime, MillisBehindLatest, IteratorAgeMilliseconds,
        RecordsDeadLettered per shard, LeasesHeld and LeasesTaken for the worker."""
        if not stream or not application_name:
            raise ConfigurationError("stream and application_name must not be empty")
        if checkpoint_store is None:
            # DESIGN's default, SQLite, made explicit: a named file in the working directory, and said.
            from streamkit.checkpoints.sqlite import SqliteCheckpointStore

            log.warning("no checkpoint_store given: positions are kept in %s (pass SqliteCheckpointStore(PATH), "
                        "DynamoDBCheckpointStore(TABLE) or MemoryCheckpointStore() to choose)",
                        Path(DEFAULT_CHECKPOINT_FILE).resolve())
            checkpoint_store = SqliteCheckpointStore(DEFAULT_CHECKPOINT_FILE)
        if not isinstance(checkpoint_store, CheckpointStore):
            raise ConfigurationError(f"checkpoint_store must be a CheckpointStore, got {checkpoint_store!r}")
        self.stream = stream
        self.stream_name = stream_name_of(stream)
        self.application_name = application_name
        self.config = config or ConsumerConfig()
        self._factory = _as_factory(processor_factory)
        self.store = checkpoint_store
        self.transport = as_kinesis(client, stream=self.stream, retries=0, max_pool_connections=64)  # streamkit retries itself
        self.namespace = f"{application_name}/{self.stream_name}"
        from streamkit.metrics import as_metrics

        self._metrics, self._own_metrics = as_metrics(metrics if metrics is not None else self.config.metrics)
        self.metrics = self._metrics.scope(self.stream_name, "ProcessRecords")
        self.worker_id = self.config.worker_id
        self._clock = as_clock(clock)
        self._observer = LeaseObserver(self._clock.monotonic)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._shards: dict[str, tuple[ShardConsumer, threading.Thread]] = {}
        self._ended_children: list[tuple[str, list[ShardInfo]]] = []
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._finished_stats: dict[str, ShardStats] = {}
        self._destination: Destination | None = (
            None if self.config.on_failure == "stop" else as_destination(self.config.on_failure))
        self._stream_arn: str | None = None
        self._next_expiry: float | None = None
        self._efo_arn: str | None = None
        self._waiting_notice = -1e18
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
            while not self._stopping.is_set():
                self._cycle()
                if self._errors:
                    break
                with self._lock:
                    ended, self._ended_children = self._ended_children, []
                if ended or self._clock.monotonic() - last_sync >= self.config.f("shard_sync_interval"):
                    self._sync_shards_safely(ended)
                    last_sync = self._clock.monotonic()
                if stop_after_idle is not None:
                    if self._busy():
                        idle_since = self._clock.monotonic()
                    elif self._clock.monotonic() - idle_since >= stop_after_idle and self._caught_up():
                        log.info("no new records for %.1f s: stopping", stop_after_idle)
                        break
                    self._check_progress(stop_after_idle)
                # Wake for the next renewal, or the moment another worker's lease would expire (so a dead
                # worker's shards are taken within lease_duration + one renewal interval of its death).
                wait = self.config.f("renew_interval")
                if stop_after_idle is not None:
                    wait = min(wait, 0.25)
                if self._next_expiry is not None:
                    wait = min(wait, max(0.01, self._next_expiry - self._clock.monotonic() + 0.01))
                self._clock.wait(self._wake, wait)
                self._wake.clear()
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Ask every shard to finish its batch, call shutdown_requested, and release its lease."""
        self._stopping.set()
        self._wake.set()

    def shard_stats(self) -> list[ShardStats]:
        with self._lock:
            return [sc.stats for sc, _t in self._shards.values()]

    @property
    def final_stats(self) -> list[ShardStats]:
        """Per shard, what this worker did over the whole run (read after `run` returns)."""
        with self._lock:
            stats = dict(self._finished_stats)
            stats.update({sid: sc.stats for sid, (sc, _t) in self._shards.items()})
        return [stats[k] for k in sorted(stats)]

    # -- start -----------------------------------------------------------------------------------
    def _start(self, stop_after_idle: float | None) -> bool:
        """Describe the stream and create missing leases, retrying while the servers do not answer.

        False if a stop came first; `NoProgressError` after `stop_after_idle` seconds of failures.
        """
        def start() -> None:
            self._stream_arn = self.transport.describe_stream_summary(self.stream).arn
            if self.config.enhanced_fan_out and self._efo_arn is None:
                from streamkit.consumer.efo import register_consumer

                name = self.config.efo_consumer_name or self.application_name
                self._efo_arn = register_consumer(self.transport, str(self._stream_arn), name, clock=self._clock)
            self._sync_shards()

        try:
            call_until_answered(start, what=f"start on {self.stream}", warn=log.warning, clock=self._clock,
                                stop=self._stopping, give_up_after=stop_after_idle)
        except Interrupted:
            return False
        self.started.set()
        return True

    # -- the loop --------------------------------------------------------------------------------
    def _cycle(self) -> None:
        self._reap()
        with self._lock:
            holders = [sc.holder for sc, _t in self._shards.values() if not sc.finished.is_set()]
        try:
            for h in holders:
                if not h.lost.is_set() and not h.renew():
                    if self._stopping.is_set():
                        # Stopping: the shard's consumer may just have released it (checkpointed and
                        # let go) between the list above and this renewal; nothing was lost.
                        log.debug("lease on %s no longer ours while stopping", h.shard_id)
                    else:
                        log.warning("lost the lease on %s (taken by another worker)", h.shard_id)
            leases = self.store.list_leases(self.namespace)
        except StreamkitError as exc:
            if not exc.retryable:
                raise
            log.warning("the checkpoint store did not answer (%s); retrying", exc)
            return
        self._observer.observe(leases)
        with self._lock:
            self.metrics.gauge("LeasesHeld", sum(1 for sc, _t in self._shards.values() if not sc.finished.is_set()))
        duration = self.config.f("lease_duration")
        self._next_expiry = self._observer.next_expiry(leases, self.worker_id, duration)
        plan = plan_takes(leases, self.worker_id, lambda lease: self._observer.expired(lease, duration),
                          max_leases=self.config.max_leases_per_worker)
        with self._lock:
            running = set(self._shards)
        for lease in plan.take:
            if lease.shard_id not in running:
                self._take(lease, steal=False)
        if plan.steal is not None and plan.steal.shard_id not in running:
            log.info("taking %s from %s to balance (target %d per worker)", plan.steal.shard_id, plan.steal.owner,
                     plan.target)
            self._take(plan.steal, steal=True)
        self._say_what_we_wait_for(leases)

    def _orphaned(self, leases: list[Lease]) -> list[Lease]:
        """Unfinished leases held by another worker not seen renewing them (it may have died: a rerun
        within the lease time of a crash finds its leases still held)."""
        duration = self.config.f("lease_duration")
        return [lease for lease in leases if lease.owner not in (None, self.worker_id)
                and not lease.checkpoint.is_shard_end and not self._observer.proven_alive(lease, duration)]

    def _say_what_we_wait_for(self, leases: list[Lease]) -> None:
        orphaned = self._orphaned(leases)
        now = self._clock.monotonic()
        if not orphaned or now - self._waiting_notice < 10.0:
            return
        self._waiting_notice = now
        duration = self.config.f("lease_duration")
        left = max(0.0, min(duration - self._observer.quiet_for(lease) for lease in orphaned))
        owners = sorted({str(lease.owner) for lease in orphaned})
        log.warning("waiting for %d shard(s) leased by %s, not seen renewing them since this worker started; they "
                    "expire in %.0f s unless renewed", len(orphaned), ", ".join(owners), left)

    def _take(self, lease: Lease, *, steal: bool) -> None:
        holder = take_lease(self.store, self.namespace, lease, self.worker_id, steal=steal)
        if holder is None:
            return  # another worker got there first
        log.info("worker %s took %s (checkpoint %s)", self.worker_id, lease.shard_id, holder.lease.checkpoint)
        self.metrics.count("LeasesTaken")
        self._launch(holder)

    def _launch(self, holder: LeaseHolder) -> None:
        sc = ShardConsumer(transport=self.transport, stream=self.stream, stream_arn=self._stream_arn,
                           holder=holder, processor=self._factory(), config=self.config, stopping=self._stopping,
                           on_shard_end=self._on_shard_end, destination=self._destination,
                           clock=self._clock, efo_consumer_arn=self._efo_arn, metrics=self.metrics)
        t = threading.Thread(target=sc.run, name=f"shard-{holder.shard_id}", daemon=True)
        with self._lock:
            self._shards[holder.shard_id] = (sc, t)
        t.start()

    def _reap(self) -> None:
        with self._lock:
            done = [(sid, sc) for sid, (sc, t) in self._shards.items() if sc.finished.is_set()]
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

    def _on_shard_end(self, shard_id: str, children: list[ShardInfo]) -> None:
        with self._lock:
            self._ended_children.append((shard_id, children))
        self._wake.set()

    def _busy(self) -> bool:
        """Records are flowing (a shard read some, or is behind, or processed within half a second), or a
        shard waits for a lease another worker may have left behind: the idle clock starts again."""
        now = self._clock.monotonic()
        with self._lock:
            stats = [sc.stats for sc, _t in self._shards.values()]
        if any(s.state in ("starting", "reading") or now - s.last_activity < 0.5 for s in stats):
            return True
        try:
            leases = self.store.list_leases(self.namespace)
        except StreamkitError:
            return False
        return bool(self._orphaned(leases))

    def _caught_up(self) -> bool:
        """Every shard held was last read to its tip: a confirmed-empty read, not a failure."""
        with self._lock:
            return all(sc.stats.state == "idle" for sc, _t in self._shards.values())

    def _check_progress(self, limit: float) -> None:
        """`NoProgressError` once a shard's reads have had no answer for `limit` seconds (servers unreachable)."""
        with self._lock:
            stats = [sc.stats for sc, _t in self._shards.values()]
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

    def _sync_shards_safely(self, ended: list[tuple[str, list[ShardInfo]]]) -> None:
        try:
            self._sync_shards(ended)
        except StreamkitError as exc:
            if not exc.retryable:
                raise
            log.warning("could not list the shards of %s (%s); trying again later", self.stream, exc)
            with self._lock:
                self._ended_children.extend(ended)

    def _sync_shards(self, ended: list[tuple[str, list[ShardInfo]]] | None = None) -> None:
        """Create leases for shards that have none: children of known shards from TRIM_HORIZON."""
        existing = {lease.shard_id for lease in self.store.list_leases(self.namespace)}
        # GetRecords named the children (kinesis-mock, AWS): use them without waiting for ListShards.
        shards = [c for _parent, children in ended or [] for c in children]
        if not shards:  # a periodic sync, or a server without ChildShards (kinesalite): ask ListShards
            shards = self.transport.list_shards(self.stream)
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
            if self.store.create_lease(self.namespace, Lease(shard_id=sid, checkpoint=cp, parent_shard_ids=s.parents)):
                log.info("new lease for %s (parents %s) at %s", sid, ",".join(s.parents) or "-", cp)

    # -- shutdown --------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            threads = list(self._shards.values())
        deadline = self._clock.monotonic() + self.config.f("shutdown_grace")
        for sc, t in threads:
            t.join(max(0.0, deadline - self._clock.monotonic()))
            if t.is_alive():
                log.warning("shard %s did not finish within shutdown_grace; releasing its lease", sc.shard_id)
                sc.holder.release()
        self._reap()
