"""ProducerConfig: every knob of the producer, validated at construction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from streamkit.aggregation import MAX_RECORD_BYTES
from streamkit.errors import ConfigurationError
from streamkit.limits import PUT_RECORDS_MAX_BYTES, PUT_RECORDS_MAX_ENTRIES, RECORD_MAX_BYTES_LARGEST
from streamkit.validation import check_fields, seconds

if TYPE_CHECKING:
    from producer.results import FailedRecord
    from streamkit.destinations import Destination

__all__ = ["ProducerConfig"]

Seconds = float | timedelta


@dataclass(frozen=True, kw_only=True)
class ProducerConfig:
    """How the producer aggregates, batches, paces and retries. Defaults follow the KPL's.

    Durations are seconds (float) or `timedelta`.
    """

    #: Pack user records into KPL aggregates (one Kinesis record holds many user records).
    aggregation: bool = True
    #: Largest Kinesis record an aggregate may become, counting its partition key (as Kinesis does).
    #: 1 MiB even on a stream that allows larger records: those draw on a shard's burst capacity, which
    #: AWS means for under 2% of the traffic, so aggregates stay within the sustained size.
    aggregation_max_size: int = MAX_RECORD_BYTES
    #: The record limit (data + partition key). None: the stream's (`MaxRecordSizeInKiB`, 1 to 10 MiB,
    #: read from DescribeStreamSummary); a smaller number is a limit of your own.
    max_record_size: int | None = None
    #: PutRecords caps: entries and bytes per call. None: 5 MiB, or the stream's record limit if larger.
    collection_max_count: int = PUT_RECORDS_MAX_ENTRIES
    collection_max_size: int | None = None
    #: Flush a record at the latest this long after it was put.
    record_max_buffered_time: Seconds = 0.1
    #: Give up on a record this long after it was put; its future then fails with RecordExpiredError.
    #: Admission keeps a record's wait for its first attempt within half of it. A record whose shard
    #: keeps accepting records (throttled only because it is busy) is written late rather than given
    #: up: it expires once its shard has accepted nothing for this long, or on errors other than
    #: throttling. With ``buffer_full="expire"``: strictly this long after the put.
    record_ttl: Seconds = 30.0
    #: Per-shard pacing as a multiple of the shard limits (1 MiB/s, 1,000 records/s); 0 turns it off.
    rate_limit: float = 1.5
    #: True: at most one Kinesis record per shard in flight, so records of one partition key arrive in
    #: put order even through retries and resharding. False: more in flight, order may change on retry.
    ordered: bool = True
    #: Concurrent PutRecords calls.
    max_connections: int = 16
    #: Bound on buffered user-record bytes; `put` then blocks (`put_timeout`) or raises BufferFullError.
    max_buffered_bytes: int = 256 * 1024 * 1024
    #: When a record would not fit, or would wait past half of `record_ttl` before its first attempt
    #: (its shard already holds that much of what it accepts: admission by drain time, see
    #: `producer.admission`): "block" `put`/`send` until it fits (at most `put_timeout`, then
    #: BufferFullError), "raise" BufferFullError at once, or "expire": no admission by drain time,
    #: only the byte bound (which blocks); records may then expire in the buffer before any attempt.
    buffer_full: Literal["block", "raise", "expire"] = "block"
    put_timeout: Seconds = 60.0
    #: At interpreter exit, a producer never closed flushes for at most this long; what is still
    #: unwritten then goes to `on_failure` (or, with none, one ERROR line says how many were lost).
    exit_flush_timeout: Seconds = 10.0
    #: Backoff between attempts: full jitter on an exponential base (tenacity's wait_random_exponential).
    backoff_base: Seconds = 0.1
    backoff_max: Seconds = 5.0
    #: Where every record that could not be written goes, payload included: a callable taking one
    #: `FailedRecord`, a destination (``"file:PATH"``, ``"sqs:QUEUE_URL"`` or a `Destination`, which
    #: receives `FailedRecord.to_json()` documents, one call per failed Kinesis record), or None.
    on_failure: Callable[[FailedRecord], None] | Destination | str | None = None
    #: A `streamkit.metrics.Metrics`, or a spec ("emf", "emf:PATH", "cloudwatch", "prometheus:PORT"):
    #: UserRecordsPut, KinesisRecordsPut, UserRecordsFailed, RetriesPerRecord, BufferingTime,
    #: ErrorsByCode, Throttles (the KPL's names). None: nothing recorded.
    metrics: Any = None
    #: Record the current OpenTelemetry span's W3C traceparent in each aggregated record's KPL tags
    #: (streamkit.tracing). None: when OpenTelemetry has a tracer provider at the producer's start;
    #: False: never. Plain records carry none.
    trace_context: bool | None = None

    def __post_init__(self) -> None:
        check_fields(self)  # types, NaN and infinity first
        for name, minimum in (("record_max_buffered_time", 0.0), ("record_ttl", 0.001), ("put_timeout", 0.0),
                              ("exit_flush_timeout", 0.0),
                              ("backoff_base", 0.0), ("backoff_max", 0.0)):
            object.__setattr__(self, name, seconds("ProducerConfig", name, getattr(self, name), minimum=minimum))
        if not 1 <= self.collection_max_count <= PUT_RECORDS_MAX_ENTRIES:
            raise ConfigurationError(f"ProducerConfig.collection_max_count must be 1..{PUT_RECORDS_MAX_ENTRIES}, "
                                     f"got {self.collection_max_count}")
        record_limit = self.max_record_size if self.max_record_size is not None else RECORD_MAX_BYTES_LARGEST
        if self.max_record_size is not None and not 1024 <= self.max_record_size <= RECORD_MAX_BYTES_LARGEST:
            raise ConfigurationError(f"ProducerConfig.max_record_size must be 1024 bytes to 10 MiB, got {self.max_record_size}")
        if not 64 <= self.aggregation_max_size <= min(record_limit, RECORD_MAX_BYTES_LARGEST):
            raise ConfigurationError(
                f"ProducerConfig.aggregation_max_size must be between 64 and max_record_size ({record_limit}), "
                f"got {self.aggregation_max_size}")
        if self.collection_max_size is not None and self.max_record_size is not None and \
                self.collection_max_size < self.max_record_size:
            raise ConfigurationError(
                f"ProducerConfig.collection_max_size ({self.collection_max_size}) must hold one record "
                f"of max_record_size ({self.max_record_size})")
        if float(self.backoff_max) < float(self.backoff_base):  # type: ignore[arg-type]
            raise ConfigurationError(f"ProducerConfig.backoff_max ({self.backoff_max}) must not be below backoff_base "
                                     f"({self.backoff_base})")
        if self.rate_limit < 0:
            raise ConfigurationError(f"ProducerConfig.rate_limit must be >= 0, got {self.rate_limit}")
        if self.max_connections < 1:
            raise ConfigurationError(f"ProducerConfig.max_connections must be >= 1, got {self.max_connections}")
        if self.max_buffered_bytes < (self.max_record_size or MAX_RECORD_BYTES):
            raise ConfigurationError("ProducerConfig.max_buffered_bytes must hold at least one record")
        if isinstance(self.on_failure, str):
            from streamkit.destinations import split_destination

            split_destination(self.on_failure)  # a bad spec fails here; the Producer opens the destination
        elif self.on_failure is not None and not callable(self.on_failure) and not hasattr(self.on_failure, "send_json"):
            raise ConfigurationError(f"ProducerConfig.on_failure must be a callable, a destination or "
                                     f"'file:PATH' / 'sqs:URL', got {self.on_failure!r}")
        if self.buffer_full not in ("block", "raise", "expire"):
            raise ConfigurationError(f"ProducerConfig.buffer_full must be 'block', 'raise' or 'expire', "
                                     f"got {self.buffer_full!r}")

    def for_stream(self, max_record_bytes: int, *, auto: bool) -> ProducerConfig:
        """This configuration with the stream's limits filled in (and, on an AUTO stream, no aggregation and
        no per-key order: the service places records itself)."""
        record = min(self.max_record_size or max_record_bytes, max_record_bytes)
        changes: dict[str, object] = {
            "max_record_size": record,
            "aggregation_max_size": min(self.aggregation_max_size, record),
            "collection_max_size": self.collection_max_size or max(PUT_RECORDS_MAX_BYTES, record),
            "max_buffered_bytes": max(self.max_buffered_bytes, record),
        }
        if auto:
            changes.update(aggregation=False, ordered=False)
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def record_limit(self) -> int:
        """The record limit in force (after `for_stream`; before it, the default stream's)."""
        return self.max_record_size or MAX_RECORD_BYTES

    @property
    def call_limit(self) -> int:
        return self.collection_max_size or max(PUT_RECORDS_MAX_BYTES, self.record_limit)

    # Typed accessors (the dataclass fields accept timedelta; after __post_init__ they hold floats).
    @property
    def linger(self) -> float:
        return float(self.record_max_buffered_time)  # type: ignore[arg-type]

    @property
    def ttl(self) -> float:
        return float(self.record_ttl)  # type: ignore[arg-type]
