"""Event filter patterns, with the rule syntax Lambda's event filtering shares with EventBridge. Pure.

A pattern is a JSON object. A key whose value is an object matches the event's nested object of that
name; a key whose value is a list is a leaf, matched when the event's value there matches any item of
the list; keys are ANDed, and ``"$or": [pattern, pattern, ...]`` matches when any of its patterns does.
Leaf items:

    "Alice" / 100 / true / null    equals (strings character by character; a number by its JSON
                                   spelling, so 300, 300.0 and 3.0e2 differ, as AWS documents)
    {"prefix": "us-"}              begins with      ({"prefix": {"equals-ignore-case": "us-"}} too)
    {"suffix": ".png"}             ends with        ({"suffix": {"equals-ignore-case": ".png"}} too)
    {"equals-ignore-case": "ok"}   equals, case folded
    {"wildcard": "dir/*.png"}      ``*`` for any run of characters (``\\*`` a star itself)
    {"anything-but": ...}          a value, a list of values, or {"prefix"|"suffix"|"equals-ignore-case"|
                                   "wildcard": ...}: the field exists and matches none of them
    {"numeric": [">", 10, "<=", 20]}   a number in range (=, <, <=, >, >=; at most one lower and one upper)
    {"exists": true|false}         the field is (is not) there as a leaf
    {"cidr": "10.0.0.0/24"}        an IP address in the block

An event value that is a list matches when any of its items does. `compile_pattern` checks a pattern
once and raises `ConfigurationError` naming what is wrong; `Pattern.matches` never raises.
`decode_json` reads JSON keeping each number's spelling, so equality by spelling holds for data read
from bytes; plain Python ints and floats compare by their JSON spelling too.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streamkit.errors import ConfigurationError

__all__ = ["JsonNumber", "Pattern", "compile_pattern", "decode_json", "match_any"]

_MISSING = object()


class JsonNumber(float):
    """A JSON number that remembers how it was written (AWS compares numbers by spelling for equality)."""

    text: str

    def __new__(cls, text: str) -> JsonNumber:
        value = super().__new__(cls, text)
        value.text = text
        return value


def decode_json(data: bytes | str) -> Any:
    """JSON to Python, numbers as `JsonNumber`; raises ValueError when `data` is not JSON."""
    return json.loads(data, parse_int=JsonNumber, parse_float=JsonNumber, parse_constant=_no_constant)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _spelling(value: Any) -> str:
    """The JSON spelling of a number: the text it was read from, else json.dumps's."""
    return value.text if isinstance(value, JsonNumber) else json.dumps(value)


Leaf = Callable[[Any], bool]  # a value that is present (not a list) -> matches?


def _fail(message: str) -> ConfigurationError:
    return ConfigurationError(f"invalid filter pattern: {message}")


# -- leaf matchers ---------------------------------------------------------------------------------
def _equals(expected: Any) -> Leaf:
    if expected is None:
        return lambda v: v is None
    if isinstance(expected, bool):
        return lambda v: isinstance(v, bool) and v is expected
    if _is_number(expected):
        text = _spelling(expected)
        return lambda v: _is_number(v) and _spelling(v) == text
    if isinstance(expected, str):
        return lambda v: isinstance(v, str) and v == expected
    raise _fail(f"a leaf list holds strings, numbers, booleans, null or matcher objects, not {json.dumps(expected)}")


def _text_operand(name: str, operand: Any) -> tuple[str, bool]:
    """A prefix/suffix operand: a string, or {"equals-ignore-case": string}. Returns (text, ignore_case)."""
    if isinstance(operand, str):
        return operand, False
    if isinstance(operand, Mapping) and list(operand) == ["equals-ignore-case"] and \
            isinstance(operand["equals-ignore-case"], str):
        return operand["equals-ignore-case"], True
    raise _fail(f'"{name}" takes a string or {{"equals-ignore-case": string}}')


