"""Read a whole stream back (every shard, deaggregated) for integration tests."""

from __future__ import annotations

from typing import Any

from streamkit import kinesis
from streamkit.aggregation import decode


def read_stream(client: Any, stream: str, *, max_empty_polls: int = 2) -> dict[str, list[tuple[str, bytes, str]]]:
    """Per shard id, every user record as (partition key, data, sequence number), in shard order."""
    out: dict[str, list[tuple[str, bytes, str]]] = {}
    for shard in kinesis.list_shards(client, stream):
        sid = shard["ShardId"]
        it = client.get_shard_iterator(StreamName=stream, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        recs: list[tuple[str, bytes, str]] = []
        empty = 0
        while it and empty < max_empty_polls:
            resp = client.get_records(ShardIterator=it, Limit=10_000)
            for r in resp["Records"]:
                recs.extend((u.partition_key, u.data, r["SequenceNumber"])
                            for u in decode(r["Data"], r["PartitionKey"], r.get("ExplicitHashKey")))
            empty = 0 if resp["Records"] else empty + 1
            it = resp.get("NextShardIterator")
        out[sid] = recs
    return out
