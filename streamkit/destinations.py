"""Dead-letter destinations: where records that could not be processed go, payload included.

A destination has ``send(letters)`` and ``send_json(documents)``; ``parse_destination`` builds one from a
spec: ``file:PATH``, ``sqs:QUEUE_URL``, ``sns:TOPIC_ARN``, ``s3:BUCKET[/PREFIX]``, or the ARN a template
gives (``arn:aws:sqs:REGION:ACCOUNT:QUEUE``, ``arn:aws:sns:...``, ``arn:aws:s3:::BUCKET``); a plain
callable taking the list of letters works too.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.errors import AwsServiceError, BodyValidationError, ConfigurationError, StreamkitError
from streamkit.files import private_file
from streamkit.lazy_client import LazyClient, boto_s3, boto_sns, boto_sqs
from streamkit.limits import SQS_BATCH_ENTRIES, SQS_MESSAGE_BYTES
from streamkit.records import StreamRecord
from streamkit.retry import RetryPolicy, call_with_retry

__all__ = [
    "DESTINATION_HELP",
    "CallableDestination",
    "DeadLetter",
    "Destination",
    "JsonLinesDestination",
    "S3Destination",
    "SnsDestination",
    "SqsDestination",
    "as_destination",
    "check_destination",
    "parse_destination",
    "read_dead_letters",
    "split_destination",
    "sqs_batches",
    "validation_errors_of",
]


@dataclass(frozen=True, kw_only=True)
class DeadLetter:
    """A record that failed, with its payload and everything needed to replay or investigate it."""

    record: StreamRecord
    error: str
    attempts: int
    stream_arn: str | None = None
    failed_at: float = field(default_factory=time.time)
    #: (field, message) pairs of a body that did not validate into its model (`BodyValidationError`).
    validation_errors: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, record: StreamRecord, error: str, attempts: int, cause: BaseException | None = None) -> DeadLetter:
        """A letter for `record`, carrying the validation errors of `cause` when it is a `BodyValidationError`."""
        return cls(record=record, error=error, attempts=attempts, stream_arn=record.event_source_arn,
                   validation_errors=validation_errors_of(cause))

    def to_json(self) -> dict[str, Any]:
        out = self.record.to_json()
        out.update(error=self.error, attempts=self.attempts, failed_at=self.failed_at)
        if self.validation_errors:
            out["validation_errors"] = [{"field": f, "message": m} for f, m in self.validation_errors]
        if self.stream_arn and not out.get("event_source_arn"):
            out["event_source_arn"] = self.stream_arn
        return out


def validation_errors_of(cause: BaseException | None) -> tuple[tuple[str, str], ...]:
    """The (field, message) pairs of a body that failed validation; () for any other error."""
    return cause.errors if isinstance(cause, BodyValidationError) else ()


@runtime_checkable
class Destination(Protocol):
    def send(self, letters: Sequence[DeadLetter]) -> None: ...

    def send_json(self, documents: Sequence[dict[str, Any]]) -> None:
        """Send already-shaped JSON documents (e.g. the event source mapping's OnFailure records)."""
        ...


class CallableDestination:
    def __init__(self, func: Callable[[Sequence[Any]], Any]) -> None:
        self.func = func

    def send(self, letters: Sequence[DeadLetter]) -> None:
        self.func(letters)

    def send_json(self, documents: Sequence[dict[str, Any]]) -> None:
        self.func(documents)


class JsonLinesDestination:
    """Appends one JSON object per letter to a file, flushed and fsynced before `send` returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = private_file(path, what="dead-letter file")  # 0600: letters hold payloads
        self._lock = threading.Lock()

    def send(self, letters: Sequence[DeadLetter]) -> None:
        self.send_json([letter.to_json() for letter in letters])

    def send_json(self, documents: Sequence[dict[str, Any]]) -> None:
        if not documents:
            return
        payload = b"".join(orjson.dumps(doc) + b"\n" for doc in documents)
        with self._lock, self.path.open("ab") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())

    def __repr__(self) -> str:
        return f"JsonLinesDestination({str(self.path)!r})"


class SqsDestination:
    """Sends letters to an SQS queue with SendMessageBatch (10 messages and 256 KiB per call).

    Entries SQS refuses, and calls that fail with a retryable error, are retried by the retry engine
    (`RETRY`); what still fails raises, so the caller does not move past the records.
    """

    RETRY = RetryPolicy(base=0.1, maximum=2.0, max_attempts=5)

    def __init__(self, queue_url: str, *, client: Any = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self._queue = queue_url  # a URL, or an ARN resolved to the URL on first use
        self._sqs: LazyClient[Any] = LazyClient("sqs", client, boto_sqs)
        self._clock = clock

    @property
    def sqs(self) -> Any:
        return self._sqs.get()

    @property
    def queue_url(self) -> str:
        if self._queue.startswith("arn:"):
            _arn, _aws, _service, _region, account, name = self._queue.split(":", 5)
            self._queue = self.sqs.queue_url(name, account or None)
        return self._queue

    def send(self, letters: Sequence[DeadLetter]) -> None:
        self.send_json([letter.to_json() for letter in letters])

    def send_json(self, documents: Sequence[dict[str, Any]]) -> None:
        bodies = [orjson.dumps(doc).decode() for doc in documents]
        for body in bodies:
            if len(body.encode()) > SQS_MESSAGE_BYTES:
                raise StreamkitError(f"dead letter of {len(body)} bytes exceeds SQS's 256 KiB message limit")
        for batch in sqs_batches(bodies):
            self._send_batch(batch)

    def _send_batch(self, bodies: list[str]) -> None:
        pending = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]

        def attempt() -> None:
            nonlocal pending
            failed = {f["Id"] for f in self.sqs.send_message_batch(self.queue_url, pending)}
            pending = [e for e in pending if e["Id"] in failed]
            if pending:
                raise AwsServiceError(f"SQS refused {len(pending)} dead letter(s) for {self.queue_url}",
                                      code="BatchEntryFailed", retryable=True)

        call_with_retry(attempt, self.RETRY, clock=self._clock)

    def __repr__(self) -> str:
        return f"SqsDestination({self.queue_url!r})"



class SnsDestination:
    """Publishes one SNS message per letter (or OnFailure record): a queue subscribed to the topic holds them
    for `replay`. Retryable failures are retried (`SqsDestination.RETRY`); what still fails raises."""

    def __init__(self, topic_arn: str, *, client: Any = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.topic_arn = topic_arn
        self._sns: LazyClient[Any] = LazyClient("sns", client, boto_sns)
        self._clock = clock

    def send(self, letters: Sequence[DeadLetter]) -> None:
        self.send_json([letter.to_json() for letter in letters])

    def send_json(self, documents: Sequence[dict[str, Any]]) -> None:
        bodies = [orjson.dumps(doc).decode() for doc in documents]
        for body in bodies:
            if len(body.encode()) > SQS_MESSAGE_BYTES:  # SNS's message limit is SQS's, 256 KiB
                raise StreamkitError(f"dead letter of {len(body)} bytes exceeds SNS's 256 KiB message limit")
        sns = self._sns.get()
        for body in bodies:
            self._publish(sns, body)

    def _publish(self, sns: Any, body: str) -> None:
        call_with_retry(lambda: sns.publish(self.topic_arn, body), SqsDestination.RETRY, clock=self._clock)

    def __repr__(self) -> str:
        return f"SnsDestination({self.topic_arn!r})"



class S3Destination:
    """Writes one S3 object per letter (payload included) under ``PREFIX``; `put` writes a document at a
    key the caller chose (the event source mapping's OnFailure objects, keyed as AWS keys them)."""

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._s3: LazyClient[Any] = LazyClient("s3", client, boto_s3)
        self._clock = clock

    def send(self, letters: Sequence[DeadLetter]) -> None:
        self.send_json([letter.to_json() for letter in letters])

    def send_json(self, documents: Sequence[dict[str, Any]]) -> None:
        for doc in documents:
            day = time.strftime("%Y/%m/%d", time.gmtime(self._clock.time()))
            self.put(f"streamkit/{day}/{uuid.uuid4()}.json", doc)

    def put(self, key: str, document: dict[str, Any]) -> None:
        """Write `document` at PREFIX + `key` (retryable failures retried)."""
        s3, body = self._s3.get(), orjson.dumps(document)
        call_with_retry(lambda: s3.put_object(self.bucket, self.prefix + key, body), SqsDestination.RETRY,
                        clock=self._clock)

    def __repr__(self) -> str:
        return f"S3Destination({self.bucket!r}, {self.prefix!r})"



def sqs_batches(bodies: Sequence[str], *, max_entries: int = SQS_BATCH_ENTRIES,
                max_bytes: int = SQS_MESSAGE_BYTES) -> Iterator[list[str]]:
    """`bodies` in order, in SendMessageBatch calls: at most `max_entries` and `max_bytes` (UTF-8) each."""
    batch: list[str] = []
    size = 0
    for body in bodies:
        n = len(body.encode())
        if batch and (len(batch) == max_entries or size + n > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += n
    if batch:
        yield batch


DESTINATION_HELP = "file:PATH or sqs:QUEUE_URL (or sns:TOPIC_ARN, s3:BUCKET[/PREFIX], an SQS, SNS or S3 ARN)"


def split_destination(spec: str) -> tuple[str, str]:
    """``(kind, rest)`` for a destination string (kind file, sqs, sns or s3; an ARN gives its service and the
    queue ARN, topic ARN or bucket); checks it, creates nothing."""
    if spec.startswith("arn:"):
        parts = spec.split(":", 5)
        if len(parts) == 6 and parts[2] in ("sqs", "sns") and parts[5]:
            return parts[2], spec
        if len(parts) == 6 and parts[2] == "s3" and parts[5] and not parts[3] and not parts[4]:
            return "s3", parts[5]
        raise ConfigurationError(f"bad destination {spec!r}: an ARN of an SQS queue, SNS topic or S3 bucket")
    kind, sep, rest = spec.partition(":")
    if not (sep and kind in ("file", "sqs", "sns", "s3") and rest):
        raise ConfigurationError(f"bad destination {spec!r}: use {DESTINATION_HELP}")
    if kind == "sns" and not rest.startswith("arn:"):
        raise ConfigurationError(f"bad destination {spec!r}: sns: takes a topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
    return kind, rest


def parse_destination(spec: str, *, sqs_client: Any = None, sns_client: Any = None, s3_client: Any = None) -> Destination:
    """A destination for `spec` (see `DESTINATION_HELP`); clients are made on first use when not given."""
    kind, rest = split_destination(spec)
    if kind == "file":
        return JsonLinesDestination(rest)
    if kind == "sns":
        return SnsDestination(rest, client=sns_client)
    if kind == "s3":
        bucket, _sep, prefix = rest.partition("/")
        return S3Destination(bucket, prefix, client=s3_client)
    return SqsDestination(rest, client=sqs_client)


def check_destination(value: Any) -> None:
    """Raise `ConfigurationError` unless `as_destination(value)` would accept it; creates nothing."""
    if isinstance(value, str):
        split_destination(value)
    elif not (isinstance(value, Destination) or callable(value)):
        raise ConfigurationError(f"not a destination: {value!r} (use {DESTINATION_HELP}, a callable or a Destination)")


def as_destination(value: Any) -> Destination:
    if isinstance(value, str):
        return parse_destination(value)
    if isinstance(value, Destination):
        return value
    if callable(value):
        return CallableDestination(value)
    raise ConfigurationError(f"not a destination: {value!r} (use {DESTINATION_HELP}, a callable or a Destination)")


def read_dead_letters(path: str | Path) -> Iterator[dict[str, Any]]:
    """The letters in a JSON-lines dead-letter file; a line that is not JSON raises with its number."""
    with Path(path).open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise StreamkitError(f"{path}:{number}: not a JSON dead letter ({exc})") from None
