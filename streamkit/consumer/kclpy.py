"""kclpy without the JVM: a kclpy record processor, unchanged, under a streamkit Consumer; and a
MultiLangDaemon properties file read into one.

A kclpy processor (``amazon_kclpy.kcl.RecordProcessorBase``, the v3 interface: `initialize`,
`process_records`, `lease_lost`, `shard_ended`, `shutdown_requested`; or the v2 one, whose `shutdown`
takes a reason) receives inputs shaped as amazon_kclpy's messages (``amazon_kclpy/messages.py``):
records with ``binary_data``, ``data`` (base64), ``partition_key``, ``sequence_number``,
``sub_sequence_number`` (0 for a plain record), ``approximate_arrival_timestamp`` (a datetime) and
``timestamp_millis``, and a checkpointer whose ``checkpoint(sequence_number=None,
sub_sequence_number=None)`` does what kclpy's does. amazon_kclpy itself is not needed.

The properties are the daemon's (``amazon-kinesis-client-multilang``, ``MultiLangDaemonConfiguration``
and ``KinesisClientLibConfigurator``); the README's migration guide lists how each maps.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamkit.checkpoints.lease_table import LeaseTableOptions
from streamkit.consumer.checkpointer import Checkpointer
from streamkit.consumer.config import ConsumerConfig
from streamkit.consumer.processor import (
    InitializationInput,
    LeaseLostInput,
    ProcessRecordsInput,
    RecordProcessor,
    ShardEndedInput,
    ShutdownRequestedInput,
)
from streamkit.errors import ConfigurationError
from streamkit.records import StreamRecord

__all__ = ["KclProperties", "KclpyProcessor", "consumer_from_properties", "read_properties"]

log = logging.getLogger("streamkit.consumer")


class KclpyRecord:
    """One record as amazon_kclpy.messages.Record shows it."""

    __slots__ = ("_r",)

    def __init__(self, record: StreamRecord) -> None:
        self._r = record

    @property
    def binary_data(self) -> bytes:
        return self._r.data

    @property
    def data(self) -> str:
        return base64.b64encode(self._r.data).decode("ascii")

    @property
    def partition_key(self) -> str | None:
        return self._r.partition_key

    @property
    def explicit_hash_key(self) -> str | None:
        return self._r.explicit_hash_key

    @property
    def sequence_number(self) -> str:
        return self._r.sequence_number

    @property
    def sub_sequence_number(self) -> int:
        return self._r.sub_sequence_number or 0

    @property
    def timestamp_millis(self) -> int | None:
        ts = self._r.approximate_arrival_timestamp
        return None if ts is None else int(ts * 1000)

    @property
    def approximate_arrival_timestamp(self) -> datetime | None:
        ts = self._r.approximate_arrival_timestamp
        return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)

    @property
    def stream_name(self) -> str | None:
        return self._r.stream_name

    def __repr__(self) -> str:
        return f"KclpyRecord({self._r!r})"


class KclpyCheckpointer:
    """kclpy's Checkpointer: ``checkpoint()`` after the last record delivered, or at a position."""

    def __init__(self, checkpointer: Checkpointer) -> None:
        self._cp = checkpointer

    def checkpoint(self, sequence_number: str | int | None = None, sub_sequence_number: int | None = None) -> None:
        if sequence_number is None:
            self._cp.checkpoint()  # in shard_ended: SHARD_END, as the KCL's
            return
        # As the KCL's checkpoint(sequenceNumber): sub-sequence 0, never "past the whole aggregate" (a
        # kclpy processor naming only an aggregate's sequence number has not said it did every sub-record).
        self._cp.checkpoint_at(str(sequence_number), 0 if sub_sequence_number is None else sub_sequence_number)


@dataclass(frozen=True)
class _KclpyInput:
    """The attributes kclpy's input messages carry (each method reads only its own)."""

    shard_id: str = ""
    sequence_number: str | None = None
    sub_sequence_number: int | None = None
    records: list[KclpyRecord] = field(default_factory=list)
    checkpointer: KclpyCheckpointer | None = None
    millis_behind_latest: int | None = None
    reason: str | None = None  # v2 shutdown: TERMINATE (shard end) or ZOMBIE (lease lost)