def _affix(name: str, operand: Any) -> Leaf:
    text, fold = _text_operand(name, operand)
    if fold:
        text = text.casefold()
    check = str.startswith if name == "prefix" else str.endswith
    return lambda v: isinstance(v, str) and check(v.casefold() if fold else v, text)


def _ignore_case(operand: Any) -> Leaf:
    if not isinstance(operand, str):
        raise _fail('"equals-ignore-case" takes a string')
    folded = operand.casefold()
    return lambda v: isinstance(v, str) and v.casefold() == folded


def _wildcard(operand: Any) -> Leaf:
    if not isinstance(operand, str):
        raise _fail('"wildcard" takes a string')
    if "**" in operand.replace("\\*", ""):
        raise _fail(f'"wildcard" {operand!r}: consecutive * are not allowed')
    parts = re.split(r"(\\\*|\\\\|\*)", operand)
    regex = "".join(".*" if p == "*" else re.escape(p[1:] if p in ("\\*", "\\\\") else p) for p in parts)
    compiled = re.compile(regex, re.DOTALL)
    return lambda v: isinstance(v, str) and compiled.fullmatch(v) is not None


_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _numeric(operand: Any) -> Leaf:
    if not isinstance(operand, list) or not operand or len(operand) % 2:
        raise _fail('"numeric" takes a list of operator, number pairs, e.g. [">", 0, "<=", 5]')
    checks: list[tuple[Callable[[float, float], bool], float]] = []
    lower = upper = 0
    for op, bound in zip(operand[::2], operand[1::2], strict=True):
        if op not in _NUMERIC_OPS or not _is_number(bound) or not math.isfinite(bound):
            raise _fail(f'"numeric" {json.dumps(operand)}: operators are = < <= > >=, each followed by a number')
        lower += op in (">", ">=")
        upper += op in ("<", "<=")
        checks.append((_NUMERIC_OPS[op], float(bound)))
    if lower > 1 or upper > 1 or (("=" in operand[::2]) and len(checks) > 1):
        raise _fail(f'"numeric" {json.dumps(operand)}: at most one lower and one upper bound, or one "="')
    return lambda v: _is_number(v) and all(check(float(v), bound) for check, bound in checks)


def _cidr(operand: Any) -> Leaf:
    try:
        network = ipaddress.ip_network(operand, strict=False)
    except (TypeError, ValueError):
        raise _fail(f'"cidr" {json.dumps(operand)} is not an IP block') from None

    def match(v: Any) -> bool:
        try:
            return isinstance(v, str) and ipaddress.ip_address(v) in network
        except ValueError:
            return False
    return match


def _anything_but(operand: Any) -> Leaf:
    if isinstance(operand, Mapping):
        if len(operand) != 1 or next(iter(operand)) not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            raise _fail('"anything-but" takes a value, a list, or one of prefix, suffix, equals-ignore-case, wildcard')
        inner = _matcher_object(dict(operand))
        return lambda v: not inner(v)
    values = operand if isinstance(operand, list) else [operand]
    if not values or any(isinstance(x, Mapping | list) for x in values):
        raise _fail('"anything-but" takes a value or a non-empty list of values')
    excluded = [_equals(x) for x in values]
    return lambda v: not any(e(v) for e in excluded)


_OBJECT_MATCHERS: dict[str, Callable[[Any], Leaf]] = {
    "prefix": lambda o: _affix("prefix", o),
    "suffix": lambda o: _affix("suffix", o),
    "equals-ignore-case": _ignore_case,
    "wildcard": _wildcard,
    "numeric": _numeric,
    "anything-but": _anything_but,
    "cidr": _cidr,
}


def _matcher_object(item: dict[str, Any]) -> Leaf:
    if len(item) != 1:
        raise _fail(f"a matcher object has exactly one key, got {json.dumps(item)}")
    name, operand = next(iter(item.items()))
    if name not in _OBJECT_MATCHERS:
        raise _fail(f'unknown matcher "{name}" (known: {", ".join([*_OBJECT_MATCHERS, "exists"])})')
    return _OBJECT_MATCHERS[name](operand)


