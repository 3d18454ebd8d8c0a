"""ConsumerConfig: how the consumer reads, leases, retries and fails."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal

from streamkit.errors import ConfigurationError
from streamkit.limits import GET_RECORDS_MAX_RECORDS
from streamkit.shard_reader import MAX_FETCH_BYTES
from streamkit.validation import check_fields, seconds

__all__ = ["ConsumerConfig", "Durations"]


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, kw_only=True)
class Durations:
    """The configuration's durations as float seconds, by name (`ConsumerConfig.seconds`)."""

    idle_poll_interval: float
    min_poll_interval: float
    lease_duration: float
    renew_interval: float
    shard_sync_interval: float
    handoff_timeout: float
    backoff_base: float
    backoff_max: float
    shutdown_grace: float


@dataclass(frozen=True, kw_only=True)
class ConsumerConfig:
    """Defaults follow the KCL's where it has one. Durations are seconds or `timedelta`."""

    #: Where a shard with no checkpoint starts: "TRIM_HORIZON", "LATEST", or a time (AT_TIMESTAMP).
    initial_position: Literal["TRIM_HORIZON", "LATEST"] | datetime | float = "TRIM_HORIZON"
    #: GetRecords Limit (at most 10,000).
    max_records: int = GET_RECORDS_MAX_RECORDS
    #: Per shard, bytes (data + keys) fetched and not yet processed, at most about this much: each
    #: GetRecords Limit is sized to it (streamkit.shard_reader.FetchLimit). Default 4 MiB: two seconds
    #: of a shard's 2 MiB/s read limit, so it never slows a reader; lower it for many shards per worker.
    max_fetch_bytes: int = MAX_FETCH_BYTES
    #: Wait between polls of a shard that is caught up (AWS's event source mapping polls once a second).
    idle_poll_interval: float | timedelta = 1.0
    #: Shortest gap between two GetRecords calls on one shard: 0.2 s keeps within 5 calls/s.
    min_poll_interval: float | timedelta = 0.2
    #: A lease whose counter has not moved for this long is taken to be its owner's no more.
    lease_duration: float | timedelta = 10.0
    #: How often leases are renewed and others' leases examined (default: a third of lease_duration).
    renew_interval: float | timedelta | None = None
    #: How often ListShards runs to find new shards (a shard reaching its end triggers one at once).
    shard_sync_interval: float | timedelta = 60.0
    #: At most this many leases per worker (None: as many as balance allows).
    max_leases_per_worker: int | None = None
    #: How workers share leases: "count" (each about the same number) or "load" (about the same bytes
    #: per second, from the throughputKBps each owner writes on its renewals: a hot stream's leases are
    #: spread). A lease moves by graceful handoff: its owner finishes the batch and checkpoints first.
    balance: Literal["count", "load"] = "count"
    #: A balancing move asks the owner to finish its batch, checkpoint and hand the lease over (KCL 3's
    #: isGracefulLeaseHandoffEnabled, default on). False takes the lease at once: the owner finds out at
    #: its next renewal or checkpoint, and records after its last checkpoint are processed again.
    graceful_handoff: bool = True
    #: A lease asked for by handoff and not handed over within this long (its owner is alive but its
    #: batch does not end) is taken anyway, as the KCL 3's gracefulLeaseHandoffTimeoutMillis (30 s).
    handoff_timeout: float | timedelta = 30.0
    #: Attempts at process_records for one batch before `on_failure` applies.
    max_attempts: int = 3
    backoff_base: float | timedelta = 0.2
    backoff_max: float | timedelta = 10.0
    #: After max_attempts: "stop" ends the shard (the consumer raises), or a destination ("file:PATH",
    #: "sqs:URL", a callable, or a streamkit.destinations object) receives the failed records with payload
    #: and metadata and the shard moves on past them.
    on_failure: Any = "stop"
    #: Enhanced fan-out: a registered stream consumer (`efo_consumer_name`, default the application name)
    #: with records pushed by SubscribeToShard (2 MiB/s per shard of its own) instead of GetRecords polling.
    enhanced_fan_out: bool = False
    efo_consumer_name: str | None = None
    #: How the records' body is decoded for StreamRecord.body: "json", "text", "bytes", or a model type
    #: (a Pydantic model, a msgspec Struct, a dataclass or a TypedDict: `streamkit.bodies`); a function
    #: handler then gets only records whose body validated, and one that does not goes to `on_failure`
    #: at once, without retries.
    body: Literal["json", "text", "bytes"] | type[Any] = "bytes"
    #: Time processors get in shutdown_requested before the lease is released regardless.
    shutdown_grace: float | timedelta = 10.0
    worker_id: str = field(default_factory=_default_worker_id)
    #: A `streamkit.metrics.Metrics` or a spec ("emf", "emf:PATH", "cloudwatch", "prometheus:PORT");
    #: `Consumer(metrics=...)` wins over it. None: nothing recorded.
    metrics: Any = None
    #: The durations above as float seconds (set from them; not an argument).
    seconds: Durations = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_fields(self)  # types, NaN and infinity first
        for name in ("idle_poll_interval", "min_poll_interval", "lease_duration", "shard_sync_interval",
                     "backoff_base", "backoff_max", "shutdown_grace", "handoff_timeout"):
            object.__setattr__(self, name, seconds("ConsumerConfig", name, getattr(self, name)))
        if float(self.lease_duration) <= 0:  # type: ignore[arg-type]  # said before renew_interval is derived from it
            raise ConfigurationError(f"ConsumerConfig.lease_duration must be positive, got {self.lease_duration}")
        if self.max_leases_per_worker is not None and self.max_leases_per_worker < 1:
            raise ConfigurationError("ConsumerConfig.max_leases_per_worker must be at least 1 (None: no limit), got "
                                     f"{self.max_leases_per_worker}: a worker allowed no lease would read nothing")
        if self.renew_interval is None:
            object.__setattr__(self, "renew_interval", float(self.lease_duration) / 3)  # type: ignore[arg-type]
        else:
            object.__setattr__(self, "renew_interval", seconds("ConsumerConfig", "renew_interval", self.renew_interval))
        object.__setattr__(self, "seconds", Durations(**{f.name: float(getattr(self, f.name))
                                                         for f in fields(Durations)}))
        if float(self.backoff_max) < float(self.backoff_base):  # type: ignore[arg-type]
            raise ConfigurationError(f"ConsumerConfig.backoff_max ({self.backoff_max}) must not be below backoff_base "
                                     f"({self.backoff_base})")
        if not 1 <= self.max_records <= GET_RECORDS_MAX_RECORDS:
            raise ConfigurationError(f"ConsumerConfig.max_records must be 1..10000, got {self.max_records}")
        if self.max_fetch_bytes < 1024:
            raise ConfigurationError(f"ConsumerConfig.max_fetch_bytes must be at least 1024, got {self.max_fetch_bytes}")
        if self.max_attempts < 1:
            raise ConfigurationError(f"ConsumerConfig.max_attempts must be >= 1, got {self.max_attempts}")
        if float(self.renew_interval) >= float(self.lease_duration):  # type: ignore[arg-type]
            raise ConfigurationError("ConsumerConfig.renew_interval must be shorter than lease_duration")
        if isinstance(self.initial_position, str) and self.initial_position not in ("TRIM_HORIZON", "LATEST"):
            raise ConfigurationError(
                f"ConsumerConfig.initial_position must be TRIM_HORIZON, LATEST or a time, got {self.initial_position!r}")
        if self.balance not in ("count", "load"):
            raise ConfigurationError(f"ConsumerConfig.balance must be 'count' or 'load', got {self.balance!r}")
        from streamkit.bodies import body_decoder

        try:
            body_decoder(self.body)  # a model's library is imported (and its absence said) here, before any I/O
        except ConfigurationError as exc:
            raise ConfigurationError(f"ConsumerConfig.{exc}") from None
        if self.on_failure != "stop":
            from streamkit.destinations import check_destination

            # "file:PATH", "sqs:URL", a callable or a Destination: a bad value fails here; the Consumer
            # opens it (no I/O in a config).
            check_destination(self.on_failure)

