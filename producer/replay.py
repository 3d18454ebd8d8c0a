"""Re-publish dead-lettered records: streamkit's letters carry the payload; Lambda's OnFailure records
carry only a sequence range, so their records are read back from the stream while it retains them."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from streamkit.aggregation import decode
from streamkit.destinations import read_dead_letters
from streamkit.errors import ConfigurationError, StreamkitError
from streamkit.lazy_client import LazyClient
from streamkit.transport import IteratorStart, as_kinesis, stream_name_of

__all__ = ["iter_letters", "records_of", "replay"]


def iter_letters(source: str, *, sqs_client: Any = None, delete: bool = False) -> Iterator[dict[str, Any]]:
    kind, sep, rest = source.partition(":")
    if sep and kind == "file" and rest:
        path = Path(rest).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"--from {source}: no such file")
        yield from read_dead_letters(path)
        return
    if sep and kind == "sqs" and rest:
        sqs = LazyClient("sqs", sqs_client, _boto_sqs).get()
        while True:
            messages = sqs.receive_messages(rest)
            if not messages:
                return
            for m in messages:
                try:
                    yield orjson.loads(m["Body"])
                except orjson.JSONDecodeError as exc:
                    raise StreamkitError(f"{source}: message {m.get('MessageId')} is not a JSON dead letter ({exc})") from None
                if delete:
                    sqs.delete_message(rest, m["ReceiptHandle"])
    raise ConfigurationError(f"bad source {source!r}: use file:PATH or sqs:QUEUE_URL")


def _boto_sqs(client: Any) -> Any:
    from streamkit.aws.sqs import BotoSqs

    return BotoSqs(client)


Payload = tuple[bytes, str | None, str | None]


def records_of(letter: dict[str, Any], client: Any, source_stream: str | None = None) -> list[Payload]:
    """(data, partition key, explicit hash key) of the user records a dead letter stands for."""
    if "data" in letter:
        return [(base64.b64decode(letter["data"]), letter.get("partition_key"), letter.get("explicit_hash_key"))]
    info = letter.get("KinesisBatchInfo")
    if info is None:
        raise StreamkitError("not a dead letter: neither a payload nor a KinesisBatchInfo range")
    stream = source_stream or stream_name_of(str(info["streamArn"]))
    transport = as_kinesis(client, stream=str(info["streamArn"]))  # a new client goes to the ARN's region
    it: str | None = transport.get_shard_iterator(stream, info["shardId"], IteratorStart(
        type="AT_SEQUENCE_NUMBER", sequence_number=info["startSequenceNumber"]))
    end = int(info["endSequenceNumber"])
    out: list[Payload] = []
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


def replay(source: str, stream: str, *, client: Any, sqs_client: Any = None, source_stream: str | None = None,
           delete: bool = False, stop: threading.Event | None = None) -> dict[str, int]:
    """Re-publish every letter of `source` to `stream`; once `stop` is set (SIGTERM in the CLI), read no
    more letters, write what was read, and say so (``stopped``: 1). A rerun on a file replays it whole."""
    from producer.producer import Producer

    kind, _sep, rest = source.partition(":")
    if kind == "file" and not Path(rest).expanduser().is_file():
        raise ConfigurationError(f"--from {source}: no such file")  # before any connection is made
    letters = records = 0
    futures = []
    with Producer(stream, client=client) as p:
        for letter in iter_letters(source, sqs_client=sqs_client, delete=delete):
            if stop is not None and stop.is_set():
                break
            letters += 1
            for data, key, ehk in records_of(letter, client, source_stream):
                if key is None:
                    raise StreamkitError("a dead letter without a partition key (from an AUTO stream) cannot be "
                                         "replayed to a stream that places records by key")
                futures.append(p.put(data, key, ehk))
                records += 1
    failed = sum(1 for f in futures if f.exception() is not None)
    return {"letters": letters, "records": records, "failed": failed,
            "stopped": int(stop is not None and stop.is_set())}