class KclpyProcessor(RecordProcessor):
    """A streamkit RecordProcessor that drives one kclpy processor (made per shard by `factory`)."""

    def __init__(self, processor: Any) -> None:
        self.kclpy = processor
        self._v2 = not hasattr(processor, "shard_ended") and hasattr(processor, "shutdown")

    def initialize(self, input: InitializationInput) -> None:
        seq, _, sub = input.extended_sequence_number.partition("/")
        self.kclpy.initialize(_KclpyInput(shard_id=input.shard_id, sequence_number=seq,
                                          sub_sequence_number=int(sub) if sub else None))

    def process_records(self, input: ProcessRecordsInput) -> None:
        self.kclpy.process_records(_KclpyInput(
            shard_id=input.shard_id, records=[KclpyRecord(r) for r in input.records],
            checkpointer=KclpyCheckpointer(input.checkpointer), millis_behind_latest=input.millis_behind_latest))

    def lease_lost(self, input: LeaseLostInput) -> None:
        if self._v2:
            self.kclpy.shutdown(_KclpyInput(shard_id=input.shard_id, reason="ZOMBIE"))
        else:
            self.kclpy.lease_lost(_KclpyInput(shard_id=input.shard_id))

    def shard_ended(self, input: ShardEndedInput) -> None:
        cp = KclpyCheckpointer(input.checkpointer)
        if self._v2:
            self.kclpy.shutdown(_KclpyInput(shard_id=input.shard_id, checkpointer=cp, reason="TERMINATE"))
        else:
            self.kclpy.shard_ended(_KclpyInput(shard_id=input.shard_id, checkpointer=cp))

    def shutdown_requested(self, input: ShutdownRequestedInput) -> None:
        if hasattr(self.kclpy, "shutdown_requested"):
            self.kclpy.shutdown_requested(_KclpyInput(shard_id=input.shard_id,
                                                      checkpointer=KclpyCheckpointer(input.checkpointer)))


def kclpy_factory(processor: Any) -> Callable[[], RecordProcessor]:
    """A Consumer processor factory for a kclpy processor class (or zero-argument factory)."""
    if not callable(processor):
        raise ConfigurationError("pass the kclpy processor's class (one instance is made per shard), not an instance")
    return lambda: KclpyProcessor(processor())


# -- properties ------------------------------------------------------------------------------------

def read_properties(text: str) -> dict[str, str]:
    """A Java properties file: ``key = value`` or ``key: value``, ``#``/``!`` comments, ``\\`` continuations."""
    out: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        key, value = (line[:cut], line[cut + 1:]) if cut >= 0 else (line, "")
        out[key.strip()] = value.strip().strip('"')
    return out


#: Properties that need nothing in streamkit: one process, one thread per shard, boto3's credentials.
_NOT_NEEDED = frozenset({
    "executableName", "processingLanguage", "AwsCredentialsProvider", "AWSCredentialsProvider",
    "AwsCredentialsProviderDynamoDB", "AwsCredentialsProviderCloudWatch", "maxActiveThreads",
    "callProcessRecordsEvenForEmptyRecordList", "parentShardPollIntervalMillis", "cleanupLeasesUponShardCompletion",
    "validateSequenceNumberBeforeCheckpointing", "metricsBufferTimeMillis", "metricsMaxQueueSize",
    "clientVersionConfig", "leaseAssignmentIntervalMillis", "millisBehindLatestThresholdForReducedTps",
    "maxLeasesToStealAtOneTime", "maxLeaseRenewalThreads", "listShardsBackoffTimeInMillis", "maxListShardsRetryAttempts",
    "skipShardSyncAtWorkerInitializationIfLeasesExist", "timeoutInSeconds", "ignoreUnexpectedChildShards",
})


