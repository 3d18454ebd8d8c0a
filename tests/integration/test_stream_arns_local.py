"""Issue 24, Deliver 6: every local stack takes stream ARNs as Kinesis does, the plain ones (no limit proxy)
too. The stack's own ARN works wherever a name does; an ARN of another account, or of a region other
than the one the request is signed for, is ResourceNotFoundException. Before: plain kinesalite refused
every StreamARN, its own included ("Value null at 'streamName'")."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config

from streamkit.kinesis_types import LOCAL_ACCOUNT
from streamkit.testing import StreamHandle

pytestmark = pytest.mark.integration


def signed_for(stream: StreamHandle, region: str) -> Any:
    return boto3.client("kinesis", endpoint_url=stream.stack.kinesis_endpoint, region_name=region,
                        aws_access_key_id="x", aws_secret_access_key="x",
                        config=Config(retries={"max_attempts": 1}))


@pytest.mark.parametrize("backend", ["kinesalite", "kinesis-mock"])
def test_a_plain_stack_serves_its_own_arn_and_refuses_a_foreign_one(backend: str, request: pytest.FixtureRequest) -> None:
    request.applymarker(pytest.mark.streamkit(backend=backend, shards=2))
    stream: StreamHandle = request.getfixturevalue("kinesis_stream")
    assert not stream.stack.enforce_limits  # no proxy in front: the server itself answers
    c = signed_for(stream, "us-east-1")
    own = f"arn:aws:kinesis:us-east-1:{LOCAL_ACCOUNT}:stream/{stream.name}"
    assert c.describe_stream_summary(StreamARN=own)["StreamDescriptionSummary"]["StreamName"] == stream.name
    put = c.put_records(StreamARN=own, Records=[{"Data": b"r%d" % i, "PartitionKey": f"k{i}"} for i in range(10)])
    assert put["FailedRecordCount"] == 0
    c.put_record(StreamARN=own, Data=b"one", PartitionKey="k")
    got = []
    for shard in c.list_shards(StreamARN=own)["Shards"]:
        it = c.get_shard_iterator(StreamARN=own, ShardId=shard["ShardId"],
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        got += [r["Data"] for r in c.get_records(ShardIterator=it, StreamARN=own)["Records"]]
    assert sorted(got) == sorted([b"r%d" % i for i in range(10)] + [b"one"])

    foreign = [f"arn:aws:kinesis:us-east-1:123456789012:stream/{stream.name}",
               f"arn:aws:kinesis:eu-west-1:{LOCAL_ACCOUNT}:stream/{stream.name}"]
    for arn in foreign:
        with pytest.raises(c.exceptions.ResourceNotFoundException, match="not found"):
            c.describe_stream_summary(StreamARN=arn)
        with pytest.raises(c.exceptions.ResourceNotFoundException):
            c.put_record(StreamARN=arn, Data=b"x", PartitionKey="k")
        with pytest.raises(c.exceptions.ResourceNotFoundException):
            c.list_shards(StreamARN=arn)
    # Signed for another region, the stack's us-east-1 ARN is foreign there.
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        signed_for(stream, "eu-west-1").describe_stream_summary(StreamARN=own)
