"""Re-publish dead-lettered records: streamkit's letters carry the payload; Lambda's OnFailure records
carry only a sequence range, so their records are read back from the stream while it retains them."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import orjson

from streamkit.aggregation import decode
from streamkit.destinations import read_dead_letters
from streamkit.errors import ConfigurationError, StreamkitError

__all__ = ["iter_letters", "records_of", "replay"]


def iter_letters(source: str, *, sqs_client: Any = None, delete: bool = False) -> Iterator[dict[str, Any]]:
    kind, sep, rest = source.partition(":")
    if sep and kind == "file" and rest:
        yield from read_dead_letters(rest)
        return
    if sep and kind == "sqs" and rest:
        if sqs_client is None:
            from streamkit.clients import aws_client

            sqs_client = aws_client("sqs")
        while True:
            out = sqs_client.receive_message(QueueUrl=rest, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = out.get("Messages", [])
            if not messages:
                return
            for m in messages:
                yield orjson.loads(m["Body"])
                if delete:
                    sqs_client.delete_message(QueueUrl=rest, ReceiptHandle=m["ReceiptHandle"])
    raise ConfigurationError(f"bad source {source!r}: use file:PATH or sqs:QUEUE_URL")


def records_of(letter: dict[str, Any], client: Any, source_stream: str | None = None) -> list[tuple[bytes, str, str | None]]:
    """(data, partition key, explicit hash key) of the user records a dead letter stands for."""
    if "data" in letter:
        return [(base64.b64decode(letter["data"]), letter["partition_key"], letter.get("explicit_hash_key"))]
    info = letter.get("KinesisBatchInfo")
    if info is None:
        raise StreamkitError("not a dead letter: neither a payload nor a KinesisBatchInfo range")
    stream = source_stream or str(info["streamArn"]).rsplit("/", 1)[-1]
    it = client.get_shard_iterator(StreamName=stream, ShardId=info["shardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
                                   StartingSequenceNumber=info["startSequenceNumber"])["ShardIterator"]
    end = int(info["endSequenceNumber"])
    out: list[tuple[bytes, str, str | None]] = []
    while it:
        resp = client.get_records(ShardIterator=it, Limit=1000)
        for r in resp["Records"]:
            if int(r["SequenceNumber"]) > end:
                return out
            out.extend((u.data, u.partition_key, u.explicit_hash_key) for u in decode(r["Data"], r["PartitionKey"]))
        if not resp["Records"]:
            break
        it = resp.get("NextShardIterator")
    return out


def replay(source: str, stream: str, *, client: Any, sqs_client: Any = None, source_stream: str | None = None,
           delete: bool = False) -> dict[str, int]:
    from producer.producer import Producer

    letters = records = failed = 0
    futures = []
    with Producer(stream, client=client) as p:
        for letter in iter_letters(source, sqs_client=sqs_client, delete=delete):
            letters += 1
            for data, key, ehk in records_of(letter, client, source_stream):
                futures.append(p.put(data, key, ehk))
                records += 1
    failed = sum(1 for f in futures if f.exception() is not None)
    return {"letters": letters, "records": records, "failed": failed}
