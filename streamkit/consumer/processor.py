"""The record processor lifecycle (modelled on the KCL's ShardRecordProcessor) and its inputs.

Each method takes one immutable input object, so fields can be added without breaking processors.
Contract: a processor **must checkpoint in `shard_ended`** (``input.checkpointer.checkpoint()``),
or the shard's children never start. Checkpointing in `process_records` and `shutdown_requested`
is up to the processor; what is not checkpointed is delivered again after a restart (at-least-once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamkit.aio import is_async, shared_loop
from streamkit.errors import CheckpointError
from streamkit.records import StreamRecord

if TYPE_CHECKING:
    from streamkit.consumer.checkpointer import Checkpointer

log = logging.getLogger("streamkit.consumer")

__all__ = [
    "LIFECYCLE",
    "FunctionProcessor",
    "InitializationInput",
    "LeaseLostInput",
    "ProcessRecordsInput",
    "ProcessingStopped",
    "RecordFailed",
    "RecordProcessor",
    "ShardEndedInput",
    "ShutdownRequestedInput",
]


@dataclass(frozen=True, kw_only=True)
class InitializationInput:
    shard_id: str
    #: Where processing resumes: the checkpoint (sequence number, sub-sequence number) or a sentinel.
    extended_sequence_number: str
    #: The stream this shard belongs to (a consumer may read several).
    stream_name: str = ""
    #: A checkpoint prepared but not committed (the KCL's two-phase pendingCheckpoint), if the lease has one.
    pending_checkpoint: str | None = None


def _never() -> bool:
    return False


@dataclass(frozen=True, kw_only=True)
class ProcessRecordsInput:
    records: Sequence[StreamRecord]
    checkpointer: Checkpointer
    millis_behind_latest: int | None
    shard_id: str
    #: True once the consumer is stopping: a long batch may end early by raising `ProcessingStopped`.
    should_stop: Callable[[], bool] = _never


@dataclass(frozen=True, kw_only=True)
class LeaseLostInput:
    """The lease went to another worker: do not checkpoint (it would be rejected); clean up only."""

    shard_id: str


@dataclass(frozen=True, kw_only=True)
class ShardEndedInput:
    """The shard was read to its end (split or merge): checkpoint now (``checkpointer.checkpoint()`` records
    SHARD_END, as the KCL's does; ``checkpoint_shard_end()`` too), or its children never start."""

    checkpointer: Checkpointer
    shard_id: str


@dataclass(frozen=True, kw_only=True)
class ShutdownRequestedInput:
    """The consumer is stopping (stop(), SIGTERM, SIGINT), or the lease is being handed to another worker
    (`handoff_to`): checkpoint what is done; the next owner starts there."""

    checkpointer: Checkpointer
    shard_id: str
    handoff_to: str | None = None


class RecordFailed(Exception):
    """Raised by a processor to say records before `index` of the batch succeeded and `index` failed.

    The consumer then retries from that record only, and after the last attempt hands just that
    record to `on_failure`. Any other exception fails the whole batch.
    """

    def __init__(self, index: int, cause: BaseException) -> None:
        super().__init__(f"record {index} of the batch failed: {cause!r}")
        self.index = index
        self.cause = cause


class ProcessingStopped(Exception):
    """Raised by a processor that stopped early because the consumer is stopping (`should_stop`):
    records before `index` are done, the rest were not touched and will be delivered again."""

    def __init__(self, index: int) -> None:
        super().__init__(f"stopped before record {index}")
        self.index = index


#: The lifecycle methods the consumer calls; each may be ``async def`` (run on `streamkit.aio`'s loop).
LIFECYCLE = ("initialize", "process_records", "lease_lost", "shard_ended", "shutdown_requested")


class RecordProcessor:
    """Subclass and override what you need; one instance serves one shard at a time.

    Any method may be ``async def``: it is then awaited on the event loop `streamkit.aio` keeps (its
    checkpointer calls stay plain calls), in the same order and with the same retries.
    """

    def initialize(self, input: InitializationInput) -> None:
        return None

    def process_records(self, input: ProcessRecordsInput) -> None:
        raise NotImplementedError

    def lease_lost(self, input: LeaseLostInput) -> None:
        return None

    def shard_ended(self, input: ShardEndedInput) -> None:
        input.checkpointer.checkpoint()

    def shutdown_requested(self, input: ShutdownRequestedInput) -> None:
        return None


#: Where a function processor stopped in a batch: None (every record done), or (index, the error
#: raised there, or None when the consumer asked it to stop).
_Stop = tuple[int, Exception | None] | None


class FunctionProcessor(RecordProcessor):
    """Adapts a per-record function: calls it in order, checkpoints after every batch and at shard end.

    A record whose call raises is retried by the consumer's policy as a batch of one; see
    `Consumer` for what happens after the last attempt. With `validate` (the body is a model type) each
    record's body is validated before the call: a record that does not validate fails without reaching
    the function (`BodyValidationError`, never retried).
    """

    def __init__(self, func: Callable[[StreamRecord], Any], *, validate: bool = False) -> None:
        self._async = is_async(func)
        self.func = func if not validate else _validated_async(func) if self._async else _validated(func)

    def process_records(self, input: ProcessRecordsInput) -> None:
        records = input.records
        # An async function: the whole batch is one coroutine on streamkit.aio's loop (one hand-over
        # per batch, not per record); checkpoints are written back here, off the loop.
        if self._async:
            stopped = shared_loop.run(self._each_async(records, input.should_stop))
        else:
            stopped = self._each(records, input.should_stop)
        if stopped is not None:
            i, exc = stopped
            if exc is None:
                raise ProcessingStopped(i)
            if i:
                _checkpoint_done(input.checkpointer, records[i - 1])
            raise RecordFailed(i, exc) from exc
        if records:
            _checkpoint_done(input.checkpointer, records[-1])

    def _each(self, records: Sequence[StreamRecord], should_stop: Callable[[], bool]) -> _Stop:
        """Call the function on each record; where and why it stopped (no exception: asked to stop)."""
        func = self.func
        for i, record in enumerate(records):
            if should_stop():
                return i, None
            try:
                func(record)
            except Exception as exc:
                return i, exc
        return None

    async def _each_async(self, records: Sequence[StreamRecord], should_stop: Callable[[], bool]) -> _Stop:
        """`_each` for an ``async def`` function."""
        func = self.func
        for i, record in enumerate(records):
            if should_stop():
                return i, None
            try:
                await func(record)
            except Exception as exc:
                return i, exc
        return None

    def shutdown_requested(self, input: ShutdownRequestedInput) -> None:
        input.checkpointer.checkpoint()


def _checkpoint_done(checkpointer: Checkpointer, record: StreamRecord) -> None:
    """Checkpoint records already processed. A store that does not answer (or answered too late: the
    write may have been applied) is said and left to the next batch's checkpoint, which covers this one:
    failing the batch for it processed its records again (the soak's duplicates after a dynalite kill)."""
    try:
        checkpointer.checkpoint(record)
    except CheckpointError as exc:
        if not exc.retryable:
            raise
        log.warning("shard %s: could not store the checkpoint at %s (%s); the next one covers it",
                    checkpointer.shard_id, record.position, exc)


def _validated(func: Callable[[StreamRecord], Any]) -> Callable[[StreamRecord], Any]:
    """`func`, called only once the record's body has been decoded into its model (which raises if it does not)."""
    def call(record: StreamRecord) -> Any:
        record.body  # noqa: B018  # decodes and validates now, once (the body is cached on the record)
        return func(record)
    return call


def _validated_async(func: Callable[[StreamRecord], Any]) -> Callable[[StreamRecord], Any]:
    async def call(record: StreamRecord) -> Any:
        record.body  # noqa: B018
        return await func(record)
    return call
