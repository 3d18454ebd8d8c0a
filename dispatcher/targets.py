"""Where the dispatcher sends records: a Lambda function (Invoke), an SQS queue, or local workers.

A target takes the records of one lane, in order, and returns those it could not deliver (it may
retry internally). Targets never raise for a delivery failure: the dispatcher decides what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import orjson

from streamkit.aio import blocking
from streamkit.destinations import sqs_batches, validation_errors_of
from streamkit.errors import BodyDecodeError, StreamkitError
from streamkit.lazy_client import LazyClient, boto_lambda, boto_sqs
from streamkit.limits import LAMBDA_ASYNC_PAYLOAD, LAMBDA_SYNC_PAYLOAD, SQS_MESSAGE_BYTES
from streamkit.records import StreamRecord

__all__ = ["InvalidBody", "LambdaTarget", "LocalTarget", "SqsTarget", "Target", "record_payload"]


def record_payload(r: StreamRecord) -> dict[str, Any]:
    """A record as the workers receive it: StreamRecord.to_json() (data base64-encoded)."""
    return r.to_json()


class InvalidBody(str):
    """A delivery failure that retrying cannot fix: the record's body did not decode or validate into the
    target's model. The dispatcher sends it on at once (no retries), with the validation `errors`."""

    errors: tuple[tuple[str, str], ...]

    def __new__(cls, error: BodyDecodeError) -> InvalidBody:
        text = super().__new__(cls, f"{type(error).__name__}: {error}")
        text.errors = validation_errors_of(error)
        return text


class Target(Protocol):
    #: Lanes the target can run at once (the dispatcher makes no more).
    capacity: int
    #: True when what one call delivers, and what calls made one after another deliver, is handled in
    #: that order (the `per-key` mode needs it): a call returns only once its records are handled, or
    #: the target itself keeps order per partition key.
    preserves_order: bool

    def deliver(self, lane: int, records: Sequence[StreamRecord]) -> list[tuple[StreamRecord, str]]:
        """Deliver `records` (one lane, in order); return (record, error) for each that failed."""
        ...

    def close(self) -> None: ...


