"""`replay --delete` from a queue deletes a letter only once its records are acknowledged (moto's SQS server)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import orjson
import pytest

from producer.replay import replay
from streamkit.errors import KinesisError
from streamkit.testing import FakeKinesis, KinesisCall, MockKinesis

pytestmark = pytest.mark.integration


def queue_with_letters(sqs_client: Any, n: int) -> str:
    # Visibility 0: a message received and not deleted is visible again at once, as a failed one is after
    # its timeout on AWS.
    url = str(sqs_client.create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}",
                                      Attributes={"VisibilityTimeout": "0"})["QueueUrl"])
    for i in range(n):
        letter = {"data": base64.b64encode(b"reading-%d" % i).decode(), "partition_key": f"k{i}"}
        sqs_client.send_message(QueueUrl=url, MessageBody=orjson.dumps(letter).decode())
    return url


def left_in(sqs_client: Any, url: str) -> int:
    attrs = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                          "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def test_acknowledged_letters_are_deleted(sqs_client: Any) -> None:
    url = queue_with_letters(sqs_client, 3)
    kinesis = FakeKinesis()
    kinesis.create_stream("s", 1)
    summary = replay(f"sqs:{url}", "s", client=kinesis, sqs_client=sqs_client, delete=True)
    assert summary["letters"] == 3 and summary["failed"] == 0
    assert left_in(sqs_client, url) == 0


def test_a_letter_whose_write_failed_stays_in_the_queue_and_the_run_ends(sqs_client: Any) -> None:
    url = queue_with_letters(sqs_client, 2)
    kinesis = FakeKinesis()
    kinesis.create_stream("s", 1)

    def deny(call: KinesisCall) -> Any:
        if call.operation == "PutRecords":
            raise KinesisError("denied", code="AccessDeniedException")
        return None

    summary = replay(f"sqs:{url}", "s", client=MockKinesis(deny, fallback=kinesis), sqs_client=sqs_client,
                     delete=True)
    assert summary["letters"] == 2 and summary["failed"] == 2  # each letter once, though visible again at once
    assert left_in(sqs_client, url) == 2  # deleted on receipt, they were lost with the failed write
