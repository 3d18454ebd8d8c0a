"""What a put turns into: a PutResult on success, a FailedRecord (with its payload) on failure."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

__all__ = ["FailedRecord", "PutResult"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PutResult:
    """Where a user record landed."""

    shard_id: str
    sequence_number: str
    #: Index inside its KPL aggregate; None when it was sent as a plain Kinesis record.
    sub_sequence_number: int | None
    #: PutRecords attempts it took (1 = first try).
    attempts: int


@dataclass(frozen=True, kw_only=True, slots=True)
class FailedRecord:
    """A user record the producer could not write, with everything needed to write it again."""

    data: bytes
    partition_key: str | None  # None: written without a key to an AUTO stream
    explicit_hash_key: str | None
    error: str
    error_code: str
    attempts: int
    put_time: float  # time.time() when `put` was called

    def to_json(self) -> dict[str, Any]:
        """A JSON document of this record (data base64-encoded), as destinations store it."""
        return {"data": base64.b64encode(self.data).decode("ascii"), "partition_key": self.partition_key,
                "explicit_hash_key": self.explicit_hash_key, "error": self.error, "error_code": self.error_code,
                "attempts": self.attempts, "put_time": self.put_time}
