"""The plain body decoders ("json", "text", "bytes"): what `StreamRecord.body` applies, by name.

Apart from `streamkit.records` and `streamkit.bodies` (model types) so that both read them and neither
imports the other to get them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from streamkit.errors import BodyDecodeError

__all__ = ["BODY_DECODERS"]


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
