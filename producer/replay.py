"""Re-publish dead-lettered records: streamkit's letters carry the payload; Lambda's OnFailure records
carry only a sequence range, so their records are read back from the stream while it retains them."""

from __future__ import annotations

import base64
import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from streamkit.aggregation import decode
from streamkit.destinations import read_dead_letters
from streamkit.errors import ConfigurationError, StreamkitError
from streamkit.lazy_client import LazyClient, boto_s3, boto_sqs
from streamkit.transport import IteratorStart, as_kinesis, stream_name_of

__all__ = ["iter_letters", "records_of", "replay"]


def iter_letters(source: str, *, sqs_client: Any = None, s3_client: Any = None,
                 delete: bool = False) -> Iterator[dict[str, Any]]:
    """The letters of `source`: ``file:PATH``, ``sqs:QUEUE_URL`` (also a queue subscribed to an SNS topic:
    each notification's message is the letter) or ``s3:BUCKET[/PREFIX]`` (one letter per object). With
    `delete`, a queue's message is deleted once the next letter is asked for (`replay` deletes only after
    the letter's records are acknowledged)."""
    for letter, done in _letters(source, sqs_client=sqs_client, s3_client=s3_client):
        yield letter
        if delete and done is not None:
            done()


Done = Callable[[], None]


def _letters(source: str, *, sqs_client: Any = None, s3_client: Any = None
             ) -> Iterator[tuple[dict[str, Any], Done | None]]:
    """Each letter of `source` with what deletes it from its queue (None for files and objects)."""
    kind, sep, rest = source.partition(":")
    if sep and kind == "file" and rest:
        path = Path(rest).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"--from {source}: no such file")
        for letter in read_dead_letters(path):
            yield letter, None
        return
    if sep and kind == "sqs" and rest:
        yield from _sqs_letters(source, rest, sqs_client)
        return
    if sep and kind == "s3" and rest:
        bucket, _sep, prefix = rest.partition("/")
        s3 = LazyClient("s3", s3_client, boto_s3).get()
        for key in s3.keys(bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""):
            yield _json_letter(s3.get_object(bucket, key), f"{source}: object {key}"), None
        return
    raise ConfigurationError(f"bad source {source!r}: use file:PATH, sqs:QUEUE_URL or s3:BUCKET[/PREFIX]")


def _sqs_letters(source: str, queue_url: str, sqs_client: Any) -> Iterator[tuple[dict[str, Any], Done]]:
    sqs = LazyClient("sqs", sqs_client, boto_sqs).get()
    seen: set[str] = set()
    while True:
        messages = sqs.receive_messages(queue_url)
        if not messages:
            return
        for m in messages:
            if m.get("MessageId") in seen:
                return  # back after its visibility timeout (not acknowledged yet, or failed): left for the next run
            seen.add(str(m.get("MessageId")))
            letter = _json_letter(m["Body"], f"{source}: message {m.get('MessageId')}")
            if letter.get("Type") == "Notification" and isinstance(letter.get("Message"), str):
                letter = _json_letter(letter["Message"], f"{source}: SNS message {letter.get('MessageId')}")
            yield letter, functools.partial(sqs.delete_message, queue_url, m["ReceiptHandle"])


def _json_letter(body: str | bytes, where: str) -> dict[str, Any]:
    try:
        letter = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise StreamkitError(f"{where} is not a JSON dead letter ({exc})") from None
    if not isinstance(letter, dict):
        raise StreamkitError(f"{where} is not a JSON dead letter (not an object)")
    return letter




Payload = tuple[bytes, str | None, str | None]


def records_of(letter: dict[str, Any], client: Any, source_stream: str | None = None) -> list[Payload]:
    """(data, partition key, explicit hash key) of the user records a dead letter stands for."""
    if "data" in letter:
        return [(base64.b64decode(letter["data"]), letter.get("partition_key"), letter.get("explicit_hash_key"))]
    payload = letter.get("payload")
    if isinstance(payload, str):  # AWS's S3 OnFailure object: the invocation's event as an escaped JSON string
        payload = _json_letter(payload, "the OnFailure object's payload")
    if isinstance(payload, dict) and isinstance(payload.get("Records"), list):
        # An OnFailure object from an S3 destination: the invocation's event, data included.
        out: list[Payload] = []
        for r in payload["Records"]:
            k = r["kinesis"]
            out.extend((u.data, u.partition_key, u.explicit_hash_key)
                       for u in decode(base64.b64decode(k["data"]), k.get("partitionKey") or ""))
        return out
    info = letter.get("KinesisBatchInfo")
    if info is None:
        raise StreamkitError("not a dead letter: neither a payload nor a KinesisBatchInfo range")
    stream = source_stream or stream_name_of(str(info["streamArn"]))
    transport = as_kinesis(client, stream=str(info["streamArn"]))  # a new client goes to the ARN's region
    it: str | None = transport.get_shard_iterator(stream, info["shardId"], IteratorStart(
        type="AT_SEQUENCE_NUMBER", sequence_number=info["startSequenceNumber"]))
    end = int(info["endSequenceNumber"])
    out = []
    while it:
        fetched = transport.get_records(it, 1000)
        for r in fetched.records:
            if int(r["SequenceNumber"]) > end:
                return out
            out.extend((u.data, u.partition_key, u.explicit_hash_key)
                       for u in decode(r["Data"], r.get("PartitionKey") or ""))
        if not fetched.records:
            break
        it = fetched.next_iterator
    return out


def replay(source: str, stream: str, *, client: Any, sqs_client: Any = None, s3_client: Any = None,
           source_stream: str | None = None, delete: bool = False, stop: threading.Event | None = None) -> dict[str, int]:
    """Re-publish every letter of `source` to `stream`; once `stop` is set (SIGTERM in the CLI), read no
    more letters, write what was read, and say so (``stopped``: 1). A rerun on a file replays it whole."""
    from producer.producer import Producer

    kind, _sep, rest = source.partition(":")
    if kind == "file" and not Path(rest).expanduser().is_file():
        raise ConfigurationError(f"--from {source}: no such file")  # before any connection is made
    letters = records = 0
    futures: list[Any] = []
    # A queue's message is deleted only once every record of its letter is acknowledged: one deleted on
    # receipt was lost if the run died before the write. A letter with a failed record stays in the queue.
    unacked: list[tuple[list[Any], Done]] = []
    with Producer(stream, client=client) as p:
        for letter, done in _letters(source, sqs_client=sqs_client, s3_client=s3_client):
            if stop is not None and stop.is_set():
                break
            letters += 1
            mine = []
            for data, key, ehk in records_of(letter, client, source_stream):
                if key is None:
                    raise StreamkitError("a dead letter without a partition key (from an AUTO stream) cannot be "
                                         "replayed to a stream that places records by key")
                mine.append(p.put(data, key, ehk))
                records += 1
            futures.extend(mine)
            if delete and done is not None:
                unacked.append((mine, done))
                unacked = _delete_acknowledged(unacked, wait=False)
    _delete_acknowledged(unacked, wait=True)
    failed = sum(1 for f in futures if f.exception() is not None)
    return {"letters": letters, "records": records, "failed": failed,
            "stopped": int(stop is not None and stop.is_set())}


def _delete_acknowledged(unacked: list[tuple[list[Any], Done]], *, wait: bool) -> list[tuple[list[Any], Done]]:
    """Delete the messages whose records are all acknowledged; return those still waiting (none with `wait`)."""
    waiting = []
    for futures, done in unacked:
        if not wait and not all(f.done() for f in futures):
            waiting.append((futures, done))
        elif all(f.exception() is None for f in futures):
            done()
    return waiting
