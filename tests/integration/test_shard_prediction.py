"""The ShardMap's prediction matches the shard the real server writes each key to."""

from __future__ import annotations

import pytest

from streamkit import kinesis
from streamkit.hashing import MAX_HASH_KEY
from streamkit.testing import StreamHandle

pytestmark = pytest.mark.integration


@pytest.mark.streamkit(shards=5)
def test_prediction_matches_server_for_thousands_of_keys(kinesis_stream: StreamHandle) -> None:
    client = kinesis_stream.client
    shards = kinesis.shard_map(client, kinesis_stream.name)
    keys = [f"sensor-{i}-ü" for i in range(3000)]
    seen = set()
    for start in range(0, len(keys), 500):
        batch = keys[start:start + 500]
        out = client.put_records(StreamName=kinesis_stream.name,
                                 Records=[{"Data": b"x", "PartitionKey": k} for k in batch])
        assert out["FailedRecordCount"] == 0
        for key, result in zip(batch, out["Records"], strict=True):
            assert result["ShardId"] == shards.shard_for_key(key).shard_id, key
            seen.add(result["ShardId"])
    assert len(seen) == 5


@pytest.mark.streamkit(shards=3)
def test_explicit_hash_keys_route_like_the_server(kinesis_stream: StreamHandle) -> None:
    client = kinesis_stream.client
    shards = kinesis.shard_map(client, kinesis_stream.name)
    for ehk in ("0", str(MAX_HASH_KEY), str(MAX_HASH_KEY // 3), str(MAX_HASH_KEY // 3 + 1), str(2 * MAX_HASH_KEY // 3)):
        out = client.put_record(StreamName=kinesis_stream.name, Data=b"x", PartitionKey="k", ExplicitHashKey=ehk)
        assert out["ShardId"] == shards.shard_for_key("k", ehk).shard_id


@pytest.mark.streamkit(backend="kinesis-mock", shards=4)
def test_prediction_matches_kinesis_mock_too(kinesis_stream: StreamHandle) -> None:
    client = kinesis_stream.client
    shards = kinesis.shard_map(client, kinesis_stream.name)
    keys = [f"k{i}" for i in range(400)]
    out = client.put_records(StreamName=kinesis_stream.name, Records=[{"Data": b"x", "PartitionKey": k} for k in keys])
    assert [r["ShardId"] for r in out["Records"]] == [shards.shard_for_key(k).shard_id for k in keys]
