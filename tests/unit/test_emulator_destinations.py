"""The emulator's OnFailure destination while it cannot be written: the shard waits and retries, nothing is
dropped. FakeKinesis and a FakeClock; runs in ~2 s."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.errors import AwsServiceError
from streamkit.testing import FakeClock, FakeKinesis


def test_a_destination_that_is_down_is_retried_and_the_position_waits_for_it(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(scale=0.01)
    kinesis = FakeKinesis(clock=clock)
    poison = kinesis.put("s", b"poison", "k")
    kinesis.put("s", b"ok", "k")
    store = MemoryCheckpointStore()
    written: list[dict[str, Any]] = []
    attempts: list[int] = []
    positions: list[str | None] = []

    def destination(documents: list[dict[str, Any]]) -> None:
        lease = store.get_lease(esm.namespace, "shardId-000000000000")
        positions.append(None if lease is None else lease.checkpoint.sequence_number)
        attempts.append(1)
        if len(attempts) <= 3:
            raise AwsServiceError("the queue does not answer", code="ServiceUnavailable", retryable=True)
        written.extend(documents)

    def handler(event: dict[str, Any], context: Any) -> None:
        if any(r["kinesis"]["sequenceNumber"] == poison for r in event["Records"]):
            raise ValueError("poison")

    esm = EventSourceMapping("s", handler, client=kinesis, clock=clock, checkpoint_store=store,
                             config=EsmConfig(starting_position="TRIM_HORIZON", batch_size=1, max_retry_attempts=0,
                                              on_failure=destination))
    with caplog.at_level(logging.WARNING, logger="streamkit.esm"):
        stats = esm.run(stop_after_idle=1.5)
    assert len(attempts) == 4 and len(written) == 1
    assert written[0]["KinesisBatchInfo"]["startSequenceNumber"] == poison
    assert all(p != poison for p in positions)  # the position never passed the record while it waited
    assert stats.on_failure_delivered_events == 1 and stats.records_succeeded == 1
    assert sum("cannot write the OnFailure record" in r.getMessage() for r in caplog.records) == 3


@pytest.mark.parametrize(("spec", "kind", "rest"), [
    ("file:dead.jsonl", "file", "dead.jsonl"),
    ("sqs:http://127.0.0.1:4566/000000000000/q", "sqs", "http://127.0.0.1:4566/000000000000/q"),
    ("sns:arn:aws:sns:us-east-1:000000000000:failures", "sns", "arn:aws:sns:us-east-1:000000000000:failures"),
    ("s3:bucket/some/prefix", "s3", "bucket/some/prefix"),
    ("arn:aws:sqs:us-east-1:000000000000:q", "sqs", "arn:aws:sqs:us-east-1:000000000000:q"),
    ("arn:aws:sns:us-east-1:000000000000:t", "sns", "arn:aws:sns:us-east-1:000000000000:t"),
    ("arn:aws:s3:::bucket", "s3", "bucket"),
])
def test_destination_specs_and_template_arns(spec: str, kind: str, rest: str) -> None:
    from streamkit.destinations import split_destination

    assert split_destination(spec) == (kind, rest)


@pytest.mark.parametrize("spec", ["sns:topic", "s3:", "arn:aws:lambda:us-east-1:0:function:f", "arn:aws:s3:us-east-1::b",
                                  "ftp:x"])
def test_a_bad_destination_spec_is_one_configuration_error(spec: str) -> None:
    from streamkit.destinations import split_destination
    from streamkit.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        split_destination(spec)


def test_s3_and_sns_destinations_are_built_from_specs() -> None:
    from streamkit.destinations import S3Destination, SnsDestination, parse_destination

    s3 = parse_destination("s3:bucket/a/b/")
    assert isinstance(s3, S3Destination) and (s3.bucket, s3.prefix) == ("bucket", "a/b/")
    assert isinstance(parse_destination("arn:aws:sns:us-east-1:000000000000:t"), SnsDestination)
