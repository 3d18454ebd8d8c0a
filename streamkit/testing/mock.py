"""`MockKinesis(handler)`: a `KinesisTransport` whose every call is answered by one function (httpx's
`MockTransport` shape), so a test scripts any response or fault in a few lines.

The handler receives a `KinesisCall` (the operation, AWS's name, its arguments and its number) and returns
what the transport method returns (a `Fetched`, a list of `PutEntryResult`, a `StreamSummary`...), or
raises a `StreamkitError` as the real adapter would. With ``fallback=`` (a `FakeKinesis`, say), a handler
that returns None lets the fallback answer: script only the faults, keep the fake's streams for the rest.

    kinesis = FakeKinesis()
    def handler(call: KinesisCall) -> Any:
        if call.operation == "PutRecords" and call.number == 1:
            raise ThrottledError("slow down", code="ProvisionedThroughputExceededException")
        return None  # the fake answers
    transport = MockKinesis(handler, fallback=kinesis)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamkit.errors import KinesisError
from streamkit.hashing import ShardInfo
from streamkit.kinesis_types import Fetched, IteratorStart, PutEntry, PutEntryResult, StreamSummary
from streamkit.transport import KinesisTransport

__all__ = ["KinesisCall", "MockKinesis"]


@dataclass(frozen=True, kw_only=True)
class KinesisCall:
    """One call on the transport: `operation` as AWS names it, `args` by the method's parameter names,
    `number` counting calls of this operation from 1."""

    operation: str
    args: dict[str, Any] = field(default_factory=dict)
    number: int = 1


class MockKinesis:
    """A `KinesisTransport` answered by `handler` (then by `fallback` when the handler returns None)."""

    def __init__(self, handler: Callable[[KinesisCall], Any], *, fallback: KinesisTransport | None = None) -> None:
        self.handler = handler
        self.fallback = fallback
        #: Every call made, in order.
        self.calls: list[KinesisCall] = []
        self._lock = threading.Lock()

    def _answer(self, operation: str, method: str, *, returns: bool = True, **args: Any) -> Any:
        """The handler's answer, else the fallback's; a call that returns nothing needs neither."""
        with self._lock:
            number = 1 + sum(1 for c in self.calls if c.operation == operation)
            call = KinesisCall(operation=operation, args=args, number=number)
            self.calls.append(call)
        answer = self.handler(call)
        if answer is not None:
            return answer
        if self.fallback is None:
            if not returns:
                return None
            raise KinesisError(f"MockKinesis: the handler gave no answer to {operation} and there is no fallback",
                               code="MockNoAnswer", retryable=False)
        return getattr(self.fallback, method)(**args)

    def describe_stream_summary(self, stream: str) -> StreamSummary:
        out: StreamSummary = self._answer("DescribeStreamSummary", "describe_stream_summary", stream=stream)
        return out

    def list_shards(self, stream: str) -> list[ShardInfo]:
        out: list[ShardInfo] = self._answer("ListShards", "list_shards", stream=stream)
        return out

    def get_shard_iterator(self, stream: str, shard_id: str, start: IteratorStart) -> str:
        out: str = self._answer("GetShardIterator", "get_shard_iterator", stream=stream, shard_id=shard_id, start=start)
        return out

    def get_records(self, iterator: str, limit: int) -> Fetched:
        out: Fetched = self._answer("GetRecords", "get_records", iterator=iterator, limit=limit)
        return out

    def put_records(self, stream: str, records: Sequence[PutEntry]) -> list[PutEntryResult]:
        out: list[PutEntryResult] = self._answer("PutRecords", "put_records", stream=stream, records=records)
        return out

    def create_stream(self, stream: str, shards: int | None, *, on_demand: bool = False,
                      max_record_size_kib: int | None = None, distribution: str | None = None) -> None:
        self._answer("CreateStream", "create_stream", returns=False, stream=stream, shards=shards, on_demand=on_demand,
                       max_record_size_kib=max_record_size_kib, distribution=distribution)

    def update_max_record_size(self, stream: str, max_record_size_kib: int) -> None:
        self._answer("UpdateMaxRecordSize", "update_max_record_size", returns=False, stream=stream,
                       max_record_size_kib=max_record_size_kib)

    def update_record_distribution(self, stream: str, distribution: str) -> None:
        self._answer("UpdateStreamRecordDistributionStrategy", "update_record_distribution", returns=False, stream=stream,
                       distribution=distribution)

    def update_stream_mode(self, stream: str, mode: str, *, warm_throughput_mibps: int | None = None) -> None:
        self._answer("UpdateStreamMode", "update_stream_mode", returns=False, stream=stream, mode=mode,
                       warm_throughput_mibps=warm_throughput_mibps)

    def delete_stream(self, stream: str) -> None:
        self._answer("DeleteStream", "delete_stream", returns=False, stream=stream)

    def register_stream_consumer(self, stream_arn: str, name: str) -> str:
        out: str = self._answer("RegisterStreamConsumer", "register_stream_consumer", stream_arn=stream_arn, name=name)
        return out

    def stream_consumer_status(self, consumer_arn: str) -> str:
        out: str = self._answer("DescribeStreamConsumer", "stream_consumer_status", consumer_arn=consumer_arn)
        return out

    def subscribe_to_shard(self, consumer_arn: str, shard_id: str, start: IteratorStart) -> Iterator[Fetched]:
        out: Iterator[Fetched] = self._answer("SubscribeToShard", "subscribe_to_shard", consumer_arn=consumer_arn,
                                              shard_id=shard_id, start=start)
        return out
