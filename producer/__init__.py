"""streamkit's producer: KPL-style aggregation, shard-aware batching, retries, pacing and backpressure."""

from producer.config import ProducerConfig
from producer.producer import Producer
from producer.results import FailedRecord, PutResult

__all__ = ["FailedRecord", "Producer", "ProducerConfig", "PutResult"]
