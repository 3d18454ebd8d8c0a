"""The sink side of the metrics: what a point is, the `MetricsSink` interface, and the levels. Pure types.

`streamkit.metrics.base` (the recorder) and each sink (`emf`, `cloudwatch`, `prometheus`, chosen by
`spec`) import this module, and not each other, so the recorder and the sinks form no import loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = ["LEVELS", "MAX_VALUES", "Kind", "Level", "MetricsSink", "NullSink", "Point"]

Level = Literal["none", "summary", "detailed"]
LEVELS: tuple[Level, ...] = ("none", "summary", "detailed")
Kind = Literal["counter", "gauge", "timing"]
#: Values kept per timing between two flushes (EMF takes at most 100 per metric; the rest are summarised).
MAX_VALUES = 100


@dataclass(slots=True)
class Point:
    """One metric's aggregate since the last flush, for one set of dimensions."""

    name: str
    kind: Kind
    unit: str
    dimensions: tuple[tuple[str, str], ...]
    values: list[float] = field(default_factory=list)  # counter: [sum]; gauge: [last]; timing: samples
    count: int = 0  # how many times it was recorded (a timing's sample count, beyond MAX_VALUES too)
    #: A timing's sum over every sample, also those beyond the MAX_VALUES kept in `values`.
    total: float = 0.0


class MetricsSink(Protocol):
    """Where aggregated points go. `publish` is called by the recorder's flushes, which may come from two
    threads at once (the background flush and an engine's own): every sink here takes its own lock."""

    #: Seconds between flushes the sink wants (a pull sink such as Prometheus wants them often).
    interval: float

    def publish(self, namespace: str, points: Sequence[Point], timestamp_ms: int) -> None: ...

    def close(self) -> None: ...


class NullSink:
    """Publishes nothing; with it the recorder records nothing (`Metrics.enabled` is False)."""

    interval = 60.0

    def publish(self, namespace: str, points: Sequence[Point], timestamp_ms: int) -> None:
        return None

    def close(self) -> None:
        return None
