"""The Consumer: finds shards, takes and renews leases, runs a ShardConsumer thread per held shard."""

from __future__ import annotations

import inspect
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from streamkit import kinesis
from streamkit.checkpoints.base import CheckpointStore
from streamkit.checkpoints.model import AT_TIMESTAMP, LATEST, SHARD_END, TRIM_HORIZON, Checkpoint, Lease
from streamkit.consumer.config import ConsumerConfig
from streamkit.consumer.leases import LeaseHolder, LeaseObserver, plan_takes, take_lease
from streamkit.consumer.processor import FunctionProcessor, RecordProcessor
from streamkit.consumer.shard_consumer import ShardConsumer, ShardFailedError, ShardStats
from streamkit.destinations import Destination, as_destination
from streamkit.errors import ConfigurationError
from streamkit.records import StreamRecord

__all__ = ["Consumer", "ShardFailedError", "default_checkpoint_path"]

log = logging.getLogger("streamkit.consumer")


def default_checkpoint_path() -> Path:
    from streamkit.local.stack import default_data_dir

    return default_data_dir().parent / "checkpoints.db"


def _as_factory(processor_factory: Any) -> Callable[[], RecordProcessor]:
    """A RecordProcessor subclass, a zero-argument factory, or a plain per-record function."""
    if isinstance(processor_factory, type) and issubclass(processor_factory, RecordProcessor):
        return processor_factory
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
        func: Callable[[StreamRecord], Any] = processor_factory
        return lambda: FunctionProcessor(func)
    return processor_factory  # type: ignore[no-any-return]


