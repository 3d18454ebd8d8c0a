"""One shard, in order: fetch, deaggregate, process (with retries and the failure policy), checkpoint.

Runs in its own thread while this worker holds the shard's lease. Ends when the shard ends (after
`shard_ended`), when the lease is lost (`lease_lost`), or when the consumer stops
(`shutdown_requested`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from streamkit import kinesis
from streamkit.backoff import Backoff
from streamkit.checkpoints.model import Checkpoint
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
from streamkit.consumer.retrieval import Fetched, get_records, to_stream_records
from streamkit.destinations import DeadLetter, Destination
from streamkit.errors import LeaseLostError, StreamkitError
from streamkit.records import StreamRecord

__all__ = ["ShardConsumer", "ShardFailedError", "ShardStats"]

log = logging.getLogger("streamkit.consumer")


class ShardFailedError(StreamkitError):
    """A shard stopped: its records kept failing and `on_failure` is "stop", or the processor broke the contract."""


@dataclass
class ShardStats:
    shard_id: str
    records: int = 0
    batches: int = 0
    millis_behind_latest: int | None = None
    last_activity: float = field(default_factory=time.monotonic)
    dead_lettered: int = 0
    corrupt: int = 0
    state: str = "starting"


class ShardConsumer:
    def __init__(self, *, client: Any, stream_name: str, stream_arn: str | None, holder: LeaseHolder,
                 processor: RecordProcessor, config: ConsumerConfig, stopping: threading.Event,
                 on_shard_end: Callable[[str, list[dict[str, Any]]], None], destination: Destination | None,
                 fetch: Callable[[Any, str, int], Fetched] = get_records,
                 sleep_until_stop: Callable[[float], bool] | None = None, efo_consumer_arn: str | None = None) -> None:
        self.client = client
        self.stream_name = stream_name
        self.stream_arn = stream_arn
        self.holder = holder
        self.processor = processor
        self.config = config
        self.stopping = stopping
        self.on_shard_end = on_shard_end
        self.destination = destination
        self._fetch = fetch
        self.efo_consumer_arn = efo_consumer_arn
        self._wait = sleep_until_stop or stopping.wait
        self.checkpointer = Checkpointer(holder)
        self.stats = ShardStats(holder.shard_id)
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._backoff = Backoff(base=config.f("backoff_base"), maximum=config.f("backoff_max"))
        self._fetch_backoff = Backoff(base=0.1, maximum=5.0)

    @property
    def shard_id(self) -> str:
        return self.holder.shard_id

    # -- thread body ---------------------------------------------------------------------------
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

    def _run(self) -> None:
        start = self.holder.lease.checkpoint
        self.processor.initialize(InitializationInput(shard_id=self.shard_id, extended_sequence_number=str(start)))
        if self.efo_consumer_arn is not None:
            self._run_efo(start)
            return
        iterator, after = self._iterator_for(start)
        self.stats.state = "reading"
        last_call = 0.0
        fetch_failures = 0
        while True:
            if self.holder.lost.is_set():
                raise LeaseLostError(f"lease on {self.shard_id} lost")
            if self.stopping.is_set():
                self._shutdown()
                return
            gap = self.config.f("min_poll_interval") - (time.monotonic() - last_call)
            if gap > 0 and self._wait(gap):
                continue
            last_call = time.monotonic()
            try:
                fetched = self._fetch(self.client, iterator, self.config.max_records)
                fetch_failures = 0
            except (ClientError, BotoCoreError) as exc:
                err = kinesis.translate_error(exc, stream_name=self.stream_name)
                code = getattr(err, "code", "")
                if code == "ExpiredIteratorException":
                    log.info("iterator for %s expired; resuming after the last delivered record", self.shard_id)
                    iterator, after = self._iterator_for(self._resume_point())
                    continue
                if not err.retryable:
                    raise err from exc
                fetch_failures += 1
                delay = self._fetch_backoff.delay(fetch_failures)
                log.debug("GetRecords on %s failed (%s); retrying in %.2f s", self.shard_id, code, delay)
                self._wait(delay)
                continue
            corrupt: list[tuple[dict[str, Any], Exception]] = []
            records = to_stream_records(fetched.records, self.shard_id, after=after, event_source_arn=self.stream_arn,
                                        body=self.config.body, corrupt=corrupt)
            after = None
            for raw, problem in corrupt:
                self.stats.corrupt += 1
                log.error("shard %s: record %s has the KPL magic and a good digest but a malformed body (%s); "
                          "delivered as one plain record", self.shard_id, raw["SequenceNumber"], problem)
            self.stats.millis_behind_latest = fetched.millis_behind_latest
            if records:
                self._process(records, fetched.millis_behind_latest)
                if self.stopping.is_set():
                    self._shutdown()  # a batch cut short must not count as the shard's end
                    return
            if fetched.next_iterator is None:
                self._shard_end(fetched.child_shards)
                return
            iterator = fetched.next_iterator
            if not records and (fetched.millis_behind_latest or 0) == 0:
                self.stats.state = "idle"
                self._wait(self.config.f("idle_poll_interval"))
            else:
                self.stats.state = "reading"

    def _run_efo(self, start: Checkpoint) -> None:
        """Enhanced fan-out: records are pushed; a broken subscription resumes after the last one processed."""
        from streamkit.consumer.efo import subscribe

        assert self.efo_consumer_arn is not None
        position = start
        failures = 0
        self.stats.state = "reading"
        while True:
            after = (position.sequence_number, position.sub_sequence_number) \
                if not position.is_sentinel and position.sub_sequence_number is not None else None
            try:
                for fetched in subscribe(self.client, self.efo_consumer_arn, self.shard_id, position):
                    failures = 0
                    if self.holder.lost.is_set():
                        raise LeaseLostError(f"lease on {self.shard_id} lost")
                    if self.stopping.is_set():
                        self._shutdown()
                        return
                    records = to_stream_records(fetched.records, self.shard_id, after=after,
                                                event_source_arn=self.stream_arn, body=self.config.body)
                    after = None
                    self.stats.millis_behind_latest = fetched.millis_behind_latest
                    self.stats.state = "reading" if records else "idle"
                    if records:
                        self._process(records, fetched.millis_behind_latest)
                        if self.stopping.is_set():
                            self._shutdown()
                            return
                    if fetched.next_iterator is None:
                        self._shard_end(fetched.child_shards)
                        return
                return
            except (ClientError, BotoCoreError) as exc:
                err = kinesis.translate_error(exc, stream_name=self.stream_name)
                if getattr(err, "code", "") == "InvalidArgumentException" and not position.is_sentinel:
                    raise self._foreign_checkpoint(position, err) from exc
                if not err.retryable and getattr(err, "code", "") != "ResourceInUseException":
                    raise err from exc
                failures += 1
                self._wait(self._fetch_backoff.delay(failures))
                position = self._resume_point()

    # -- positions -------------------------------------------------------------------------------
    def _foreign_checkpoint(self, cp: Checkpoint, err: Exception) -> ShardFailedError:
        """Kinesis refused a sequence number of ours: it came from another stream of the same name."""
        return ShardFailedError(
            f"the checkpoint of {self.shard_id} ({cp.sequence_number}) does not belong to stream "
            f"{self.stream_name!r}; was the stream deleted and created again under the same name? Its old "
            f"checkpoints must go: use a new application_name, or delete this application's checkpoints for the "
            f"stream ({err})")

    def _resume_point(self) -> Checkpoint:
        last = self.checkpointer.last_delivered
        if last is None:
            return self.holder.lease.checkpoint
        return Checkpoint(last.sequence_number, last.sub_sequence_number)

    def _iterator_for(self, cp: Checkpoint) -> tuple[str, tuple[str, int] | None]:
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": self.shard_id}
        after: tuple[str, int] | None = None
        if cp.sequence_number in ("TRIM_HORIZON", "LATEST"):
            kwargs["ShardIteratorType"] = cp.sequence_number
        elif cp.sequence_number == "AT_TIMESTAMP":
            kwargs.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=cp.timestamp)
        elif cp.is_shard_end:
            raise ShardFailedError(f"{self.shard_id} is already finished")
        elif cp.sub_sequence_number is None:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=cp.sequence_number)
        else:
            # Inside an aggregate: read it again and skip the sub-records already processed.
            kwargs.update(ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=cp.sequence_number)
            after = (cp.sequence_number, cp.sub_sequence_number)
        attempt = 0
        while True:
            try:
                return self.client.get_shard_iterator(**kwargs)["ShardIterator"], after
            except (ClientError, BotoCoreError) as exc:
                err = kinesis.translate_error(exc, stream_name=self.stream_name)
                if getattr(err, "code", "") == "InvalidArgumentException" and "StartingSequenceNumber" in kwargs:
                    raise self._foreign_checkpoint(cp, err) from exc
                attempt += 1
                if not err.retryable or attempt >= 20:
                    raise err from exc
                if self._wait(self._fetch_backoff.delay(attempt)) or self.holder.lost.is_set():
                    raise LeaseLostError("stopping") from exc

    # -- processing ------------------------------------------------------------------------------
    def _process(self, records: list[StreamRecord], millis_behind: int | None) -> None:
        cfg = self.config
        remaining = records
        attempts = 0
        failing_key: tuple[str, int | None] | None = None
        while remaining:
            before = self.checkpointer.last_delivered
            self.checkpointer.last_delivered = remaining[-1]
            try:
                self.processor.process_records(ProcessRecordsInput(records=remaining, checkpointer=self.checkpointer,
                                                                   millis_behind_latest=millis_behind,
                                                                   shard_id=self.shard_id,
                                                                   should_stop=self.stopping.is_set))
                self._count(remaining)
                return
            except LeaseLostError:
                raise
            except ProcessingStopped as ps:
                done = remaining[:ps.index]
                self._count(done)
                # Only what was processed counts as delivered: shutdown_requested checkpoints up to here.
                self.checkpointer.last_delivered = done[-1] if done else before
                return
            except RecordFailed as rf:
                self._count(remaining[:rf.index])
                remaining = remaining[rf.index:]
                key = remaining[0].position
                attempts = attempts + 1 if key == failing_key else 1
                failing_key = key
                failed, cause = remaining[:1], rf.cause
            except Exception as exc:
                attempts += 1
                failed, cause = remaining, exc
            if attempts < cfg.max_attempts:
                delay = self._backoff.delay(attempts)
                log.warning("shard %s: processing %d record(s) from %s failed (attempt %d of %d): %r; retrying in "
                            "%.2f s", self.shard_id, len(failed), failed[0].position, attempts, cfg.max_attempts,
                            cause, delay)
                if self._wait(delay):
                    return  # stopping: the records stay unprocessed and will be delivered again
                continue
            self._give_up(failed, cause, attempts)
            remaining = remaining[len(failed):]
            attempts = 0
            failing_key = None

    def _give_up(self, failed: list[StreamRecord], cause: BaseException, attempts: int) -> None:
        if self.destination is None:
            raise ShardFailedError(
                f"shard {self.shard_id}: {len(failed)} record(s) from sequence {failed[0].sequence_number} failed "
                f"{attempts} times; last error: {cause!r} (on_failure='stop')") from cause
        letters = [DeadLetter(record=r, error=repr(cause), attempts=attempts, stream_arn=self.stream_arn)
                   for r in failed]
        self.destination.send(letters)
        self.stats.dead_lettered += len(failed)
        log.error("shard %s: %d record(s) from %s sent to %r after %d attempts: %r", self.shard_id, len(failed),
                  failed[0].position, self.destination, attempts, cause)
        self.checkpointer.last_delivered = failed[-1]
        self.checkpointer.checkpoint(failed[-1])  # the shard moves on past them

    def _count(self, done: list[StreamRecord]) -> None:
        if done:
            self.stats.records += len(done)
            self.stats.batches += 1
            self.stats.last_activity = time.monotonic()

    # -- endings ---------------------------------------------------------------------------------
    def _shard_end(self, child_shards: list[dict[str, Any]]) -> None:
        self.checkpointer.shard_ended = True
        self.processor.shard_ended(ShardEndedInput(checkpointer=self.checkpointer, shard_id=self.shard_id))
        if not self.checkpointer.last_checkpoint.is_shard_end:
            raise ShardFailedError(f"the processor did not checkpoint {self.shard_id} in shard_ended; its child "
                                   "shards cannot start (call input.checkpointer.checkpoint_shard_end())")
        self.stats.state = "ended"
        self.holder.release()
        self.on_shard_end(self.shard_id, child_shards)

    def _shutdown(self) -> None:
        self.stats.state = "shutting down"
        try:
            self.processor.shutdown_requested(ShutdownRequestedInput(checkpointer=self.checkpointer,
                                                                     shard_id=self.shard_id))
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
