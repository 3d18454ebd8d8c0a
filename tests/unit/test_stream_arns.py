"""A stream given by ARN: its name where a name is needed, its region for the clients streamkit makes."""

from __future__ import annotations

import argparse

import pytest

from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.cli.common import client_for
from streamkit.consumer import Consumer
from streamkit.errors import ConfigurationError
from streamkit.transport import as_kinesis, is_stream_arn, region_of, stream_name_of

ARN = "arn:aws:kinesis:eu-west-2:123456789012:stream/orders"


@pytest.mark.parametrize(("stream", "name", "region"), [
    (ARN, "orders", "eu-west-2"),
    ("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/a.b-c_d", "a.b-c_d", "cn-north-1"),
    ("arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/x", "x", "us-gov-west-1"),
    ("orders", "orders", None),
    ("arn:aws:kinesis:eu-west-2:123:stream/short-account", "arn:aws:kinesis:eu-west-2:123:stream/short-account", None),
])
def test_names_and_regions_of_streams(stream: str, name: str, region: str | None) -> None:
    assert stream_name_of(stream) == name
    assert region_of(stream) == region
    assert is_stream_arn(stream) is (region is not None)


def _region(transport: object) -> str:
    return transport.client.meta.region_name  # type: ignore[attr-defined, no-any-return]


def test_a_client_made_for_an_arn_goes_to_its_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert _region(as_kinesis(None, stream=ARN)) == "eu-west-2"
    assert _region(as_kinesis(None, stream="orders")) == "us-east-1"
    assert _region(as_kinesis(None, stream=ARN, region="ap-south-1")) == "ap-south-1"  # said explicitly: kept
    consumer = Consumer(ARN, lambda r: None, application_name="app", checkpoint_store=MemoryCheckpointStore())
    assert consumer.namespace == Consumer("orders", lambda r: None, application_name="app",
                                          checkpoint_store=MemoryCheckpointStore()).namespace  # same leases
    assert _region(consumer.transport) == "eu-west-2"
    assert consumer.stream_name == "orders"


def test_the_cli_takes_the_region_from_an_arn_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert client_for(argparse.Namespace(stream=ARN, region=None)).meta.region_name == "eu-west-2"
    assert client_for(argparse.Namespace(name=ARN, region=None)).meta.region_name == "eu-west-2"
    assert client_for(argparse.Namespace(stream=ARN, region="us-west-2")).meta.region_name == "us-west-2"
    assert client_for(argparse.Namespace(stream="orders", region=None)).meta.region_name == "us-east-1"


def test_several_streams_by_name_or_arn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    consumer = Consumer(["clicks", ARN], lambda r: None, application_name="app", checkpoint_store=MemoryCheckpointStore())
    assert consumer.streams == ["clicks", ARN] and consumer.namespace == "app"
    assert _region(consumer.transport) == "eu-west-2"  # the ARN's
    assert client_for(argparse.Namespace(stream=["clicks", ARN], region=None)).meta.region_name == "eu-west-2"
    with pytest.raises(ConfigurationError, match="named twice"):
        Consumer(["orders", ARN], lambda r: None, application_name="app", checkpoint_store=MemoryCheckpointStore())
    with pytest.raises(ConfigurationError):
        Consumer([], lambda r: None, application_name="app", checkpoint_store=MemoryCheckpointStore())
    with pytest.raises(ConfigurationError, match="different regions"):
        Consumer([ARN, "arn:aws:kinesis:us-west-2:123456789012:stream/other"], lambda r: None, application_name="app",
                 checkpoint_store=MemoryCheckpointStore())


def test_records_say_their_stream() -> None:
    from streamkit.records import StreamRecord

    assert StreamRecord(b"", "k", "1", event_source_arn=ARN).stream_name == "orders"
    assert StreamRecord(b"", "k", "1").stream_name is None


def test_a_foreign_arn_is_not_found_locally_as_aws_answers() -> None:
    from streamkit.errors import StreamNotFoundError
    from streamkit.kinesis_types import LOCAL_ACCOUNT, foreign_arn_problem
    from streamkit.testing import FakeKinesis

    assert foreign_arn_problem(f"arn:aws:kinesis:us-east-1:{LOCAL_ACCOUNT}:stream/s", "us-east-1") is None
    assert foreign_arn_problem("s", "us-east-1") is None  # a name is never foreign
    assert foreign_arn_problem("arn:aws:kinesis:us-east-1:123456789012:stream/s", "us-east-1") == (
        "Stream s under account 123456789012 not found.")
    assert foreign_arn_problem(f"arn:aws:kinesis:eu-west-1:{LOCAL_ACCOUNT}:stream/s", "us-east-1") is not None
    kinesis = FakeKinesis()
    kinesis.put("s", b"x", "k")
    with pytest.raises(StreamNotFoundError):
        kinesis.describe_stream_summary("arn:aws:kinesis:us-east-1:123456789012:stream/s")
