"""Checkpoint stores: leases and (sequence, sub-sequence) checkpoints per shard.

`DynamoDBCheckpointStore` (and with it botocore) loads only when it is used, so a Lambda handler that
imports the wrapper does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamkit.checkpoints.base import CheckpointStore
from streamkit.checkpoints.lease_table import LeaseTableOptions
from streamkit.checkpoints.memory import MemoryCheckpointStore
from streamkit.checkpoints.model import AT_TIMESTAMP, LATEST, SHARD_END, TRIM_HORIZON, Checkpoint, Lease
from streamkit.checkpoints.sqlite import SqliteCheckpointStore

if TYPE_CHECKING:
    from streamkit.checkpoints.dynamodb import DynamoDBCheckpointStore

__all__ = [
    "AT_TIMESTAMP",
    "LATEST",
    "SHARD_END",
    "TRIM_HORIZON",
    "Checkpoint",
    "CheckpointStore",
    "DynamoDBCheckpointStore",
    "Lease",
    "LeaseTableOptions",
    "MemoryCheckpointStore",
    "SqliteCheckpointStore",
]


def __getattr__(name: str) -> Any:
    if name == "DynamoDBCheckpointStore":
        from streamkit.checkpoints.dynamodb import DynamoDBCheckpointStore

        return DynamoDBCheckpointStore
    raise AttributeError(f"module 'streamkit.checkpoints' has no attribute {name!r}")
