"""Checkpoint stores: leases and (sequence, sub-sequence) checkpoints per shard."""

from streamkit.checkpoints.base import CheckpointStore
from streamkit.checkpoints.dynamodb import DynamoDBCheckpointStore
from streamkit.checkpoints.memory import MemoryCheckpointStore
from streamkit.checkpoints.model import AT_TIMESTAMP, LATEST, SHARD_END, TRIM_HORIZON, Checkpoint, Lease
from streamkit.checkpoints.sqlite import SqliteCheckpointStore

__all__ = [
    "AT_TIMESTAMP",
    "LATEST",
    "SHARD_END",
    "TRIM_HORIZON",
    "Checkpoint",
    "CheckpointStore",
    "DynamoDBCheckpointStore",
    "Lease",
    "MemoryCheckpointStore",
    "SqliteCheckpointStore",
]
