"""`kinesis_handler`: a function of one StreamRecord becomes a Kinesis-triggered Lambda handler.

Per record, in order: decode, call, retry a failure in-function (exponential backoff, full jitter)
while the invocation has time left, then either send the record with its payload to `on_failure`
and go on, or stop and report it in ``batchItemFailures`` (Lambda then retries from it; nothing after
it was processed). A record whose body cannot be decoded fails at once, with a clear error; with
``body=Model`` (`streamkit.bodies`) each body is validated before the function is called, and one that
does not validate fails at once, never retried, its validation errors in its dead letter.

With a `progress_store` (any streamkit CheckpointStore), sub-records of an aggregate that already
succeeded are skipped when Lambda redelivers the aggregate after a failure inside it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from streamkit.aio import blocking
from streamkit.aws_lambda.events import BatchResponse, parse_event
from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.errors import BatchFailedError, BodyDecodeError, ConfigurationError
from streamkit.records import StreamRecord

# Cold start: what only a failure, a progress store, a destination or metrics need is imported when
# first used (tests/unit/test_cold_import.py keeps it so).
if TYPE_CHECKING:
    from streamkit.checkpoints.base import CheckpointStore
    from streamkit.checkpoints.model import Checkpoint
    from streamkit.destinations import Destination
    from streamkit.retry import RetryPolicy

__all__ = ["HandlerOptions", "kinesis_handler", "process_event"]

log = logging.getLogger("streamkit.lambda")
Body = Literal["json", "text", "bytes"]


@dataclass(frozen=True, kw_only=True)
class HandlerOptions:
    #: "json", "text", "bytes", or a model type (a Pydantic model, a msgspec Struct, a dataclass, a TypedDict).
    body: Body | type[Any] = "bytes"
    max_attempts: int = 3
    on_failure: Destination | None = None
    batch: bool = False
    progress_store: CheckpointStore | None = None
    backoff_base: float = 0.05
    backoff_max: float = 2.0
    #: Stop retrying (and report the record as failed) when less than this is left of the invocation.
    time_margin_ms: int = 1000
    #: The event source mapping has FunctionResponseTypes=ReportBatchItemFailures. Without it Lambda
    #: ignores `batchItemFailures` and counts the batch as a success: set False there, and a failure
    #: raises `BatchFailedError` instead, so Lambda retries the batch.
    report_batch_item_failures: bool = True
    clock: Clock = SYSTEM_CLOCK
    #: A `streamkit.metrics.Metrics` (flushed at the end of every invocation), or None.
    metrics: Any = None

    def __post_init__(self) -> None:
        if self.body not in ("json", "text", "bytes"):
            from streamkit.bodies import body_decoder

            body_decoder(self.body)  # a model type, its library imported now (or one line naming the extra)
        if not isinstance(self.max_attempts, int) or isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be a whole number >= 1, got {self.max_attempts!r}")
        # Checked here as `streamkit.retry.Backoff` would, without importing it: a handler that never
        # retries never loads the retry engine (cold start).
        base, maximum = _number("backoff_base", self.backoff_base), _number("backoff_max", self.backoff_max)
        if maximum < base:
            raise ConfigurationError(f"backoff needs 0 <= base <= maximum, got base={base}, maximum={maximum}")

    @property
    def typed(self) -> bool:
        """The body is a model: validated before the function is called."""
        return not isinstance(self.body, str)

    def policy(self, context: Any) -> RetryPolicy:
        """A failing record is retried in-function up to `max_attempts`, and no attempt starts within
        `time_margin_ms` of the invocation's end; every error counts (a handler's own exceptions carry
        no `retryable`), except one that cannot be decoded. Imports the retry engine: call on a failure."""
        from streamkit.retry import RetryPolicy

        return RetryPolicy(base=self.backoff_base, maximum=self.backoff_max, max_attempts=self.max_attempts,
                           max_elapsed=max(0.0, (_remaining_ms(context) - self.time_margin_ms) / 1000),
                           retryable=_worth_another_attempt)


def _worth_another_attempt(exc: BaseException) -> bool:
    return isinstance(exc, Exception) and not isinstance(exc, BodyDecodeError)


def _number(name: str, value: object) -> float:
    import math

    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value < 0:
        raise ConfigurationError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return float(value)


def _remaining_ms(context: Any) -> float:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return float(getter()) if getter is not None else float("inf")


class _Progress:
    """Sub-record progress per shard, in a CheckpointStore (namespace: the event source ARN)."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store

    @staticmethod
    def _ns(record: StreamRecord) -> str:
        return f"lambda-progress/{record.event_source_arn or 'unknown'}"

    def done_through(self, record: StreamRecord) -> Checkpoint | None:
        lease = self.store.get_lease(self._ns(record), record.shard_id)
        return None if lease is None or lease.checkpoint.is_sentinel else lease.checkpoint

    def save(self, record: StreamRecord) -> None:
        """Record that `record` (and everything before it in its shard) succeeded."""
        from streamkit.checkpoints.base import write_position
        from streamkit.checkpoints.model import Checkpoint

        cp = Checkpoint(record.sequence_number, record.sub_sequence_number)
        if write_position(self.store, self._ns(record), record.shard_id, cp, attempts=5) is None:
            log.warning("could not save progress for %s after 5 attempts", record.shard_id)