class LocalTarget:
    """Runs `worker(record)` in a thread pool: for local runs, tests and benchmarks.

    `worker` may be ``async def``: each lane's records are then awaited one after another on
    `streamkit.aio`'s event loop, at most `workers` lanes at once (order per key kept in ``per-key`` mode).
    `body`: how the worker's ``record.body`` is decoded (None: as the dispatcher's records are); a model
    type (`streamkit.bodies`) is validated before the worker is called, and a record that does not
    validate is an `InvalidBody` failure, not retried.
    """

    preserves_order = True  # deliver() runs the worker on each record in turn and returns when done

    def __init__(self, worker: Callable[[StreamRecord], Any], *, workers: int = 8, body: Any = None) -> None:
        self.worker = blocking(worker)
        self.capacity = workers
        self.body = body
        if body is None:
            self._decode: Callable[[bytes], Any] | None = None
            self._validate = False
        else:
            from streamkit.bodies import body_decoder, is_model

            self._decode = body_decoder(body)  # a bad body, or a model whose library is missing: raises here
            self._validate = is_model(body)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="dispatch-worker")

    def deliver(self, lane: int, records: Sequence[StreamRecord]) -> list[tuple[StreamRecord, str]]:
        failed: list[tuple[StreamRecord, str]] = []
        decode = self._decode
        for r in records:
            given = r if decode is None else r._with_decoder(decode)
            if self._validate:
                try:
                    given.body  # noqa: B018  # validated before the worker sees it
                except BodyDecodeError as exc:
                    failed.append((r, InvalidBody(exc)))
                    continue
            try:
                self.worker(given)
            except Exception as exc:
                failed.append((r, f"{type(exc).__name__}: {exc}"))
        return failed

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        return self._pool.submit(fn)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class LambdaTarget:
    """Invokes a worker function with ``{"records": [...]}``, chunked under the payload limit.

    Asynchronous by default (InvocationType "Event", 256 KiB payloads): the fastest hand-off, but
    Lambda may run the invocations in any order and at once, so it suits only the `unordered` mode.
    ``synchronous=True`` (RequestResponse, 6 MB payloads) waits for the function to finish each chunk
    and reports a function error as a failed delivery: the `per-key` mode needs that.
    """

    def __init__(self, function_name: str, *, client: Any = None, max_payload: int | None = None,
                 concurrency: int = 16, synchronous: bool = False) -> None:
        self.function_name = function_name
        self.synchronous = synchronous
        self.preserves_order = synchronous
        self.max_payload = max_payload or (LAMBDA_SYNC_PAYLOAD if synchronous else LAMBDA_ASYNC_PAYLOAD)
        self.capacity = concurrency
        self._lambda: LazyClient[Any] = LazyClient("lambda", client, boto_lambda)

    def _chunks(self, records: Sequence[StreamRecord]) -> list[tuple[list[StreamRecord], bytes]]:
        out: list[tuple[list[StreamRecord], bytes]] = []
        chunk: list[StreamRecord] = []
        docs: list[bytes] = []
        size = 2
        for r in records:
            doc = orjson.dumps(record_payload(r))
            if chunk and size + len(doc) + 1 > self.max_payload:
                out.append((chunk, b"[" + b",".join(docs) + b"]"))
                chunk, docs, size = [], [], 2
            chunk.append(r)
            docs.append(doc)
            size += len(doc) + 1
        if chunk:
            out.append((chunk, b"[" + b",".join(docs) + b"]"))
        return out

    def deliver(self, lane: int, records: Sequence[StreamRecord]) -> list[tuple[StreamRecord, str]]:
        failed: list[tuple[StreamRecord, str]] = []
        for chunk, payload in self._chunks(records):
            if failed and self.synchronous:
                # In order: after a failed chunk, later ones wait for the retry (they may share keys).
                failed.extend((r, "not sent: an earlier chunk of its lane failed") for r in chunk)
                continue
            if len(payload) > self.max_payload:
                failed.extend((r, f"record larger than the {self.max_payload}-byte invoke payload limit") for r in chunk)
                continue
            error = self._invoke(b'{"records":' + payload + b"}")
            if error is not None:
                failed.extend((r, error) for r in chunk)
        return failed

    def _invoke(self, payload: bytes) -> str | None:
        """None once the function has the chunk (async) or has handled it (sync); else why not."""
        try:
            out = self._lambda.get().invoke(self.function_name, payload, synchronous=self.synchronous)
        except StreamkitError as exc:  # translated by the adapter: the dispatcher retries or dead-letters
            return str(exc)
        if out.status != (200 if self.synchronous else 202):
            return f"Invoke answered {out.status}"
        if out.function_error:
            return f"function error ({out.function_error}): {out.payload[:500].decode('utf-8', 'replace')}"
        return None

    def close(self) -> None:
        return None


class SqsTarget:
    """SendMessageBatch (10 messages, 256 KiB); on a FIFO queue MessageGroupId = the partition key."""

    def __init__(self, queue_url: str, *, client: Any = None, concurrency: int = 16) -> None:
        self.queue_url = queue_url
        self.fifo = queue_url.endswith(".fifo")
        self.preserves_order = self.fifo  # a FIFO queue keeps each MessageGroupId (partition key) in order
        self.capacity = concurrency
        self._sqs: LazyClient[Any] = LazyClient("sqs", client, boto_sqs)

    def deliver(self, lane: int, records: Sequence[StreamRecord]) -> list[tuple[StreamRecord, str]]:
        failed: list[tuple[StreamRecord, str]] = []
        sendable: list[tuple[StreamRecord, str]] = []
        for r in records:
            body = orjson.dumps(record_payload(r)).decode()
            if len(body.encode()) > SQS_MESSAGE_BYTES:
                failed.append((r, "record larger than SQS's 256 KiB message limit"))
            else:
                sendable.append((r, body))
        by_body = iter(sendable)
        for bodies in sqs_batches([b for _r, b in sendable]):
            failed += self._send([next(by_body) for _ in bodies])
        return failed

    def _send(self, batch: list[tuple[StreamRecord, str]]) -> list[tuple[StreamRecord, str]]:
        entries = []
        for i, (r, body) in enumerate(batch):
            e: dict[str, Any] = {"Id": str(i), "MessageBody": body}
            if self.fifo:
                e["MessageGroupId"] = r.partition_key or "keyless"
                e["MessageDeduplicationId"] = f"{r.sequence_number}-{r.sub_sequence_number or 0}"[-128:]
            entries.append(e)
        try:
            refused = self._sqs.get().send_message_batch(self.queue_url, entries)
        except StreamkitError as exc:
            return [(r, str(exc)) for r, _b in batch]
        return [(batch[int(f["Id"])][0], f"{f.get('Code')}: {f.get('Message', '')}") for f in refused]

    def close(self) -> None:
        return None


