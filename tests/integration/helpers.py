"""Integration-test helpers: read a whole stream back (every shard, deaggregated), split and merge shards."""

from __future__ import annotations

import time
from typing import Any

from streamkit import kinesis
from streamkit.aggregation import decode, is_aggregated
from streamkit.hashing import hash_key
from streamkit.testing import StreamHandle


def read_stream(client: Any, stream: str, *, max_empty_polls: int = 2) -> dict[str, list[tuple[str, bytes, str]]]:
    """Per shard id, every user record as (partition key, data, sequence number), in shard order; as readers
    see it (the KCL, streamkit's consumer): an aggregate's sub-record outside the shard's hash range, put there
    by a producer whose map had not seen a split (and put again where it belongs), is left out."""
    out: dict[str, list[tuple[str, bytes, str]]] = {}
    for shard in kinesis.list_shards(client, stream):
        sid = shard.shard_id
        it = client.get_shard_iterator(StreamName=stream, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        recs: list[tuple[str, bytes, str]] = []
        empty = 0
        while it and empty < max_empty_polls:
            resp = client.get_records(ShardIterator=it, Limit=10_000)
            for r in resp["Records"]:
                users = decode(r["Data"], r.get("PartitionKey", ""), r.get("ExplicitHashKey"))
                # Asked once per Kinesis record: is_aggregated checks the aggregate's MD5, and asking it per
                # user record made reading 100,000 readings back take minutes (quadratic in the aggregate).
                if not is_aggregated(r["Data"]):
                    recs.extend((u.partition_key, u.data, r["SequenceNumber"]) for u in users)
                    continue
                recs.extend((u.partition_key, u.data, r["SequenceNumber"]) for u in users if shard.contains(
                    int(u.explicit_hash_key) if u.explicit_hash_key is not None else hash_key(u.partition_key)))
            empty = 0 if resp["Records"] else empty + 1
            it = resp.get("NextShardIterator")
        out[sid] = recs
    return out


def split_first_shard(client: Any, stream: str) -> str:
    """Split the stream's first shard at the middle of its hash range; returns its id once the stream is ACTIVE."""
    shard = kinesis.list_shards(client, stream)[0]
    lo, hi = shard.starting_hash_key, shard.ending_hash_key
    client.split_shard(StreamName=stream, ShardToSplit=shard.shard_id, NewStartingHashKey=str((lo + hi) // 2))
    kinesis.wait_for_stream(client, stream)
    return shard.shard_id


def merge_first_two_open_shards(client: Any, stream: str) -> None:
    """Merge the two open shards with the lowest hash ranges; returns once the stream is ACTIVE."""
    open_shards = sorted((s for s in kinesis.list_shards(client, stream) if s.is_open),
                         key=lambda s: s.starting_hash_key)
    client.merge_shards(StreamName=stream, ShardToMerge=open_shards[0].shard_id,
                        AdjacentShardToMerge=open_shards[1].shard_id)
    kinesis.wait_for_stream(client, stream)


def kcl_identifier(stream: StreamHandle) -> str:
    """``account:name:creation-epoch``, as the KCL's StreamIdentifier serializes it, from the server's own answer."""
    d = stream.client.describe_stream_summary(StreamName=stream.name)["StreamDescriptionSummary"]
    return f"{d['StreamARN'].split(':')[4]}:{stream.name}:{int(d['StreamCreationTimestamp'].timestamp())}"


def active_consumer(stream: StreamHandle, name: str) -> str:
    """Register an enhanced fan-out consumer on `stream` and wait until it is ACTIVE; its ARN."""
    arn = stream.client.register_stream_consumer(StreamARN=stream.arn, ConsumerName=name)["Consumer"]["ConsumerARN"]
    for _ in range(100):  # bounded: kinesis-local makes a consumer ACTIVE within its *_DURATION settings
        status = stream.client.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]["ConsumerStatus"]
        if status == "ACTIVE":
            return str(arn)
        time.sleep(0.1)
    raise AssertionError(f"consumer {arn} did not become ACTIVE")