class _Tally:
    """What one invocation did with its records, for the metrics."""

    __slots__ = ("dead", "failed", "invalid", "processed", "retried")

    def __init__(self) -> None:
        self.processed = self.failed = self.dead = self.retried = self.invalid = 0


def process_event(event: Mapping[str, Any], context: Any, func: Callable[[Any], Any],
                  options: HandlerOptions) -> BatchResponse:
    """The wrapper's logic as a plain function (the decorator is a thin layer over it)."""
    broken: dict[int, str] = {}
    records = parse_event(event, body=options.body, broken=broken)
    tally = _Tally()
    try:
        from streamkit import tracing

        if tracing.enabled():  # one span for the invocation, linked to each record's trace context
            with tracing.batch_span("kinesis.lambda_handler", tracing.traceparents_of_event(event)):
                return _process_event(records, context, func, options, broken, tally)
        return _process_event(records, context, func, options, broken, tally)
    finally:
        if options.metrics is not None and options.metrics.enabled and records:
            _publish(options, records, tally)


def _process_event(records: list[StreamRecord], context: Any, func: Callable[[Any], Any], options: HandlerOptions,
                   broken: dict[int, str], tally: _Tally) -> BatchResponse:
    progress = _Progress(options.progress_store) if options.progress_store is not None else None
    if options.batch:
        return _process_batch(records, context, func, options, tally)
    if progress is None and not broken:
        # The common path: no progress store. Records that succeed cost one call in a try block.
        for i, record in enumerate(records):
            try:
                func(record)
            except Exception as exc:
                tally.processed = i
                return _process_from(records, i, context, func, options, progress, exc, broken, tally)
        tally.processed = len(records)
        return {"batchItemFailures": []}
    return _process_from(records, 0, context, func, options, progress, None, broken, tally)


def _publish(options: HandlerOptions, records: list[StreamRecord], tally: _Tally) -> None:
    """The invocation's figures, flushed now: a Lambda container may be frozen until the next event."""
    from streamkit.transport import stream_name_of

    arn = records[0].event_source_arn or ""
    scope = options.metrics.scope(stream_name_of(arn) if arn else "", "ProcessRecords")
    shard = records[0].shard_id
    scope.count("RecordsProcessed", tally.processed, shard=shard)
    scope.count("RecordsFailed", tally.failed, shard=shard)
    scope.count("RecordsDeadLettered", tally.dead, shard=shard)
    scope.count("RecordsInvalid", tally.invalid, shard=shard)
    scope.count("RecordsRetried", tally.retried, shard=shard)
    arrival = records[-1].approximate_arrival_timestamp
    if arrival is not None:
        scope.gauge("IteratorAgeMilliseconds", max(0.0, (options.clock.time() - arrival) * 1000), shard=shard,
                    unit="Milliseconds")
    scope.flush()


def _process_from(records: list[StreamRecord], start: int, context: Any, func: Callable[[Any], Any],
                  options: HandlerOptions, progress: _Progress | None,
                  first_error: BaseException | None, broken: dict[int, str], tally: _Tally) -> BatchResponse:
    """The general loop from `records[start]`; `first_error`: its first attempt already failed so."""
    skip_through: dict[str, Checkpoint | None] = {}
    prev: StreamRecord | None = records[start - 1] if start else None
    for record in records[start:]:
        if progress is not None and record.sub_sequence_number is not None:
            if record.shard_id not in skip_through:
                skip_through[record.shard_id] = progress.done_through(record)
            done = skip_through[record.shard_id]
            if done is not None and done.sequence_number == record.sequence_number and \
                    (done.sub_sequence_number or 0) >= record.sub_sequence_number:
                prev = record
                continue  # delivered again by Lambda after a failure later in this aggregate
        reason = broken.get(id(record))
        if reason is not None:
            error: BaseException | None = BodyDecodeError(reason)
            attempts = 1
        else:
            error, attempts = _attempt(record, context, func, options, first_error)
        first_error = None
        tally.retried += attempts - 1
        if error is None:
            tally.processed += 1
            prev = record
            continue
        if isinstance(error, BodyDecodeError):
            tally.invalid += 1
        if options.on_failure is not None:
            options.on_failure.send([_dead_letter(record, error, attempts)])
            tally.dead += 1
            log.error("record %s/%s of %s failed %d time(s) and was sent to %r: %s", record.sequence_number,
                      record.sub_sequence_number, record.shard_id, attempts, options.on_failure, _describe(error))
            prev = record
            continue
        # Report it: Lambda checkpoints before this sequence number and redelivers from it.
        if progress is not None and prev is not None and prev.sequence_number == record.sequence_number:
            progress.save(prev)  # the sub-records before it in this aggregate are done
        tally.failed += 1
        log.error("record %s/%s of %s failed %d time(s); reporting it as the batch's first failure: %s",
                  record.sequence_number, record.sub_sequence_number, record.shard_id, attempts, _describe(error))
        return _report(options, record, error)
    return {"batchItemFailures": []}


