"""The per-shard ordered consumer: leases, checkpoints, retries, resharding, graceful shutdown."""

from streamkit.consumer.checkpointer import Checkpointer
from streamkit.consumer.config import ConsumerConfig
from streamkit.consumer.consumer import Consumer, ShardFailedError
from streamkit.consumer.processor import (
    FunctionProcessor,
    InitializationInput,
    LeaseLostInput,
    ProcessingStopped,
    ProcessRecordsInput,
    RecordFailed,
    RecordProcessor,
    ShardEndedInput,
    ShutdownRequestedInput,
)
from streamkit.consumer.shard_consumer import ShardStats

__all__ = [
    "Checkpointer",
    "Consumer",
    "ConsumerConfig",
    "FunctionProcessor",
    "InitializationInput",
    "LeaseLostInput",
    "ProcessRecordsInput",
    "ProcessingStopped",
    "RecordFailed",
    "RecordProcessor",
    "ShardEndedInput",
    "ShardFailedError",
    "ShardStats",
    "ShutdownRequestedInput",
]
