"""Type checks for the frozen config dataclasses: a value of the wrong type, NaN or infinity is a
`ConfigurationError` naming the field, before anything else looks at it. Pure."""

from __future__ import annotations

import math
import sys
import typing
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from streamkit.errors import ConfigurationError

__all__ = ["check_fields", "seconds"]

_NAMES: dict[str, Any] = {"timedelta": timedelta, "datetime": datetime, "Any": Any, "Literal": typing.Literal}


def _accepts(value: Any, hint: Any) -> bool | None:
    """True/False when `hint` says; None when it says nothing checkable (callables, protocols, Any)."""
    if hint is Any:
        return None
    origin = typing.get_origin(hint)
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        verdicts = [_accepts(value, h) for h in typing.get_args(hint)]
        if any(v is True for v in verdicts):
            return True
        return None if any(v is None for v in verdicts) else False
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if hint in (str, timedelta, datetime):
        return isinstance(value, hint)
    return None


def seconds(owner: str, name: str, value: float | timedelta, *, minimum: float = 0.0) -> float:
    """A duration given as seconds or a `timedelta`, as float seconds; below `minimum` is a ConfigurationError."""
    s = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if s < minimum:
        raise ConfigurationError(f"{owner}.{name} must be at least {minimum:g} s, got {s}")
    return s


def check_fields(config: Any) -> None:
    cls = type(config)
    namespace = {**vars(sys.modules[cls.__module__]), **_NAMES}
    for f in fields(config):
        if not f.init:
            continue  # derived from the others, set after the check
        try:
            hint = eval(f.type, namespace) if isinstance(f.type, str) else f.type
        except NameError:
            continue  # a name only imported for type checking (a callable's argument type): nothing to check
        value = getattr(config, f.name)
        if _accepts(value, hint) is False:
            shown = "NaN" if isinstance(value, float) and math.isnan(value) else repr(value)
            raise ConfigurationError(f"{cls.__name__}.{f.name} must be {_describe(hint)}, got {shown}")


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(hint))
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        return " or ".join(_describe(h) for h in typing.get_args(hint) if h is not type(None)) + \
            (" or None" if type(None) in typing.get_args(hint) else "")
    names = {bool: "True or False", int: "a whole number", float: "a finite number",
             str: "a string", timedelta: "a timedelta", datetime: "a datetime"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))