def _report(options: HandlerOptions, record: StreamRecord, error: BaseException) -> BatchResponse:
    """Lambda resumes at `record`: a partial batch response, or (without ReportBatchItemFailures) a failed invocation."""
    if not options.report_batch_item_failures:
        raise BatchFailedError(f"record {record.sequence_number} of {record.shard_id} failed ({_describe(error)}); "
                               "failing the invocation so Lambda retries the batch "
                               "(report_batch_item_failures=False)") from error
    return {"batchItemFailures": [{"itemIdentifier": record.sequence_number}]}


def _dead_letter(record: StreamRecord, error: BaseException, attempts: int) -> Any:
    from streamkit.destinations import DeadLetter

    return DeadLetter.of(record, _describe(error), attempts, error)


def _as_destination(spec: Any) -> Destination:
    from streamkit.destinations import as_destination

    return as_destination(spec)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _attempt(record: StreamRecord, context: Any, func: Callable[[Any], Any], options: HandlerOptions,
             first_error: BaseException | None = None) -> tuple[BaseException | None, int]:
    """Call until success or out of attempts or time; `first_error`: attempt 1 already ran and raised it."""
    if first_error is None:
        try:
            func(record)
            return None, 1
        except Exception as exc:
            first_error = exc
    what = f"record {record.sequence_number}/{record.sub_sequence_number}"
    return _retried(lambda: func(record), first_error, context, options, what)


def _retried(call: Callable[[], Any], first_error: BaseException, context: Any, options: HandlerOptions,
             what: str) -> tuple[BaseException | None, int]:
    """`call` again after a first attempt that raised `first_error`, by the shared retry policy (loaded
    now, on the first failure): (None, attempts) once it succeeds, else (the last error, attempts)."""
    if options.max_attempts == 1:
        return first_error, 1
    from streamkit.retry import call_with_retry

    attempts = 0
    pending: BaseException | None = first_error

    def attempt() -> None:
        nonlocal attempts, pending
        attempts += 1
        if pending is not None:  # attempt 1 already ran: let the policy decide about its error
            error, pending = pending, None
            raise error
        call()

    def say(number: int, error: BaseException, delay: float) -> None:
        log.warning("%s failed (attempt %d of %d): %s; retrying in %.3f s", what, number, options.max_attempts,
                    _describe(error), delay)

    try:
        call_with_retry(attempt, options.policy(context), clock=options.clock, on_retry=say)
    except Exception as exc:
        return exc, attempts
    return None, attempts


def _process_batch(records: list[StreamRecord], context: Any, func: Callable[[Any], Any], options: HandlerOptions,
                   tally: _Tally) -> BatchResponse:
    if options.typed:
        given = len(records)
        records, invalid = _validate_batch(records, options, tally)
        if invalid is not None:  # no destination: the records before it go to the function, then it is reported
            response = _call_batch(records, context, func, options, tally)
            if response["batchItemFailures"]:
                return response
            tally.failed = given - len(records)  # the invalid record and every one after it: not processed
            return _report(options, invalid[0], invalid[1])
    return _call_batch(records, context, func, options, tally)


def _call_batch(records: list[StreamRecord], context: Any, func: Callable[[Any], Any], options: HandlerOptions,
                tally: _Tally) -> BatchResponse:
    if not records:
        return {"batchItemFailures": []}
    try:
        func(records)
        error: BaseException | None = None
        attempt = 1
    except Exception as exc:
        error, attempt = _retried(lambda: func(records), exc, context, options, f"a batch of {len(records)} records")
        tally.retried += len(records) * (attempt - 1)
    if error is None:
        tally.processed = len(records)
        return {"batchItemFailures": []}
    if options.on_failure is not None:
        from streamkit.destinations import DeadLetter

        options.on_failure.send([DeadLetter(record=r, error=_describe(error), attempts=attempt,
                                            stream_arn=r.event_source_arn) for r in records])
        tally.dead = len(records)
        return {"batchItemFailures": []}
    tally.failed = len(records)
    return _report(options, records[0], error)


