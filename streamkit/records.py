"""StreamRecord: one user record as a consumer or a Lambda handler sees it, after deaggregation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import orjson

from streamkit.errors import StreamkitError

__all__ = ["BODY_DECODERS", "BodyDecodeError", "BodyMode", "StreamRecord"]

BodyMode = Literal["json", "text", "bytes"]


class BodyDecodeError(StreamkitError):
    """A record's data could not be decoded as the handler asked (JSON or UTF-8 text)."""


def _json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BodyDecodeError(f"record data is not valid JSON: {exc}") from None


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyDecodeError(f"record data is not valid UTF-8: {exc.reason} at byte {exc.start}") from None


def _bytes(data: bytes) -> bytes:
    return data


BODY_DECODERS: dict[str, Callable[[bytes], Any]] = {"json": _json, "text": _text, "bytes": _bytes}
_UNSET = object()


class StreamRecord:
    """A read-only view of one user record.

    ``body`` is the data decoded as asked (``"json"``, ``"text"`` or ``"bytes"``), on first access; a
    record that cannot be decoded raises `BodyDecodeError` there, so a handler wrapper can treat it
    as that record's failure. ``sub_sequence_number`` is the record's index inside its KPL aggregate,
    or None for a plain record.
    """

    __slots__ = ("_body", "_decode", "approximate_arrival_timestamp", "data", "event_source_arn",
                 "explicit_hash_key", "partition_key", "sequence_number", "shard_id", "sub_sequence_number")

    data: bytes
    partition_key: str
    sequence_number: str
    sub_sequence_number: int | None
    shard_id: str
    approximate_arrival_timestamp: float | None
    explicit_hash_key: str | None
    event_source_arn: str | None
    _body: Any
    _decode: Callable[[bytes], Any]

    def __init__(
        self,
        data: bytes,
        partition_key: str,
        sequence_number: str,
        sub_sequence_number: int | None = None,
        shard_id: str = "",
        approximate_arrival_timestamp: float | None = None,
        explicit_hash_key: str | None = None,
        event_source_arn: str | None = None,
        body: BodyMode = "bytes",
    ) -> None:
        _set = object.__setattr__
        _set(self, "data", data)
        _set(self, "partition_key", partition_key)
        _set(self, "sequence_number", sequence_number)
        _set(self, "sub_sequence_number", sub_sequence_number)
        _set(self, "shard_id", shard_id)
        _set(self, "approximate_arrival_timestamp", approximate_arrival_timestamp)
        _set(self, "explicit_hash_key", explicit_hash_key)
        _set(self, "event_source_arn", event_source_arn)
        _set(self, "_decode", BODY_DECODERS[body])
        _set(self, "_body", _UNSET)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"StreamRecord is read-only (tried to set {name!r})")

    @property
    def body(self) -> Any:
        b = self._body
        if b is _UNSET:
            b = self._decode(self.data)
            object.__setattr__(self, "_body", b)
        return b

    @property
    def position(self) -> tuple[str, int | None]:
        """(sequence_number, sub_sequence_number): where a checkpoint after this record points."""
        return self.sequence_number, self.sub_sequence_number

    def __repr__(self) -> str:
        sub = "" if self.sub_sequence_number is None else f"/{self.sub_sequence_number}"
        return (f"StreamRecord(shard_id={self.shard_id!r}, sequence_number={self.sequence_number}{sub}, "
                f"partition_key={self.partition_key!r}, data={self.data[:40]!r}{'...' if len(self.data) > 40 else ''})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StreamRecord):
            return NotImplemented
        return (self.data, self.partition_key, self.sequence_number, self.sub_sequence_number, self.shard_id) == (
            other.data, other.partition_key, other.sequence_number, other.sub_sequence_number, other.shard_id)

    def __hash__(self) -> int:
        return hash((self.sequence_number, self.sub_sequence_number, self.shard_id))

    def to_json(self, *, include_data: bool = True) -> dict[str, Any]:
        """Metadata (and base64 data) as plain JSON types, for dead-letter destinations."""
        import base64

        out: dict[str, Any] = {
            "shard_id": self.shard_id,
            "sequence_number": self.sequence_number,
            "sub_sequence_number": self.sub_sequence_number,
            "partition_key": self.partition_key,
            "explicit_hash_key": self.explicit_hash_key,
            "approximate_arrival_timestamp": self.approximate_arrival_timestamp,
            "event_source_arn": self.event_source_arn,
        }
        if include_data:
            out["data"] = base64.b64encode(self.data).decode("ascii")
        return out