# -- the pattern tree --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Field:
    """A leaf: the value at `key` matches any of `matchers`; `exists` is True/False for an exists test."""

    key: str
    matchers: tuple[Leaf, ...]
    exists: tuple[bool, ...]

    def matches(self, doc: Mapping[str, Any]) -> bool:
        value = doc.get(self.key, _MISSING)
        leaf_present = value is not _MISSING and not isinstance(value, Mapping)
        if any(want == leaf_present for want in self.exists):
            return True
        if value is _MISSING:
            return False
        values = value if isinstance(value, list) else [value]
        return any(m(v) for v in values for m in self.matchers)


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern: `matches(document)` for a decoded JSON object."""

    fields: tuple[_Field, ...]
    nested: tuple[tuple[str, Pattern], ...]
    any_of: tuple[tuple[Pattern, ...], ...]
    source: Any = None

    def matches(self, doc: Any) -> bool:
        if not isinstance(doc, Mapping):
            return False
        if not all(f.matches(doc) for f in self.fields):
            return False
        for key, sub in self.nested:
            value = doc.get(key, _MISSING)
            # A missing or leaf value is an object without fields there (so {"exists": false} inside holds).
            candidates = (value or [{}]) if isinstance(value, list) else [value]
            if not any(sub.matches(c if isinstance(c, Mapping) else {}) for c in candidates):
                return False
        return all(any(p.matches(doc) for p in alternatives) for alternatives in self.any_of)

    def keys(self) -> set[str]:
        """The top-level keys the pattern tests ($or alternatives included)."""
        found = {f.key for f in self.fields} | {k for k, _ in self.nested}
        for alternatives in self.any_of:
            for p in alternatives:
                found |= p.keys()
        return found


def _leaf(key: str, items: list[Any]) -> _Field:
    if not items:
        raise _fail(f'"{key}": a leaf list must not be empty')
    matchers: list[Leaf] = []
    exists: list[bool] = []
    for item in items:
        if isinstance(item, Mapping):
            if list(item) == ["exists"]:
                if not isinstance(item["exists"], bool):
                    raise _fail(f'"{key}": "exists" takes true or false')
                exists.append(item["exists"])
            else:
                matchers.append(_matcher_object(dict(item)))
        elif isinstance(item, list):
            raise _fail(f'"{key}": a leaf list holds values or matcher objects, not lists')
        else:
            matchers.append(_equals(item))
    return _Field(key, tuple(matchers), tuple(exists))


def _compile(tree: Any, path: str) -> Pattern:
    if not isinstance(tree, Mapping):
        raise _fail(f"{path or 'the pattern'} must be a JSON object")
    if not tree:
        raise _fail(f"{path or 'the pattern'} is empty")
    fields: list[_Field] = []
    nested: list[tuple[str, Pattern]] = []
    any_of: list[tuple[Pattern, ...]] = []
    for key, value in tree.items():
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise _fail(f'"{where}" takes a list of at least two patterns')
            any_of.append(tuple(_compile(v, where) for v in value))
        elif isinstance(value, list):
            fields.append(_leaf(key, value))
        elif isinstance(value, Mapping):
            nested.append((key, _compile(value, where)))
        else:
            raise _fail(f'"{where}" must be a list of values or a nested object, got {json.dumps(value)}')
    return Pattern(tuple(fields), tuple(nested), tuple(any_of))


def compile_pattern(pattern: str | bytes | Mapping[str, Any]) -> Pattern:
    """Check and compile one pattern (JSON text or a decoded object); `ConfigurationError` if it is invalid."""
    if isinstance(pattern, str | bytes):
        try:
            tree = decode_json(pattern)
        except ValueError as exc:
            raise _fail(f"not JSON ({exc})") from None
    else:
        tree = pattern
    compiled = _compile(tree, "")
    return Pattern(compiled.fields, compiled.nested, compiled.any_of, source=tree)


def match_any(patterns: Sequence[Pattern], doc: Any) -> bool:
    """Patterns are ORed: `doc` passes when any matches."""
    return any(p.matches(doc) for p in patterns)
