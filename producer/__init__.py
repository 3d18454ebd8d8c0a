"""streamkit's producer: KPL-style aggregation, shard-aware batching, retries, pacing and backpressure."""

from typing import TYPE_CHECKING, Any

from producer.config import ProducerConfig
from producer.producer import Producer
from producer.results import FailedRecord, PutResult

if TYPE_CHECKING:
    from producer.async_producer import AsyncProducer

__all__ = ["AsyncProducer", "FailedRecord", "Producer", "ProducerConfig", "PutResult"]


def __getattr__(name: str) -> Any:
    if name == "AsyncProducer":  # imported on first use: a threaded program does not load asyncio for it
        from producer.async_producer import AsyncProducer

        return AsyncProducer
    raise AttributeError(f"module 'producer' has no attribute {name!r}")
