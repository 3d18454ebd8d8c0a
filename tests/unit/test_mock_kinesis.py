"""`MockKinesis(handler)`: any response or fault scripted in a few lines, alone or over a `FakeKinesis` (~1 s)."""

from __future__ import annotations

from typing import Any

import pytest

from producer import Producer, ProducerConfig
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.errors import KinesisError, ThrottledError
from streamkit.kinesis_types import Fetched, StreamSummary
from streamkit.testing import FakeClock, FakeKinesis, KinesisCall, MockKinesis
from streamkit.transport import KinesisTransport


def test_it_is_a_transport_and_records_every_call_in_order() -> None:
    summary = StreamSummary(name="s", arn="arn:aws:kinesis:us-east-1:000000000000:stream/s", status="ACTIVE")
    mock = MockKinesis(lambda call: summary if call.operation == "DescribeStreamSummary" else None)
    assert isinstance(mock, KinesisTransport)
    assert mock.describe_stream_summary("s") is summary
    mock.delete_stream("s")  # returns nothing: needs no answer
    assert [(c.operation, c.args, c.number) for c in mock.calls] == [
        ("DescribeStreamSummary", {"stream": "s"}, 1), ("DeleteStream", {"stream": "s"}, 1)]


def test_a_call_the_handler_does_not_answer_and_no_fallback_can_is_an_error_naming_it() -> None:
    with pytest.raises(KinesisError, match="no answer to GetRecords"):
        MockKinesis(lambda call: None).get_records("it", 10)


def test_a_scripted_response_replaces_the_server() -> None:
    page = Fetched(records=[{"SequenceNumber": "1", "Data": b"x", "PartitionKey": "k"}], next_iterator=None,
                   millis_behind_latest=0)
    mock = MockKinesis(lambda call: page)
    assert mock.get_records("it", 10) is page and mock.calls[0].args == {"iterator": "it", "limit": 10}


def test_a_fault_scripted_over_the_fake_is_retried_by_the_producer() -> None:
    kinesis = FakeKinesis()
    kinesis.create_stream("s", 1)

    def handler(call: KinesisCall) -> Any:
        if call.operation == "PutRecords" and call.number <= 2:
            raise ThrottledError("slow down", code="ProvisionedThroughputExceededException")
        return None  # the fake answers everything else

    mock = MockKinesis(handler, fallback=kinesis)
    config = ProducerConfig(record_max_buffered_time=0.0, backoff_base=0.001, backoff_max=0.01)
    with Producer("s", client=mock, config=config) as p:
        result = p.put(b"x", "k").result(timeout=10)
    assert result.shard_id.startswith("shardId-")
    assert sum(1 for c in mock.calls if c.operation == "PutRecords") == 3
    assert kinesis.op_counts["PutRecords"] == 1  # only the third reached the fake


def test_a_throttled_read_is_retried_by_the_consumer_and_every_record_is_delivered() -> None:
    clock = FakeClock()
    kinesis = FakeKinesis(clock=clock)
    for i in range(5):
        kinesis.put("s", f"r{i}".encode(), f"k{i}")

    def handler(call: KinesisCall) -> Any:
        if call.operation == "GetRecords" and call.number in (1, 2):
            raise ThrottledError("ProvisionedThroughputExceededException", code="ProvisionedThroughputExceededException")
        return None

    got: list[bytes] = []
    mock = MockKinesis(handler, fallback=kinesis)
    Consumer("s", lambda r: got.append(r.data), application_name="app", checkpoint_store=MemoryCheckpointStore(),
             client=mock, clock=clock, config=ConsumerConfig()).run(install_signal_handlers=False, stop_after_idle=3)
    assert sorted(got) == [f"r{i}".encode() for i in range(5)]
    assert sum(1 for c in mock.calls if c.operation == "GetRecords") > 2
