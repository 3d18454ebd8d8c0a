"""Fault specifications for the local proxy: what to inject and how often. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from streamkit.errors import ConfigurationError

__all__ = ["FAULT_KEYS", "FaultSpec", "parse_duration", "parse_fault_spec"]

FAULT_KEYS = {
    "internal": "probability a request is answered 500 InternalFailure",
    "unavailable": "probability a request is answered 503 ServiceUnavailable",
    "reset": "probability the connection is reset without an answer",
    "latency": "added latency per request, e.g. 20ms or 10ms~50ms (uniform)",
    "throttle": "probability of ProvisionedThroughputExceeded: per entry in PutRecords, per call elsewhere",
    "entry-failure": "probability of a per-entry InternalFailure in PutRecords",
    "expired": "probability GetRecords answers ExpiredIteratorException",
    "seed": "random seed, for repeatable runs",
}


@dataclass(frozen=True, kw_only=True)
class FaultSpec:
    internal: float = 0.0
    unavailable: float = 0.0
    reset: float = 0.0
    latency_min: float = 0.0
    latency_max: float = 0.0
    throttle: float = 0.0
    entry_failure: float = 0.0
    expired: float = 0.0
    seed: int | None = None

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self) if f.name != "seed")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds from ``"250ms"``, ``"1.5s"`` or ``"2"`` (seconds)."""
    m = _DURATION.match(text)
    if not m:
        raise ConfigurationError(f"bad duration {text!r}: use e.g. 250ms or 1.5s")
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value


def _probability(key: str, text: str) -> float:
    try:
        p = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise ConfigurationError(f"fault {key}={text!r}: expected a probability such as 0.05 or 5%") from None
    if not 0.0 <= p <= 1.0:
        raise ConfigurationError(f"fault {key}={text!r}: probability must be between 0 and 1")
    return p


def parse_fault_spec(spec: str) -> FaultSpec:
    """Parse ``"throttle=0.2,internal=0.05,reset=0.01,latency=5ms~20ms,seed=7"``; empty means none."""
    values: dict[str, object] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in FAULT_KEYS:
            known = ", ".join(FAULT_KEYS)
            raise ConfigurationError(f"bad fault {item!r}: expected KEY=VALUE with KEY one of {known}")
        value = value.strip()
        if key == "latency":
            lo, _, hi = value.partition("~")
            values["latency_min"] = parse_duration(lo)
            values["latency_max"] = parse_duration(hi) if hi else values["latency_min"]
            if values["latency_max"] < values["latency_min"]:  # type: ignore[operator]
                raise ConfigurationError(f"fault latency={value!r}: the range must go from low to high")
        elif key == "seed":
            try:
                values["seed"] = int(value)
            except ValueError:
                raise ConfigurationError(f"fault seed={value!r}: expected an integer") from None
        else:
            values[key.replace("-", "_")] = _probability(key, value)
    return FaultSpec(**values)  # type: ignore[arg-type]