#: The MultiLangDaemon properties streamkit reads (the others are said as ignored, unless not needed).
_KNOWN_PROPERTIES = frozenset({
    "leaseTableDeletionProtectionEnabled", "leaseTablePitrEnabled", "initialLeaseTableReadCapacity",
    "initialLeaseTableWriteCapacity", "streamArn", "streamName", "applicationName", "tableName",
    "initialPositionInStream", "initialPositionInStreamExtended", "timestampAtInitialPositionInStream",
    "failoverTimeMillis", "shardSyncIntervalMillis", "idleTimeBetweenReadsInMillis", "taskBackoffTimeMillis",
    "gracefulLeaseHandoffTimeoutMillis", "shutdownGraceMillis", "maxRecords", "maxLeasesForWorker", "workerId",
    "workerIdentifier", "regionName", "kinesisEndpoint", "dynamoDBEndpoint", "metricsLevel", "retrievalMode",
    "isGracefulLeaseHandoffEnabled",
})


def _fan_out(props: dict[str, str]) -> bool:
    """retrievalMode: FANOUT (enhanced fan-out) or POLLING (the default); anything else is refused."""
    mode = props.get("retrievalMode", "").strip()
    if mode.upper() not in ("", "FANOUT", "POLLING"):
        raise ConfigurationError(f"property retrievalMode={mode!r}: use FANOUT or POLLING")
    return mode.upper() == "FANOUT"


@dataclass(frozen=True)
class KclProperties:
    """What a MultiLangDaemon properties file says, as streamkit's settings."""

    stream: str
    application_name: str
    table: str
    config: ConsumerConfig
    region: str | None = None
    kinesis_endpoint: str | None = None
    dynamodb_endpoint: str | None = None
    metrics_level: str | None = None
    ignored: tuple[str, ...] = ()
    #: How the lease table is created if streamkit creates it (the daemon's lease-table properties).
    table_options: LeaseTableOptions = field(default_factory=LeaseTableOptions)

    @classmethod
    def parse(cls, props: dict[str, str], **overrides: Any) -> KclProperties:
        """`overrides`: ConsumerConfig fields that win over the file."""
        def millis(name: str) -> float | None:
            value = props.get(name)
            if value is None or value == "":
                return None
            try:
                return int(value) / 1000
            except ValueError:
                raise ConfigurationError(f"property {name}={value!r}: must be a whole number of milliseconds") from None

        def integer(name: str) -> int | None:
            value = props.get(name)
            if not value:
                return None
            try:
                return int(value)
            except ValueError:
                raise ConfigurationError(f"property {name}={value!r}: must be a whole number") from None

        stream = props.get("streamArn") or props.get("streamName")
        app = props.get("applicationName")
        if not stream or not app:
            raise ConfigurationError("the properties need streamName (or streamArn) and applicationName")
        fields: dict[str, Any] = {}
        position = props.get("initialPositionInStream", "LATEST").upper()
        if position == "AT_TIMESTAMP":
            ts = integer("initialPositionInStreamExtended") or integer("timestampAtInitialPositionInStream")
            if ts is None:
                raise ConfigurationError("initialPositionInStream=AT_TIMESTAMP needs initialPositionInStreamExtended "
                                         "(epoch seconds)")
            fields["initial_position"] = float(ts)
        elif position in ("TRIM_HORIZON", "LATEST"):
            fields["initial_position"] = position
        else:
            raise ConfigurationError(f"initialPositionInStream={position!r}: use TRIM_HORIZON, LATEST or AT_TIMESTAMP")
        for prop, name in (("failoverTimeMillis", "lease_duration"), ("shardSyncIntervalMillis", "shard_sync_interval"),
                           ("idleTimeBetweenReadsInMillis", "idle_poll_interval"), ("taskBackoffTimeMillis", "backoff_base"),
                           ("gracefulLeaseHandoffTimeoutMillis", "handoff_timeout"), ("shutdownGraceMillis", "shutdown_grace")):
            value = millis(prop)
            if value is not None:
                fields[name] = value
        for prop, name in (("maxRecords", "max_records"), ("maxLeasesForWorker", "max_leases_per_worker")):
            number = integer(prop)
            if number is not None and number < 1:
                raise ConfigurationError(f"property {prop}={number}: must be at least 1")
            if number is not None:
                fields[name] = number
        if "backoff_base" in fields:
            fields["backoff_max"] = max(fields["backoff_base"], 10.0)
        worker = props.get("workerId") or props.get("workerIdentifier")
        if worker:
            fields["worker_id"] = worker
        if _fan_out(props):
            fields["enhanced_fan_out"] = True
        graceful = props.get("isGracefulLeaseHandoffEnabled", "").lower()
        if graceful in ("true", "false"):
            fields["graceful_handoff"] = graceful == "true"
        elif graceful:
            raise ConfigurationError(f"property isGracefulLeaseHandoffEnabled={graceful!r}: must be true or false")
        def flag(name: str) -> bool:
            value = props.get(name, "").strip().lower()
            if value not in ("", "true", "false"):
                raise ConfigurationError(f"property {name}={value!r}: must be true or false")
            return value == "true"

        # The KCL's LeaseManagementConfig for the table it creates; the capacities apply to a PROVISIONED table.
        table_options = LeaseTableOptions(
            deletion_protection=flag("leaseTableDeletionProtectionEnabled"),
            point_in_time_recovery=flag("leaseTablePitrEnabled"),
            read_capacity=integer("initialLeaseTableReadCapacity") or 10,
            write_capacity=integer("initialLeaseTableWriteCapacity") or 10)
        ignored = tuple(sorted(k for k in props if k not in _KNOWN_PROPERTIES and k not in _NOT_NEEDED))
        fields.update(overrides)
        return cls(stream=stream, application_name=app, table=props.get("tableName") or app,
                   config=ConsumerConfig(**fields), region=props.get("regionName") or None,
                   kinesis_endpoint=props.get("kinesisEndpoint") or None,
                   dynamodb_endpoint=props.get("dynamoDBEndpoint") or None,
                   metrics_level=(props.get("metricsLevel") or "").upper() or None, ignored=ignored,
                   table_options=table_options)


