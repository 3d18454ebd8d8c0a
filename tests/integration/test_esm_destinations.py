"""The emulator's SNS and S3 OnFailure destinations on moto's server (127.0.0.1), and replay from each: a poison
record lands in SNS (read through a subscribed queue) and in S3 with its payload, and comes back;
kinesis_handler writes its letter, payload included, to both (~25 s)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from producer.replay import replay
from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.aws_lambda.esm_metrics import mapping_uuid
from streamkit.destinations import S3Destination, SnsDestination
from streamkit.local.testing import local_client
from streamkit.testing import StreamHandle
from tests.integration.helpers import read_stream

pytestmark = pytest.mark.integration


def _poisoned(stream: StreamHandle) -> bytes:
    for i in range(4):
        stream.client.put_record(StreamName=stream.name, Data=json.dumps({"i": i}).encode(), PartitionKey=f"k{i}")
    poison = json.dumps({"i": 99, "poison": True}).encode()
    stream.client.put_record(StreamName=stream.name, Data=poison, PartitionKey="bad")
    return poison


def _run(stream: StreamHandle, destination: Any) -> None:
    def handler(event: dict[str, Any], context: Any) -> None:
        for r in event["Records"]:
            if json.loads(base64.b64decode(r["kinesis"]["data"])).get("poison"):
                raise ValueError("poison")

    stats = EventSourceMapping(stream.name, handler, client=stream.client,
                               config=EsmConfig(starting_position="TRIM_HORIZON", batch_size=1, max_retry_attempts=0,
                                                on_failure=destination)).run(stop_after_idle=1.5)
    assert stats.records_discarded == 1 and stats.on_failure_delivered_events == 1 and stats.records_succeeded == 4


@pytest.mark.streamkit(shards=1)
def test_a_poison_record_lands_in_sns_read_through_a_subscribed_queue_and_is_replayed(
        kinesis_stream: StreamHandle, stream_factory: Any, sqs_endpoint: str, sqs_client: Any) -> None:
    sns = local_client("sns", sqs_endpoint)
    topic = sns.create_topic(Name=f"failures-{kinesis_stream.name}")["TopicArn"]
    queue = sqs_client.create_queue(QueueName=f"failures-{kinesis_stream.name}")["QueueUrl"]
    queue_arn = sqs_client.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    poison = _poisoned(kinesis_stream)
    _run(kinesis_stream, SnsDestination(topic, client=sns))
    target = stream_factory(shards=1)
    result = replay(f"sqs:{queue}", target.name, client=target.client, sqs_client=sqs_client,
                    source_stream=kinesis_stream.name)
    assert result == {"letters": 1, "records": 1, "failed": 0, "stopped": 0}
    ((key, data, _seq),) = [r for recs in read_stream(target.client, target.name).values() for r in recs]
    assert (key, data) == ("bad", poison)


@pytest.mark.streamkit(shards=1)
def test_a_poison_record_lands_in_s3_with_its_payload_keyed_as_aws_keys_it_and_is_replayed(
        kinesis_stream: StreamHandle, stream_factory: Any, sqs_endpoint: str) -> None:
    s3 = local_client("s3", sqs_endpoint)
    bucket = f"failures-{kinesis_stream.name}".lower()[:63]
    s3.create_bucket(Bucket=bucket)
    poison = _poisoned(kinesis_stream)
    _run(kinesis_stream, S3Destination(bucket, "esm", client=s3))
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    uuid = mapping_uuid("streamkit-local-function", kinesis_stream.name)
    # AWS's page: aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID> (under our prefix)
    m = re.fullmatch(rf"esm/aws/lambda/{uuid}/shardId-000000000000/(\d{{4}})/(\d\d)/(\d\d)/"
                     r"(\d{4})-(\d\d)-(\d\d)T\d\d\.\d\d\.\d\d-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", key)
    assert m is not None, key
    assert m.groups()[:3] == m.groups()[3:6]
    doc = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert doc["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert doc["responseContext"]["functionError"] == "Unhandled"
    assert doc["KinesisBatchInfo"]["batchSize"] == 1
    # AWS's page: "the payload field contains the original invocation record as an escaped JSON string"
    assert isinstance(doc["payload"], str)
    event = json.loads(doc["payload"])
    assert base64.b64decode(event["Records"][0]["kinesis"]["data"]) == poison
    target = stream_factory(shards=1)
    result = replay(f"s3:{bucket}/esm", target.name, client=target.client, s3_client=s3)
    assert result == {"letters": 1, "records": 1, "failed": 0, "stopped": 0}
    ((pk, data, _seq),) = [r for recs in read_stream(target.client, target.name).values() for r in recs]
    assert (pk, data) == ("bad", poison)


@pytest.mark.streamkit(shards=1)
def test_kinesis_handler_writes_its_letter_with_the_payload_to_sns_and_s3(
        kinesis_stream: StreamHandle, stream_factory: Any, sqs_endpoint: str, sqs_client: Any) -> None:
    from streamkit import kinesis_handler
    from streamkit.records import StreamRecord

    sns, s3 = local_client("sns", sqs_endpoint), local_client("s3", sqs_endpoint)
    topic = sns.create_topic(Name=f"letters-{kinesis_stream.name}")["TopicArn"]
    queue = sqs_client.create_queue(QueueName=f"letters-{kinesis_stream.name}")["QueueUrl"]
    queue_arn = sqs_client.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    bucket = f"letters-{kinesis_stream.name}".lower()[:63]
    s3.create_bucket(Bucket=bucket)
    poison = _poisoned(kinesis_stream)

    def check(record: StreamRecord) -> None:
        if record.body.get("poison"):
            raise ValueError("poison")

    for destination in (SnsDestination(topic, client=sns), S3Destination(bucket, "handler", client=s3)):
        EventSourceMapping(kinesis_stream.name, kinesis_handler(body="json", max_attempts=1, on_failure=destination)(check),
                           client=kinesis_stream.client,
                           config=EsmConfig(starting_position="TRIM_HORIZON")).run(stop_after_idle=1.5)
    for source, kwargs in ((f"sqs:{queue}", {"sqs_client": sqs_client}), (f"s3:{bucket}/handler", {"s3_client": s3})):
        target = stream_factory(shards=1)
        assert replay(source, target.name, client=target.client, **kwargs)["records"] == 1
        ((_key, data, _seq),) = [r for recs in read_stream(target.client, target.name).values() for r in recs]
        assert data == poison
