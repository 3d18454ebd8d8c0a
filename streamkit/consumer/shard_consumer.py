"""One shard, in order: read (the shard reader), deaggregate, process with retries and the failure policy.

Runs in its own thread while this worker holds the shard's lease. Ends when the shard ends (after
`shard_ended`), when the lease is lost (`lease_lost`), or when the consumer stops
(`shutdown_requested`).

**The at-least-once invariant.** `Checkpointer.last_delivered` is the last record that was processed
successfully or handed to the failure destination, and nothing past it is ever checkpointed: while a
batch is with the processor it stands at the batch's last record (so the processor may checkpoint
inside it), and the moment the processor fails it goes back to the last record that succeeded. A stop,
SIGTERM, a lease loss or another shard's failure that arrives while a record waits for its retry
therefore checkpoints (in `shutdown_requested`) before that record, and a restart delivers it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamkit.checkpoints.model import Checkpoint
from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.consumer.checkpointer import Checkpointer
from streamkit.consumer.config import ConsumerConfig
from streamkit.consumer.leases import LeaseHolder
from streamkit.consumer.processor import (
    InitializationInput,
    LeaseLostInput,
    ProcessingStopped,
    ProcessRecordsInput,
    RecordFailed,
    RecordProcessor,
    ShardEndedInput,
    ShutdownRequestedInput,
)
from streamkit.consumer.retrieval import to_stream_records
from streamkit.destinations import DeadLetter, Destination, validation_errors_of
from streamkit.errors import BodyDecodeError, LeaseLostError, ShardFailedError, StreamkitError, ThrottledError
from streamkit.hashing import ShardInfo
from streamkit.records import StreamRecord
from streamkit.retry import RetryPolicy
from streamkit.shard_reader import Batch, ReaderBase, ReaderSettings, ShardReader
from streamkit.transport import KinesisTransport, stream_name_of

__all__ = ["ShardConsumer", "ShardFailedError", "ShardStats"]

log = logging.getLogger("streamkit.consumer")

#: While reads keep failing, say so once, then again every this many seconds.
FAILURE_NOTICE_INTERVAL = 10.0
#: Throttled reads in a row before they count as a failing shard (and are said on stderr).
THROTTLES_WORTH_SAYING = 5


@dataclass
class ShardStats:
    shard_id: str
    records: int = 0
    batches: int = 0
    millis_behind_latest: int | None = None
    last_activity: float = 0.0
    dead_lettered: int = 0
    #: Records whose body did not decode or validate as `body=` asked (also counted in dead_lettered when sent).
    invalid: int = 0
    corrupt: int = 0
    #: starting, reading, idle (the last read found nothing new), failing (reads fail), ended, stopped, ...
    state: str = "starting"
    last_error: str = ""
    #: How long this shard's reads have been getting no answer at all (refused, reset, timed out); 0 if they do.
    unanswered_for: float = 0.0
    stream_name: str = ""
    #: Bytes of record data processed (what balancing by load measures).
    bytes: int = 0


def _worth_retrying(error: BaseException) -> bool:
    """Every processing error is retried, except a body that did not decode or validate: the same bytes fail again."""
    return not isinstance(error, BodyDecodeError)


@dataclass
class _Attempts:
    """Attempts at the record (or batch) now failing, keyed by its position."""

    key: tuple[str, int | None] | None = None
    count: int = 0


class ShardConsumer:
    def __init__(self, *, transport: KinesisTransport, stream: str, stream_arn: str | None, holder: LeaseHolder,
                 processor: RecordProcessor, config: ConsumerConfig, stopping: threading.Event,
                 on_shard_end: Callable[[str, list[ShardInfo]], None], destination: Destination | None,
                 clock: Clock = SYSTEM_CLOCK, efo_consumer_arn: str | None = None, metrics: Any = None) -> None:
        from streamkit.metrics import NO_METRICS

        self.metrics = metrics if metrics is not None else NO_METRICS.scope(stream, "ProcessRecords")
        from streamkit.tracing import enabled as tracing_enabled

        self._trace = tracing_enabled()
        self.transport = transport
        self.stream = stream
        self.stream_arn = stream_arn
        self.holder = holder
        self._range: tuple[int, int] | None = None  # `_hash_range`
        self.processor = processor
        self.config = config
        self.stopping = stopping
        self.on_shard_end = on_shard_end
        self.destination = destination
        self.clock = clock
        self.efo_consumer_arn = efo_consumer_arn
        self.checkpointer = Checkpointer(holder)
        now = clock.monotonic()
        self.stats = ShardStats(holder.shard_id, last_activity=now, stream_name=stream_name_of(stream))
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._policy = RetryPolicy(base=config.seconds.backoff_base, maximum=config.seconds.backoff_max,
                                   max_attempts=config.max_attempts, retryable=_worth_retrying)
        self._backoff = self._policy.backoff()
        self._last_notice = -FAILURE_NOTICE_INTERVAL
        self._reader_now: ReaderBase | None = None

    @property
    def shard_id(self) -> str:
        return self.holder.shard_id

    # -- thread body ---------------------------------------------------------------------------
    @property
    def reader(self) -> ReaderBase | None:
        """The reader of the shard now (None before the first)."""
        return self._reader_now

    def run(self) -> None:
        try:
            self._run()
        except LeaseLostError:
            self._lease_lost()
        except BaseException as exc:  # reported by the Consumer, which stops
            self.error = exc
            self.stats.state = "failed"
            log.error("shard %s stopped: %s", self.shard_id, exc)
        finally:
            self.finished.set()

    def _reader(self, start: Checkpoint) -> ReaderBase:
        if self.efo_consumer_arn is not None:
            from streamkit.consumer.efo import EfoReader

            return EfoReader(self.transport, self.stream, self.efo_consumer_arn, self.shard_id, start,
                             stop=self.stopping, clock=self.clock, on_error=self._read_failed)
        settings = ReaderSettings(max_records=self.config.max_records, max_fetch_bytes=self.config.max_fetch_bytes,
                                  min_poll_interval=self.config.seconds.min_poll_interval,
                                  idle_poll_interval=self.config.seconds.idle_poll_interval)
        return ShardReader(self.transport, self.stream, self.shard_id, start, stop=self.stopping, clock=self.clock,
                           settings=settings, on_error=self._read_failed)

    def _run(self) -> None:
        start = self.holder.lease.checkpoint
        if start.sequence_number == "AT_TIMESTAMP" and start.timestamp is None:
            start = self._configured_timestamp()
        pending = self.holder.lease.pending_checkpoint
        self.processor.initialize(InitializationInput(shard_id=self.shard_id, extended_sequence_number=str(start),
                                                      stream_name=self.stats.stream_name,
                                                      pending_checkpoint=None if pending is None else str(pending)))
        reader = self._reader_now = self._reader(start)
        self.stats.state = "reading"
        for batch in reader.batches():
            if self.holder.lost.is_set():
                raise LeaseLostError(f"lease on {self.shard_id} lost")
            self.stats.unanswered_for = 0.0
            self.stats.last_error = ""
            self.stats.millis_behind_latest = batch.millis_behind_latest
            # Every read, an empty one too: 0 once caught up, the same figure the live view shows.
            self.metrics.gauge("MillisBehindLatest", batch.millis_behind_latest or 0, shard=self.shard_id,
                               unit="Milliseconds")
            records = self._records(batch)
            if records:
                self.stats.state = "reading"
                if self._trace:  # one span for the batch, linked to each record's trace context
                    from streamkit.tracing import batch_span, traceparents_of_records

                    with batch_span("kinesis.process_records", traceparents_of_records(batch.records),
                                    shard_id=self.shard_id, stream=self.stream):
                        self._process(records, batch.millis_behind_latest)
                else:
                    self._process(records, batch.millis_behind_latest)
                if self.stopping.is_set():
                    break  # a batch cut short must not count as the shard's end
            if batch.ended:
                self._shard_end(batch.children)
                return
            self.stats.state = "idle" if batch.caught_up else "reading"
            if self.stopping.is_set():
                break
        if self.holder.lost.is_set():
            raise LeaseLostError(f"lease on {self.shard_id} lost")
        self._shutdown()

    def _configured_timestamp(self) -> Checkpoint:
        """A lease at AT_TIMESTAMP without its time (the KCL keeps the time in its configuration, not in
        the lease): the time of ConsumerConfig.initial_position, which must then be one."""
        from datetime import datetime

        pos = self.config.initial_position
        if isinstance(pos, str):
            raise ShardFailedError(f"the lease on {self.shard_id} starts AT_TIMESTAMP but holds no time (a KCL lease: "
                                   "the KCL kept it in its configuration); set ConsumerConfig.initial_position to that "
                                   "time (--from at-timestamp:ISO)")
        return Checkpoint("AT_TIMESTAMP", timestamp=pos.timestamp() if isinstance(pos, datetime) else float(pos))

    def _records(self, batch: Batch) -> list[StreamRecord]:
        corrupt: list[tuple[dict[str, object], Exception]] = []
        records = to_stream_records(batch.records, self.shard_id, after=batch.after, event_source_arn=self.stream_arn,
                                    body=self.config.body, corrupt=corrupt, hash_range=self._hash_range())
        for raw, problem in corrupt:
            self.stats.corrupt += 1
            log.error("shard %s: record %s has the KPL magic and a good digest but a malformed body (%s); "
                      "delivered as one plain record", self.shard_id, raw["SequenceNumber"], problem)
        return records

    def _hash_range(self) -> tuple[int, int] | None:
        """This shard's hash-key range if it is a child (only a child can hold an aggregate's misplaced records);
        from the lease, or asked once of Kinesis (a store that does not keep ranges)."""
        lease = self.holder.lease
        if not lease.parent_shard_ids:
            return None
        if self._range is None:
            self._range = lease.hash_key_range
        if self._range is None:
            try:
                found = [s for s in self.transport.list_shards(self.stream) if s.shard_id == self.shard_id]
            except StreamkitError as exc:
                log.warning("shard %s: could not read its hash-key range (%s); asked again with the next batch",
                            self.shard_id, exc)
                return None
            self._range = (found[0].starting_hash_key, found[0].ending_hash_key) if found else None
        return self._range

    def _read_failed(self, err: StreamkitError, failures: int, delay: float) -> None:
        if isinstance(err, ThrottledError) and failures < THROTTLES_WORTH_SAYING:
            return  # routine: backs off quietly, and the shard's state (idle or reading) stands
        self.stats.state = "failing"
        self.stats.unanswered_for = self._reader_now.unanswered_for() if self._reader_now is not None else 0.0
        self.stats.last_error = str(err)
        now = self.clock.monotonic()
        if now - self._last_notice >= FAILURE_NOTICE_INTERVAL:
            self._last_notice = now
            log.warning("shard %s: reading %s failed %d time(s) in a row (%s); retrying with backoff",
                        self.shard_id, self.stream, failures, err)

    # -- processing ------------------------------------------------------------------------------
    def _process(self, records: list[StreamRecord], millis_behind: int | None) -> None:
        """Process `records` in order, retrying failures; returns when all are done or when stopping.

        `checkpointer.last_delivered` moves forward only over records that succeeded or were given up
        on (dead-lettered): see the module docstring.
        """
        remaining = records
        attempts = _Attempts()
        m = self.metrics
        if m.enabled:
            arrival = records[-1].approximate_arrival_timestamp
            if arrival is not None:
                m.gauge("IteratorAgeMilliseconds", max(0.0, (self.clock.time() - arrival) * 1000), shard=self.shard_id,
                        unit="Milliseconds")
        started = self.clock.monotonic()
        while remaining:
            done_before = self.checkpointer.last_delivered
            self.checkpointer.last_delivered = remaining[-1]  # the processor may checkpoint inside the batch
            try:
                self.processor.process_records(ProcessRecordsInput(records=remaining, checkpointer=self.checkpointer,
                                                                   millis_behind_latest=millis_behind,
                                                                   shard_id=self.shard_id,
                                                                   should_stop=self.stopping.is_set))
                self._count(remaining, started)
                return
            except LeaseLostError:
                raise
            except ProcessingStopped as ps:
                done = remaining[:ps.index]
                self._count(done)
                self.checkpointer.last_delivered = done[-1] if done else done_before
                return
            except RecordFailed as rf:
                done = remaining[:rf.index]
                self._count(done)
                self.checkpointer.last_delivered = done[-1] if done else done_before
                remaining = remaining[rf.index:]
                failed, cause = remaining[:1], rf.cause
            except Exception as exc:
                self.checkpointer.last_delivered = done_before  # none of the batch is known to be done
                failed, cause = remaining, exc
            key = failed[0].position
            attempts.count = attempts.count + 1 if key == attempts.key else 1
            attempts.key = key
            delay = self._policy.next_delay(self._backoff, attempts.count, 0.0, cause)
            if delay is not None:
                log.warning("shard %s: processing %d record(s) from %s failed (attempt %d of %d): %r; retrying in "
                            "%.2f s", self.shard_id, len(failed), failed[0].position, attempts.count,
                            self.config.max_attempts, cause, delay)
                if self.clock.wait(self.stopping, delay):
                    return  # stopping: the failed records stay unprocessed and are delivered again after a restart
                if self.holder.lost.is_set():
                    raise LeaseLostError(f"lease on {self.shard_id} lost while retrying")
                continue
            self._give_up(failed, cause, attempts.count)
            remaining = remaining[len(failed):]
            attempts = _Attempts()

    def _give_up(self, failed: list[StreamRecord], cause: BaseException, attempts: int) -> None:
        if isinstance(cause, BodyDecodeError):
            self.stats.invalid += len(failed)
            self.metrics.count("RecordsInvalid", len(failed), shard=self.shard_id)
        if self.destination is None:
            raise ShardFailedError(
                f"shard {self.shard_id}: {len(failed)} record(s) from sequence {failed[0].sequence_number} failed "
                f"{attempts} times; last error: {cause!r} (on_failure='stop')") from cause
        letters = [DeadLetter(record=r, error=repr(cause), attempts=attempts, stream_arn=self.stream_arn,
                              validation_errors=validation_errors_of(cause)) for r in failed]
        self.destination.send(letters)  # raises if the destination cannot take them: nothing moves on
        self.stats.dead_lettered += len(failed)
        self.metrics.count("RecordsDeadLettered", len(failed), shard=self.shard_id)
        log.error("shard %s: %d record(s) from %s sent to %r after %d attempts: %r", self.shard_id, len(failed),
                  failed[0].position, self.destination, attempts, cause)
        self.checkpointer.last_delivered = failed[-1]
        self.checkpointer.checkpoint(failed[-1])  # the shard moves on past them

    def _count(self, done: list[StreamRecord], started: float | None = None) -> None:
        if done:
            self.stats.records += len(done)
            self.stats.bytes += sum(len(r.data) for r in done)
            self.stats.batches += 1
            self.stats.last_activity = now = self.clock.monotonic()
            if self.metrics.enabled:
                self.metrics.count("RecordsProcessed", len(done), shard=self.shard_id)
                if started is not None:
                    self.metrics.timing("ProcessingTime", (now - started) * 1000, shard=self.shard_id)

    # -- endings ---------------------------------------------------------------------------------
    def _shard_end(self, children: list[ShardInfo]) -> None:
        self.checkpointer.shard_ended = True
        self.processor.shard_ended(ShardEndedInput(checkpointer=self.checkpointer, shard_id=self.shard_id))
        if not self.checkpointer.last_checkpoint.is_shard_end:
            raise ShardFailedError(f"the processor did not checkpoint {self.shard_id} in shard_ended; its child "
                                   "shards cannot start (call input.checkpointer.checkpoint())")
        self.stats.state = "ended"
        self.holder.release()
        self.on_shard_end(self.shard_id, children)

    def _shutdown(self) -> None:
        self.stats.state = "shutting down"
        try:
            self.processor.shutdown_requested(ShutdownRequestedInput(checkpointer=self.checkpointer,
                                                                     shard_id=self.shard_id,
                                                                     handoff_to=self.holder.handing_to))
        except LeaseLostError:
            self._lease_lost()
            return
        except Exception:
            log.exception("shard %s: shutdown_requested raised", self.shard_id)
        self.holder.release()
        self.stats.state = "stopped"

    def _lease_lost(self) -> None:
        self.stats.state = "lease lost"
        self.holder.lost.set()
        try:
            self.processor.lease_lost(LeaseLostInput(shard_id=self.shard_id))
        except Exception:
            log.exception("shard %s: lease_lost raised", self.shard_id)