def consumer_from_properties(path: str | Path, processor: Any, *, client: Any = None, dynamodb_client: Any = None,
                             metrics: Any = None, streamkit_processor: bool = False, **overrides: Any) -> Any:
    """A Consumer configured as the MultiLangDaemon would be by `path`, running the kclpy `processor`
    class per shard on the application's KCL lease table (``tableName``, default ``applicationName``).

    `client` / `dynamodb_client`: boto3 clients to use instead of ones made from ``regionName`` and
    the endpoint properties. `metrics`: a sink spec ("cloudwatch" publishes where the KCL did, "emf",
    "prometheus:PORT"), recorded at the file's ``metricsLevel`` under the application's name, or a
    `streamkit.metrics.Metrics` as it is (its owner closes it); none by default.
    `streamkit_processor`: `processor` is a streamkit RecordProcessor (or per-record function), not a
    kclpy one. `overrides`: ConsumerConfig fields that win over the file."""
    from streamkit.aws.clients import aws_client
    from streamkit.checkpoints.dynamodb import DynamoDBCheckpointStore
    from streamkit.consumer.consumer import Consumer

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the properties file {path}: {exc.strerror or exc}") from None
    props = KclProperties.parse(read_properties(text), **overrides)
    if props.ignored:
        log.warning("properties with no streamkit equivalent, ignored: %s", ", ".join(props.ignored))
    kinesis = client or aws_client("kinesis", endpoint_url=props.kinesis_endpoint, region=props.region)
    dynamodb = dynamodb_client or aws_client("dynamodb", endpoint_url=props.dynamodb_endpoint, region=props.region)
    recorder = metrics
    if isinstance(metrics, str):
        from streamkit.metrics import Metrics

        level = props.metrics_level.lower() if props.metrics_level else None
        recorder = Metrics(metrics, namespace=props.application_name, level=level)  # type: ignore[arg-type]
    from streamkit.errors import StreamkitError, StreamNotFoundError
    from streamkit.transport import as_kinesis

    try:  # a stream typo is said before the lease table is created (an unreachable server: the run retries)
        as_kinesis(kinesis, stream=props.stream).describe_stream_summary(props.stream)
    except StreamNotFoundError:
        raise
    except StreamkitError:
        pass
    store = DynamoDBCheckpointStore(props.table, client=dynamodb, layout="kcl", table_options=props.table_options)
    consumer = Consumer(props.stream, processor if streamkit_processor else kclpy_factory(processor),
                        application_name=props.application_name, checkpoint_store=store, client=kinesis,
                        config=props.config, metrics=recorder)
    return consumer