class Consumer:
    """Reads every shard of a stream in order, at least once, across any number of workers.

    ``processor_factory`` is a `RecordProcessor` subclass (or a callable returning a new one), or a
    plain function of one `StreamRecord`, called in order per shard and checkpointed after every batch.
    Workers sharing an ``application_name`` and a ``checkpoint_store`` (a DynamoDB one across machines)
    share the shards: each shard has one owner at a time.
    """

    def __init__(self, stream_name: str, processor_factory: Any, *, application_name: str,
                 checkpoint_store: CheckpointStore | None = None, client: Any = None,
                 config: ConsumerConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if not stream_name or not application_name:
            raise ConfigurationError("stream_name and application_name must not be empty")
        self.stream_name = stream_name
        self.application_name = application_name
        self.config = config or ConsumerConfig()
        self._factory = _as_factory(processor_factory)
        if checkpoint_store is None:
            from streamkit.checkpoints.sqlite import SqliteCheckpointStore

            checkpoint_store = SqliteCheckpointStore(default_checkpoint_path())
        self.store = checkpoint_store
        if client is None:
            from streamkit.clients import aws_client

            client = aws_client("kinesis", max_pool_connections=64)
        self.client = client
        self.namespace = f"{application_name}/{stream_name}"
        self.worker_id = self.config.worker_id
        self._clock = clock
        self._observer = LeaseObserver(clock)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._shards: dict[str, tuple[ShardConsumer, threading.Thread]] = {}
        self._ended_children: list[tuple[str, list[dict[str, Any]]]] = []
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []
        self._finished_stats: dict[str, ShardStats] = {}
        self._destination: Destination | None = (
            None if self.config.on_failure == "stop" else as_destination(self.config.on_failure))
        self._stream_arn: str | None = None
        self._next_expiry: float | None = None
        self._efo_arn: str | None = None
        self.started = threading.Event()

    # -- public ----------------------------------------------------------------------------------
    def run(self, *, install_signal_handlers: bool = True, stop_after_idle: float | None = None) -> None:
        """Process until `stop()` (or SIGTERM/SIGINT, or `stop_after_idle` seconds with nothing new).

        Raises `ShardFailedError` if a shard had to stop (records kept failing with on_failure="stop").
        """
        previous = self._install_signals() if install_signal_handlers else {}
        try:
            self._stream_arn = kinesis.describe_stream(self.client, self.stream_name).get("StreamARN")
            if self.config.enhanced_fan_out:
                from streamkit.consumer.efo import register_consumer

                name = self.config.efo_consumer_name or self.application_name
                self._efo_arn = register_consumer(self.client, str(self._stream_arn), name)
            self._sync_shards()
            last_sync = self._clock()
            idle_since = self._clock()
            self.started.set()
            while not self._stopping.is_set():
                self._cycle()
                if self._errors:
                    break
                with self._lock:
                    ended, self._ended_children = self._ended_children, []
                if ended or self._clock() - last_sync >= self.config.f("shard_sync_interval"):
                    self._sync_shards(ended)
                    last_sync = self._clock()
                if stop_after_idle is not None:
                    if self._busy():
                        idle_since = self._clock()
                    elif self._clock() - idle_since >= stop_after_idle:
                        log.info("no new records for %.1f s: stopping", stop_after_idle)
                        break
                # Wake for the next renewal, or the moment another worker's lease would expire (so a dead
                # worker's shards are taken within lease_duration + one renewal interval of its death).
                wait = self.config.f("renew_interval")
                if stop_after_idle is not None:
                    wait = min(wait, 0.25)
                if self._next_expiry is not None:
                    wait = min(wait, max(0.01, self._next_expiry - self._clock() + 0.01))
                self._wake.wait(wait)
                self._wake.clear()
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self._errors:
            raise self._errors[0]

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

    # -- the loop --------------------------------------------------------------------------------
    def _cycle(self) -> None:
        self._reap()
        with self._lock:
            holders = [sc.holder for sc, _t in self._shards.values() if not sc.finished.is_set()]
        for h in holders:
            if not h.lost.is_set() and not h.renew():
                log.warning("lost the lease on %s (taken by another worker)", h.shard_id)
        leases = self.store.list_leases(self.namespace)
        self._observer.observe(leases)
        duration = self.config.f("lease_duration")
        self._next_expiry = self._observer.next_expiry(leases, self.worker_id, duration)
        plan = plan_takes(leases, self.worker_id, lambda lease: self._observer.expired(lease, duration),
                          max_leases=self.config.max_leases_per_worker)
        with self._lock:
            running = set(self._shards)
        for lease in plan.take:
            if lease.shard_id not in running:
                self._start(lease, steal=False)
        if plan.steal is not None and plan.steal.shard_id not in running:
            log.info("taking %s from %s to balance (target %d per worker)", plan.steal.shard_id, plan.steal.owner,
                     plan.target)
            self._start(plan.steal, steal=True)

    def _start(self, lease: Lease, *, steal: bool) -> None:
        holder = take_lease(self.store, self.namespace, lease, self.worker_id, steal=steal)
        if holder is None:
            return  # another worker got there first
        log.info("worker %s took %s (checkpoint %s)", self.worker_id, lease.shard_id, holder.lease.checkpoint)
        self._launch(holder)

    def _launch(self, holder: LeaseHolder) -> None:
        sc = ShardConsumer(client=self.client, stream_name=self.stream_name, stream_arn=self._stream_arn,
                           holder=holder, processor=self._factory(), config=self.config, stopping=self._stopping,
                           on_shard_end=self._on_shard_end, destination=self._destination,
                           efo_consumer_arn=self._efo_arn)
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

    def _on_shard_end(self, shard_id: str, child_shards: list[dict[str, Any]]) -> None:
        with self._lock:
            self._ended_children.append((shard_id, child_shards))
        self._wake.set()

    def _busy(self) -> bool:
        now = time.monotonic()
        with self._lock:
            stats = [sc.stats for sc, _t in self._shards.values()]
        return any(s.state == "reading" or now - s.last_activity < 0.5 for s in stats)

    # -- shards and their leases -----------------------------------------------------------------
    def _initial_checkpoint(self) -> Checkpoint:
        pos = self.config.initial_position
        if pos == "TRIM_HORIZON":
            return TRIM_HORIZON
        if pos == "LATEST":
            return LATEST
        ts = pos.timestamp() if isinstance(pos, datetime) else float(pos)
        return AT_TIMESTAMP(ts)

    def _sync_shards(self, ended: list[tuple[str, list[dict[str, Any]]]] | None = None) -> None:
        """Create leases for shards that have none: children of known shards from TRIM_HORIZON."""
        existing = {lease.shard_id for lease in self.store.list_leases(self.namespace)}
        shards: list[dict[str, Any]] = []
        for _parent, children in ended or []:
            # GetRecords named the children (kinesis-mock, AWS): use them without waiting for ListShards.
            for c in children:
                ps = c.get("ParentShards") or []
                shards.append({"ShardId": c["ShardId"], "ParentShardId": ps[0] if ps else None,
                               "AdjacentParentShardId": ps[1] if len(ps) > 1 else None, "_open": True})
        if not shards:  # a periodic sync, or a server without ChildShards (kinesalite): ask ListShards
            shards = kinesis.list_shards(self.client, self.stream_name)
        first_start = not existing
        initial = self._initial_checkpoint()
        seen: set[str] = set()
        for s in shards:
            sid = s["ShardId"]
            if sid in existing or sid in seen:
                continue
            seen.add(sid)
            parents = tuple(p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p)
            is_open = s.get("_open") or "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})
            known_parent = any(p in existing or p in seen for p in parents)
            if known_parent or initial == TRIM_HORIZON or not first_start:
                cp = TRIM_HORIZON
            elif is_open:
                cp = initial
            else:
                cp = SHARD_END  # LATEST / AT_TIMESTAMP on a fresh start: closed shards hold nothing new
            if self.store.create_lease(self.namespace, Lease(shard_id=sid, checkpoint=cp, parent_shard_ids=parents)):
                log.info("new lease for %s (parents %s) at %s", sid, ",".join(parents) or "-", cp)

    # -- shutdown --------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            threads = [(sc, t) for sc, t in self._shards.values()]
        deadline = time.monotonic() + self.config.f("shutdown_grace")
        for sc, t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("shard %s did not finish within shutdown_grace; releasing its lease", sc.shard_id)
                sc.holder.release()
        self._reap()

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, lambda signum, frame: self.stop())
        return previous

