"""How a record's body is decoded: ``"json"``, ``"text"``, ``"bytes"``, or a model type validated from the bytes.

A model is a Pydantic v2 ``BaseModel``, a ``msgspec.Struct`` (decoded straight from the bytes by a
``msgspec.json.Decoder``, no intermediate dict), or a dataclass or ``TypedDict`` (through Pydantic's
``TypeAdapter.validate_json``). Each library is an extra (``streamkit[pydantic]``, ``streamkit[msgspec]``)
and is imported only when a model of its kind is used: a Pydantic model or a Struct exists only once
its library is imported, so the check looks in ``sys.modules`` and never imports one itself.

A body that does not validate raises `BodyValidationError` with its ``(field, message)`` errors: the
engines treat it as that record's failure, never retried (the same bytes fail the same way).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import typing
from collections.abc import Callable
from typing import Any, Literal

from streamkit.decoders import BODY_DECODERS
from streamkit.errors import BodyValidationError, ConfigurationError

__all__ = ["BodyMode", "BodySpec", "ModelKind", "body_decoder", "body_name", "is_model", "model_kind", "to_builtins"]

BodyMode = Literal["json", "text", "bytes"]
#: What ``body=`` takes: a mode, or a model type.
BodySpec = BodyMode | type[Any]
ModelKind = Literal["pydantic", "msgspec", "dataclass", "typeddict"]

_KINDS = "a Pydantic model, a msgspec Struct, a dataclass or a TypedDict"


def is_model(body: object) -> bool:
    """True for a model type (anything but the three modes)."""
    return not isinstance(body, str)


def body_name(body: object) -> str:
    """``"json"``, or a model's qualified name, for messages."""
    return body if isinstance(body, str) else getattr(body, "__qualname__", repr(body))


def model_kind(body: object) -> ModelKind:
    """Which library validates `body`; `ConfigurationError` (one line) for anything else."""
    if isinstance(body, type):
        pydantic = sys.modules.get("pydantic")
        if pydantic is not None and issubclass(body, pydantic.BaseModel):
            return "pydantic"
        msgspec = sys.modules.get("msgspec")
        if msgspec is not None and issubclass(body, msgspec.Struct):
            return "msgspec"
        if dataclasses.is_dataclass(body):
            return "dataclass"
        if typing.is_typeddict(body) or _is_extensions_typeddict(body):
            return "typeddict"
    raise ConfigurationError(f"body must be 'json', 'text', 'bytes' or a model type ({_KINDS}), got {body!r}")


def to_builtins(value: Any) -> Any:
    """A decoded body as something orjson can write: a Pydantic model or a msgspec Struct as plain JSON types
    (dataclasses, dicts and the rest orjson writes as they are)."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    msgspec = sys.modules.get("msgspec")
    if msgspec is not None and isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    return value


def _is_extensions_typeddict(body: type) -> bool:
    ext = sys.modules.get("typing_extensions")
    return ext is not None and bool(ext.is_typeddict(body))


def body_decoder(body: object) -> Callable[[bytes], Any]:
    """The function that turns a record's bytes into its body; checks `body` (and its library) at once."""
    if isinstance(body, str):
        decode = BODY_DECODERS.get(body)
        if decode is None:
            raise ConfigurationError(f"body must be 'json', 'text', 'bytes' or a model type ({_KINDS}), got {body!r}")
        return decode
    return _model_decoder(body)


@functools.cache
def _model_decoder(model: Any) -> Callable[[bytes], Any]:
    """One decoder per model type (building a TypeAdapter or a msgspec Decoder costs far more than using one)."""
    kind = model_kind(model)
    if kind == "msgspec":
        return _msgspec_decoder(model)
    return _pydantic_decoder(model, kind)


def _msgspec_decoder(model: type[Any]) -> Callable[[bytes], Any]:
    import msgspec

    decoder = msgspec.json.Decoder(model)
    raw = decoder.decode
    name = model.__qualname__

    def decode(data: bytes) -> Any:
        try:
            return raw(data)
        except msgspec.ValidationError as exc:
            error = _msgspec_error(str(exc))
            raise BodyValidationError(_message(name, (error,)), errors=(error,)) from None
        except msgspec.DecodeError as exc:
            error = ("", str(exc))
            raise BodyValidationError(_message(name, (error,)), errors=(error,)) from None

    return decode


def _msgspec_error(text: str) -> tuple[str, str]:
    """msgspec's one message -> (field, message): "Expected `int`, got `str` - at `$.a[0]`" -> ("a[0]", ...)."""
    message, sep, where = text.rpartition(" - at `")
    if not sep:
        message, where = text, ""
    path = where.rstrip("`").removeprefix("$").removeprefix(".")
    missing = message.partition("missing required field `")[2]
    if missing:
        path = f"{path}.{missing.rstrip('`')}" if path else missing.rstrip("`")
    return path, message


def _pydantic_decoder(model: type[Any], kind: ModelKind) -> Callable[[bytes], Any]:
    try:
        import pydantic
    except ImportError:
        raise ConfigurationError(f"body={model.__qualname__} (a {kind}) is validated by Pydantic, which is not "
                                 "installed: pip install 'streamkit[pydantic]'") from None
    try:
        validate = model.model_validate_json if kind == "pydantic" else pydantic.TypeAdapter(model).validate_json
    except pydantic.PydanticUserError as exc:  # e.g. typing.TypedDict before 3.12: typing_extensions' is needed
        first = str(exc).splitlines()[0]
        raise ConfigurationError(f"body={model.__qualname__}: Pydantic cannot validate it: {first}") from None
    name = model.__qualname__

    def decode(data: bytes) -> Any:
        try:
            return validate(data)
        except pydantic.ValidationError as exc:
            errors = tuple((_path(e["loc"]), e["msg"]) for e in exc.errors(include_url=False, include_input=False))
            raise BodyValidationError(_message(name, errors), errors=errors) from None

    return decode


def _path(loc: tuple[int | str, ...]) -> str:
    """Pydantic's location tuple as msgspec spells a path: ("a", 0, "b") -> "a[0].b"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(model: str, errors: tuple[tuple[str, str], ...]) -> str:
    first = errors[0] if errors else ("", "invalid")
    where = f"{first[0]}: " if first[0] else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"record body is not a valid {model}: {where}{first[1]}{more}"
