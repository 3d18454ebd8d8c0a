"""StreamRecord: one user record as a consumer or a Lambda handler sees it, after deaggregation."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Generic, Literal

import orjson

from streamkit.decoders import BODY_DECODERS, _json, _text
from streamkit.errors import BodyDecodeError

__all__ = ["BODY_DECODERS", "BodyDecodeError", "BodyMode", "StreamRecord"]

BodyMode = Literal["json", "text", "bytes"]

if TYPE_CHECKING:
    # The body's type defaults to Any, so a bare `StreamRecord` stays what it always was (PEP 696; the
    # runtime TypeVar of 3.11 takes no default, and typing_extensions is not imported in a Lambda).
    from typing_extensions import TypeVar

    BodyT = TypeVar("BodyT", default=Any)
else:
    from typing import TypeVar

    BodyT = TypeVar("BodyT")


#: What a record calls to decode its body: for json and text the C decoders themselves, no Python frame
#: between (a third of `body`'s cost went to one); `StreamRecord.body` turns their errors into
#: BodyDecodeError, with the same words as `_json` and `_text`.
_RECORD_DECODERS: dict[Callable[[bytes], Any], Callable[[bytes], Any]] = {_json: orjson.loads, _text: bytes.decode}


def record_decoder(decode: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """The decoder a StreamRecord keeps for `decode` (one of BODY_DECODERS, or a model's)."""
    return _RECORD_DECODERS.get(decode, decode)


def decoder_for(body: BodyMode | type[Any]) -> Callable[[bytes], Any]:
    """What a StreamRecord with `body` keeps to decode it; a model type (or a bad value) goes to `streamkit.bodies`."""
    decode = BODY_DECODERS.get(body)  # type: ignore[arg-type]
    if decode is None:
        from streamkit.bodies import body_decoder  # a model type (or a bad value: ConfigurationError)

        decode = body_decoder(body)
    return record_decoder(decode)


def _body_error(exc: ValueError) -> BodyDecodeError:
    if isinstance(exc, UnicodeDecodeError):
        return BodyDecodeError(f"record data is not valid UTF-8: {exc.reason} at byte {exc.start}")
    return BodyDecodeError(f"record data is not valid JSON: {exc}")
_UNSET = object()


class StreamRecord(Generic[BodyT]):
    """A read-only view of one user record.

    ``body`` is the data decoded as asked (``"json"``, ``"text"``, ``"bytes"``, or a model type:
    `streamkit.bodies`), on first access; a record that cannot be decoded raises `BodyDecodeError`
    there (`BodyValidationError` for a model), so a handler wrapper can treat it as that record's
    failure. ``StreamRecord[Model]`` tells a type checker what ``body`` is. ``sub_sequence_number`` is
    the record's index inside its KPL aggregate, or None for a plain record. Attributes cannot be assigned.
    """

    __slots__ = ("_arn", "_body", "_data", "_decode", "_ehk", "_pk", "_seq", "_shard", "_sub", "_ts")

    def __init__(
        self,
        data: bytes,
        partition_key: str | None,
        sequence_number: str,
        sub_sequence_number: int | None = None,
        shard_id: str = "",
        approximate_arrival_timestamp: float | None = None,
        explicit_hash_key: str | None = None,
        event_source_arn: str | None = None,
        body: BodyMode | type[Any] = "bytes",
    ) -> None:
        self._data = data
        self._pk = partition_key
        self._seq = sequence_number
        self._sub = sub_sequence_number
        self._shard = shard_id
        self._ts = approximate_arrival_timestamp
        self._ehk = explicit_hash_key
        self._arn = event_source_arn
        self._decode = decoder_for(body)
        self._body = _UNSET

    # Read-only fields: properties over private slots (attrgetter keeps reads at C speed).
    data: bytes = property(attrgetter("_data"))  # type: ignore[assignment]
    #: None for a record written without a key (AUTO streams).
    partition_key: str | None = property(attrgetter("_pk"))  # type: ignore[assignment]
    sequence_number: str = property(attrgetter("_seq"))  # type: ignore[assignment]
    sub_sequence_number: int | None = property(attrgetter("_sub"))  # type: ignore[assignment]
    shard_id: str = property(attrgetter("_shard"))  # type: ignore[assignment]
    approximate_arrival_timestamp: float | None = property(attrgetter("_ts"))  # type: ignore[assignment]
    explicit_hash_key: str | None = property(attrgetter("_ehk"))  # type: ignore[assignment]
    event_source_arn: str | None = property(attrgetter("_arn"))  # type: ignore[assignment]

    @classmethod
    def _fast(cls, data: bytes, partition_key: str | None, sequence_number: str, sub_sequence_number: int | None,
              shard_id: str, approximate_arrival_timestamp: float | None, explicit_hash_key: str | None,
              event_source_arn: str | None, decode: Callable[[bytes], Any]) -> StreamRecord[Any]:
        """Internal constructor for trusted, already-typed fields (the hot path of event parsing)."""
        rec = _new(cls)
        rec._data = data
        rec._pk = partition_key
        rec._seq = sequence_number
        rec._sub = sub_sequence_number
        rec._shard = shard_id
        rec._ts = approximate_arrival_timestamp
        rec._ehk = explicit_hash_key
        rec._arn = event_source_arn
        rec._decode = decode
        rec._body = _UNSET
        return rec

    def _with_decoder(self, decode: Callable[[bytes], Any]) -> StreamRecord[Any]:
        """The same record, its body decoded by `decode` (a target with a model of its own)."""
        return self._fast(self._data, self._pk, self._seq, self._sub, self._shard, self._ts, self._ehk, self._arn,
                          decode)

    @property
    def body(self) -> BodyT:
        b: Any = self._body
        if b is _UNSET:
            try:
                b = self._body = self._decode(self._data)
            except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                raise _body_error(exc) from None
        return b  # type: ignore[no-any-return]

    @property
    def stream_name(self) -> str | None:
        """The stream the record was read from (from `event_source_arn`; None when that is unknown)."""
        arn = self._arn
        if arn is None:
            return None
        return arn.rpartition("/")[2] if ":stream/" in arn else arn

    @property
    def position(self) -> tuple[str, int | None]:
        """(sequence_number, sub_sequence_number): where a checkpoint after this record points."""
        return self._seq, self._sub

    def __repr__(self) -> str:
        sub = "" if self._sub is None else f"/{self._sub}"
        more = "..." if len(self._data) > 40 else ""
        return (f"StreamRecord(shard_id={self._shard!r}, sequence_number={self._seq}{sub}, "
                f"partition_key={self._pk!r}, data={self._data[:40]!r}{more})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StreamRecord):
            return NotImplemented
        return (self._data, self._pk, self._seq, self._sub, self._shard) == (
            other._data, other._pk, other._seq, other._sub, other._shard)

    def __hash__(self) -> int:
        return hash((self._seq, self._sub, self._shard))

    def to_json(self, *, include_data: bool = True) -> dict[str, Any]:
        """Metadata (and base64 data) as plain JSON types, for dead-letter destinations."""
        import base64

        out: dict[str, Any] = {
            "shard_id": self._shard,
            "sequence_number": self._seq,
            "sub_sequence_number": self._sub,
            "partition_key": self._pk,
            "explicit_hash_key": self._ehk,
            "approximate_arrival_timestamp": self._ts,
            "event_source_arn": self._arn,
        }
        if include_data:
            out["data"] = base64.b64encode(self._data).decode("ascii")
        return out


_new = object.__new__
_new_record = _new  # for the Lambda event's fast path, which fills the slots itself
