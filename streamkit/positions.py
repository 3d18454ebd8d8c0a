"""Read positions, spelled one way by every command that takes one. Pure.

    trim-horizon | latest | at-timestamp:ISO-8601 | at-sequence:SEQUENCE_NUMBER

Hyphens or underscores, any case (``TRIM_HORIZON``, ``At_Timestamp:2026-01-01T00:00:00Z``). A time
without a zone is UTC. `parse_position` raises `ConfigurationError` with one line naming what is
accepted; a command that takes only some kinds passes them as `accept` (Lambda's event source mapping
has no AT_SEQUENCE_NUMBER start, for one).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from streamkit.errors import ConfigurationError
from streamkit.transport import IteratorStart

__all__ = ["KINDS", "POSITION_HELP", "PositionKind", "ReadPosition", "parse_position"]

PositionKind = Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "AT_SEQUENCE_NUMBER"]

#: Every kind, in the order help texts list them.
KINDS: tuple[PositionKind, ...] = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "AT_SEQUENCE_NUMBER")

_SPELLING: dict[PositionKind, str] = {
    "TRIM_HORIZON": "trim-horizon",
    "LATEST": "latest",
    "AT_TIMESTAMP": "at-timestamp:ISO",
    "AT_SEQUENCE_NUMBER": "at-sequence:SEQ",
}

#: The accepted spellings, for --help texts.
POSITION_HELP = " | ".join(_SPELLING.values())

# A sequence number: decimal digits, at most 129 (AWS's StartingSequenceNumber; leading zeros are left to the server).
_SEQUENCE = re.compile(r"^\d{1,129}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class ReadPosition:
    """Where reading a shard starts: a kind, with its time (AT_TIMESTAMP, UTC) or sequence number."""

    kind: PositionKind
    timestamp: datetime | None = None
    sequence_number: str | None = None

    @property
    def epoch_seconds(self) -> float | None:
        return None if self.timestamp is None else self.timestamp.timestamp()

    def iterator_start(self) -> IteratorStart:
        """The GetShardIterator start for this position (at a sequence number: that record included)."""
        return IteratorStart(type=self.kind, timestamp=self.epoch_seconds, sequence_number=self.sequence_number)

    def __str__(self) -> str:
        if self.kind == "AT_TIMESTAMP" and self.timestamp is not None:
            return f"at-timestamp:{self.timestamp.isoformat()}"
        if self.kind == "AT_SEQUENCE_NUMBER":
            return f"at-sequence:{self.sequence_number}"
        return _SPELLING[self.kind]


def parse_position(text: str, *, accept: Collection[PositionKind] = KINDS, option: str = "--from") -> ReadPosition:
    """The position `text` spells; `ConfigurationError` (one line, naming `option`) if it spells none of `accept`."""
    allowed = " | ".join(_SPELLING[k] for k in KINDS if k in accept)
    head, sep, value = text.strip().partition(":")
    word = head.strip().lower().replace("_", "-")
    kind: PositionKind | None = {
        "trim-horizon": "TRIM_HORIZON", "latest": "LATEST", "at-timestamp": "AT_TIMESTAMP",
        "at-sequence": "AT_SEQUENCE_NUMBER", "at-sequence-number": "AT_SEQUENCE_NUMBER",
    }.get(word)  # type: ignore[assignment]
    if kind is None:
        raise ConfigurationError(f"{option} {text!r}: use {allowed}")
    if kind not in accept:
        raise ConfigurationError(f"{option} {text!r}: {_SPELLING[kind].split(':')[0]} is not accepted here; use {allowed}")
    value = value.strip()
    if kind in ("TRIM_HORIZON", "LATEST"):
        if sep:
            raise ConfigurationError(f"{option} {text!r}: {_SPELLING[kind]} takes no value")
        return ReadPosition(kind=kind)
    if not value:
        raise ConfigurationError(f"{option} {text!r}: write it as {_SPELLING[kind]}")
    if kind == "AT_SEQUENCE_NUMBER":
        if not _SEQUENCE.match(value):
            raise ConfigurationError(f"{option} {text!r}: a sequence number is a decimal number (up to 129 digits)")
        return ReadPosition(kind=kind, sequence_number=value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigurationError(
            f"{option} {text!r}: the time must be ISO 8601, e.g. at-timestamp:2026-01-31T12:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return ReadPosition(kind=kind, timestamp=when.astimezone(UTC))
