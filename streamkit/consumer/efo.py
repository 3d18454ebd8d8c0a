"""Enhanced fan-out: register a stream consumer, and read a shard with SubscribeToShard.

`EfoReader` has the shape of `streamkit.shard_reader.ShardReader` (it yields `Batch`es), so the shard
consumer processes pushed records exactly as polled ones. A subscription ends every 5 minutes (or
breaks): the reader subscribes again after the last record it handed out, backing off on failures.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace

from streamkit.checkpoints.model import Checkpoint
from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.errors import KinesisError, ServiceCallError, StreamkitError
from streamkit.retry import RetryPolicy, call_with_retry, is_retryable
from streamkit.shard_reader import FETCH_RETRY, Batch, ReaderBase, foreign_checkpoint_error, start_of
from streamkit.transport import KinesisTransport

__all__ = ["EfoReader", "register_consumer"]

log = logging.getLogger("streamkit.consumer")

#: A subscription that broke is made again with the reader's backoff; ResourceInUseException (the previous
#: subscription of this consumer to this shard is still open) is waited out too.
RESUBSCRIBE_RETRY = replace(FETCH_RETRY, retryable=lambda e: is_retryable(e) or _code(e) == "ResourceInUseException")


def _code(err: BaseException) -> str:
    return err.code if isinstance(err, ServiceCallError) else ""


def register_consumer(transport: KinesisTransport, stream_arn: str, name: str, *, timeout: float = 60.0,
                      clock: Clock = SYSTEM_CLOCK) -> str:
    """The ARN of stream consumer `name`, registered if needed and ACTIVE."""
    arn = transport.register_stream_consumer(stream_arn, name)

    def active() -> str:
        if transport.stream_consumer_status(arn) != "ACTIVE":
            raise KinesisError(f"stream consumer {name!r} not ACTIVE after {timeout:.0f} s", retryable=True)
        return arn

    return call_with_retry(active, RetryPolicy(base=0.1, maximum=1.0, max_elapsed=timeout), clock=clock)


class EfoReader(ReaderBase):
    """Pushed batches for one shard from `start`, resubscribing as needed, until the shard ends or `stop`."""

    answers_while_idle = False

    def __init__(self, transport: KinesisTransport, stream: str, consumer_arn: str, shard_id: str, start: Checkpoint, *,
                 stop: threading.Event, clock: Clock = SYSTEM_CLOCK,
                 on_error: Callable[[StreamkitError, int, float], None] | None = None) -> None:
        super().__init__(transport, stream, shard_id, start, stop=stop, clock=clock, on_error=on_error)
        self.consumer_arn = consumer_arn

    def batches(self) -> Iterator[Batch]:
        while not self.stop.is_set():
            position = self._resume_point()
            start, after = start_of(position)
            got = False
            try:
                for fetched in self.transport.subscribe_to_shard(self.consumer_arn, self.shard_id, start):
                    got = got or bool(fetched.records)
                    self._succeeded()
                    if fetched.records:
                        self.last_read = str(fetched.records[-1]["SequenceNumber"])
                    ended = fetched.next_iterator is None
                    yield Batch(records=fetched.records, millis_behind_latest=fetched.millis_behind_latest,
                                caught_up=not fetched.records and not ended and not fetched.millis_behind_latest,
                                ended=ended, children=fetched.child_shards, after=after)
                    after = None
                    if ended or self.stop.is_set():
                        return
                if not got and self._pause(1.0):
                    return  # a subscription that brought nothing: do not resubscribe in a tight loop
            except StreamkitError as err:
                if _code(err) == "InvalidArgumentException" and not position.is_sentinel:
                    raise foreign_checkpoint_error(self.stream, self.shard_id, position, err) from err
                if self._retry_after(err, RESUBSCRIBE_RETRY):
                    return
