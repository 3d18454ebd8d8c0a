"""FilterCriteria for a Kinesis event source mapping, as AWS documents it ("Using event filtering with a
Kinesis event source"). Pure.

- At most `ESM_FILTERS_MAX` patterns (AWS's default quota), ORed; the rule syntax is `streamkit.filters`.
- Kinesis mappings filter on the ``data`` key only: a pattern testing any other key is refused.
- A record's data is decoded as JSON and matched as ``{"data": <decoded>}``; data that is not JSON
  never matches a data pattern, so the record is dropped.
- A record no pattern matches is not delivered; the mapping's position moves past it (never a failure).
- KPL aggregates: AWS applies filters to aggregated records only with an enhanced fan-out source;
  polled, an aggregate is not JSON and is dropped like any non-JSON data. From an enhanced fan-out
  source an aggregate is delivered when any of its user records matches (our reading of "Lambda then
  filters the aggregated records and passes only those records that meet your filter criteria": the
  event carries Kinesis records, so the aggregate is passed whole).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streamkit.aggregation import decode, is_aggregated
from streamkit.errors import ConfigurationError
from streamkit.filters import Pattern, compile_pattern, decode_json, match_any
from streamkit.limits import ESM_FILTERS_MAX

__all__ = ["RecordFilter", "compile_criteria"]

DATA_KEY = "data"


def compile_criteria(patterns: Sequence[str | Mapping[str, Any]]) -> tuple[Pattern, ...]:
    """Check a mapping's filter patterns; `ConfigurationError` (one line) for the first invalid one."""
    if len(patterns) > ESM_FILTERS_MAX:
        raise ConfigurationError(f"at most {ESM_FILTERS_MAX} filter patterns per event source mapping "
                                 f"(AWS's default quota), got {len(patterns)}")
    compiled = []
    for i, text in enumerate(patterns, 1):
        pattern = compile_pattern(text)
        other = sorted(pattern.keys() - {DATA_KEY})
        if other:
            raise ConfigurationError(f"invalid filter pattern {i}: a Kinesis event source mapping filters on the "
                                     f'"data" key only, not {", ".join(other)}')
        compiled.append(pattern)
    return tuple(compiled)


class RecordFilter:
    """Decides, per Kinesis record (GetRecords shape), whether the mapping delivers it."""

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        self.patterns = tuple(patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def keep(self, data: bytes, *, enhanced_fan_out: bool = False) -> bool:
        """The record's data matches a pattern (always True without patterns). From an enhanced fan-out
        source, a KPL aggregate is kept when any of its user records matches (AWS filters aggregated records
        only there; the function still receives the aggregate, as it always receives Kinesis records)."""
        if not self.patterns:
            return True
        if enhanced_fan_out and is_aggregated(data):
            return any(self.keep(u.data) for u in decode(data, ""))
        try:
            decoded = decode_json(data)
        except ValueError:
            return False  # not JSON (a KPL aggregate among them): a data pattern never matches it
        return match_any(self.patterns, {DATA_KEY: decoded})

    @staticmethod
    def meets_aggregate(data: bytes) -> bool:
        return is_aggregated(data)