def _validate_batch(records: list[StreamRecord], options: HandlerOptions,
                    tally: _Tally) -> tuple[list[StreamRecord], tuple[StreamRecord, BodyDecodeError] | None]:
    """`batch=True` with a model: each body validated first. Those that do not validate go to `on_failure`
    at once; without one, the batch ends before the first (returned with its error, to be reported)."""
    valid: list[StreamRecord] = []
    for record in records:
        try:
            record.body  # noqa: B018  # decoded and validated now, cached on the record
        except BodyDecodeError as exc:
            tally.invalid += 1
            if options.on_failure is None:
                log.error("record %s/%s of %s does not validate; reporting it as the batch's first failure: %s",
                          record.sequence_number, record.sub_sequence_number, record.shard_id, _describe(exc))
                return valid, (record, exc)
            options.on_failure.send([_dead_letter(record, exc, 1)])
            tally.dead += 1
            continue
        valid.append(record)
    return valid, None


def _validated(call: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`call`, made only once the record's body has been validated into its model (which raises if it does not)."""
    def validated(record: StreamRecord) -> Any:
        record.body  # noqa: B018  # decodes and validates now, once (cached on the record)
        return call(record)
    return validated


def _handler_metrics(metrics: Any) -> Any:
    """A recorder for the wrapper: a spec makes one without a background thread (flushed per invocation)."""
    if metrics is None or not isinstance(metrics, str):
        return metrics
    from streamkit.metrics import Metrics

    return Metrics(metrics, background=False)


@overload
def kinesis_handler(func: Callable[[StreamRecord], Any], /) -> Callable[[Mapping[str, Any], Any], BatchResponse]: ...


@overload
def kinesis_handler(*, body: Body | type[Any] = "bytes", max_attempts: int = 3, on_failure: Any = None, batch: bool = False,
                    progress_store: CheckpointStore | None = None, backoff_base: float = 0.05,
                    backoff_max: float = 2.0, time_margin_ms: int = 1000, report_batch_item_failures: bool = True,
                    metrics: Any = None,
                    ) -> Callable[[Callable[[Any], Any]], Callable[[Mapping[str, Any], Any], BatchResponse]]: ...


def kinesis_handler(func: Callable[[Any], Any] | None = None, /, *, body: Body | type[Any] = "bytes", max_attempts: int = 3,
                    on_failure: Any = None, batch: bool = False, progress_store: CheckpointStore | None = None,
                    backoff_base: float = 0.05, backoff_max: float = 2.0, time_margin_ms: int = 1000,
                    report_batch_item_failures: bool = True, metrics: Any = None) -> Any:
    """Decorator: ``@kinesis_handler`` or ``@kinesis_handler(body="json", on_failure="sqs:URL")``.

    `body`: ``"json"``, ``"text"``, ``"bytes"``, or a model type (`streamkit.bodies`): ``record.body`` is then
    the validated instance, and a record that does not validate goes to `on_failure` at once.
    `on_failure`: a destination (``"sqs:QUEUE_URL"``, ``"file:PATH"``, a callable taking a list of
    `DeadLetter`, or a Destination). Its AWS client is made once per container, on first use.
    `metrics`: a `streamkit.metrics.Metrics` or a spec ("emf": EMF to stdout, metrics at no API cost
    in Lambda; "cloudwatch", "none"); flushed at the end of every invocation.
    """
    options = HandlerOptions(body=body, max_attempts=max_attempts,
                             on_failure=None if on_failure is None else _as_destination(on_failure), batch=batch,
                             progress_store=progress_store, backoff_base=backoff_base, backoff_max=backoff_max,
                             time_margin_ms=time_margin_ms, report_batch_item_failures=report_batch_item_failures,
                             metrics=_handler_metrics(metrics))
    if options.typed and options.on_failure is None:
        from streamkit.bodies import body_name

        log.warning("body=%s without on_failure: a record that does not validate is reported in batchItemFailures, "
                    "and Lambda retries it until it expires, blocking its shard; give on_failure a destination",
                    body_name(options.body))

    def wrap(f: Callable[[Any], Any]) -> Callable[[Mapping[str, Any], Any], BatchResponse]:
        # An `async def` handler is awaited on streamkit.aio's loop, kept across invocations; the
        # Lambda handler itself stays a plain function, as Lambda's Python runtime calls it.
        call = blocking(f)
        if options.typed and not options.batch:
            call = _validated(call)

        @functools.wraps(f)
        def handler(event: Mapping[str, Any], context: Any = None) -> BatchResponse:
            return process_event(event, context, call, options)

        handler.streamkit_options = options  # type: ignore[attr-defined]
        return handler

    return wrap(func) if func is not None else wrap

