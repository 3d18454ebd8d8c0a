"""The S3 OnFailure object as AWS's page documents it ("Retain discarded batch records for a Kinesis Data Streams
event source in Lambda", https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html): the
key ``aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>``, and the SQS/SNS record's
fields plus ``payload``, "the original invocation record as an escaped JSON string"."""

from __future__ import annotations

import datetime as dt
import json
import re

from streamkit.aws_lambda.esm_on_failure import s3_failure_object, s3_object_key

UUID = "f89f8514-cdd9-4602-9e1f-01a5b77d449b"


def test_the_object_key_is_aws_s_layout_in_utc() -> None:
    now = dt.datetime(2019, 11, 14, 0, 38, 6, 21000, tzinfo=dt.UTC).timestamp()
    key = s3_object_key(UUID, "shardId-000000000001", now)
    prefix = f"aws/lambda/{UUID}/shardId-000000000001/2019/11/14/2019-11-14T00.38.06-"
    assert key.startswith(prefix)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", key[len(prefix):])


def test_two_objects_written_in_the_same_second_get_different_keys() -> None:
    assert s3_object_key(UUID, "shardId-000000000001", 1.0) != s3_object_key(UUID, "shardId-000000000001", 1.0)


def test_the_object_is_the_on_failure_record_plus_the_event_as_an_escaped_json_string() -> None:
    record = {"requestContext": {"condition": "RetryAttemptsExhausted"}, "version": "1.0",
              "KinesisBatchInfo": {"shardId": "shardId-000000000001", "batchSize": 1}}
    event = {"Records": [{"kinesis": {"data": "aGVsbG8=", "partitionKey": "k"}, "eventSource": "aws:kinesis"}]}
    obj = s3_failure_object(record, event)
    assert {k: v for k, v in obj.items() if k != "payload"} == record
    assert isinstance(obj["payload"], str)
    assert json.loads(obj["payload"]) == event
