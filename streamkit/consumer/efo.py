"""Enhanced fan-out: register a stream consumer and read shards with SubscribeToShard.

kinesis-local (the kinesis-mock engine) does not send the ``initial-response`` event that botocore
expects first on the event stream. `tolerate_missing_initial_response` makes botocore accept that:
when the first event is something else it is kept for the iterator and an empty initial response
stands in. Against AWS, which always sends the initial response first, nothing changes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from botocore import eventstream

from streamkit import kinesis
from streamkit.checkpoints.model import Checkpoint
from streamkit.consumer.retrieval import Fetched
from streamkit.errors import KinesisError

__all__ = ["register_consumer", "subscribe", "tolerate_missing_initial_response"]

_patched = threading.Lock()
_done = False


class _InitialResponse:
    headers: ClassVar[dict[str, str]] = {":event-type": "initial-response", ":message-type": "event"}
    payload = b"{}"


def tolerate_missing_initial_response() -> None:
    global _done
    with _patched:
        if _done:
            return
        original = eventstream.EventStream.get_initial_response

        def get_initial_response(self: Any) -> Any:
            try:
                first = next(self._event_generator)
            except StopIteration:
                return original(self)  # raises NoInitialResponseError, as before
            if first.headers.get(":event-type") == "initial-response":
                return first
            self._event_generator = itertools.chain([first], self._event_generator)
            return _InitialResponse()

        eventstream.EventStream.get_initial_response = get_initial_response
        _done = True


def register_consumer(client: Any, stream_arn: str, name: str, *, timeout: float = 60.0) -> str:
    """The ARN of stream consumer `name`, registered if needed and ACTIVE."""
    try:
        arn = client.register_stream_consumer(StreamARN=stream_arn, ConsumerName=name)["Consumer"]["ConsumerARN"]
    except Exception as exc:  # ResourceInUseException: it exists already
        if kinesis.error_code(exc) != "ResourceInUseException":
            raise kinesis.translate_error(exc) from exc
        arn = client.describe_stream_consumer(StreamARN=stream_arn, ConsumerName=name)["ConsumerDescription"][
            "ConsumerARN"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]["ConsumerStatus"]
        if status == "ACTIVE":
            return str(arn)
        time.sleep(0.1)
    raise KinesisError(f"stream consumer {name!r} not ACTIVE after {timeout:.0f} s")


def _starting_position(cp: Checkpoint) -> dict[str, Any]:
    if cp.sequence_number in ("TRIM_HORIZON", "LATEST"):
        return {"Type": cp.sequence_number}
    if cp.sequence_number == "AT_TIMESTAMP":
        return {"Type": "AT_TIMESTAMP", "Timestamp": cp.timestamp}
    if cp.sub_sequence_number is None:
        return {"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": cp.sequence_number}
    return {"Type": "AT_SEQUENCE_NUMBER", "SequenceNumber": cp.sequence_number}


def subscribe(client: Any, consumer_arn: str, shard_id: str, start: Checkpoint) -> Iterator[Fetched]:
    """Fetched batches pushed by SubscribeToShard, resubscribing when a subscription ends (every 5 min).

    The last Fetched of a shard has ``next_iterator=None`` (its children in ``child_shards``).
    """
    tolerate_missing_initial_response()
    position = _starting_position(start)
    while True:
        out = client.subscribe_to_shard(ConsumerARN=consumer_arn, ShardId=shard_id, StartingPosition=position)
        continuation: str | None = None
        ended = False
        for event in out["EventStream"]:
            ev = event.get("SubscribeToShardEvent")
            if ev is None:
                continue
            continuation = ev.get("ContinuationSequenceNumber")
            ended = continuation is None
            yield Fetched(records=ev.get("Records", []), next_iterator=None if ended else "efo",
                          millis_behind_latest=ev.get("MillisBehindLatest"), child_shards=ev.get("ChildShards", []))
            if ended:
                return
        if continuation is not None:
            position = {"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": continuation}
