"""The metrics AWS publishes for an event source mapping, under AWS's names and dimensions.

With ``MetricsConfig: {Metrics: [EventCount]}`` AWS publishes, per mapping (dimension
``EventSourceMappingUUID``): PolledEventCount, FilteredOutEventCount, InvokedEventCount,
FailedInvokeEventCount, DroppedEventCount, OnFailureDestinationDeliveredEventCount; and IteratorAge
(milliseconds, dimension ``FunctionName``) for stream sources. The emulator records them beside
streamkit's own through the same recorder (AWS's own ``AWS/Lambda`` namespace cannot be written to).
"""

from __future__ import annotations

import uuid

from streamkit.metrics.base import Metrics

__all__ = ["EVENT_COUNT_METRICS", "MappingMetrics", "mapping_uuid"]

EVENT_COUNT_METRICS = ("PolledEventCount", "FilteredOutEventCount", "InvokedEventCount", "FailedInvokeEventCount",
                       "DroppedEventCount", "OnFailureDestinationDeliveredEventCount")

_NAMESPACE = uuid.UUID("6f1c2d8e-3a4b-4c5d-9e6f-7a8b9c0d1e2f")


def mapping_uuid(function_name: str, stream_name: str) -> str:
    """A stable UUID for the local mapping of `function_name` to `stream_name` (AWS gives each mapping one)."""
    return str(uuid.uuid5(_NAMESPACE, f"{function_name}\0{stream_name}"))


class MappingMetrics:
    """Records AWS's mapping metrics on `recorder` (nothing when it is disabled)."""

    def __init__(self, recorder: Metrics, *, function_name: str, uuid: str) -> None:
        self._recorder = recorder
        self.uuid = uuid
        self.enabled = recorder.enabled
        self._mapping = (("EventSourceMappingUUID", uuid),)
        self._function = (("FunctionName", function_name),)

    def events(self, **counts: int) -> None:
        """Add to EventCount metrics by name, e.g. ``events(PolledEventCount=10)``; zeros are recorded too."""
        if not self.enabled:
            return
        for name, value in counts.items():
            self._recorder.record("counter", name, value, "Count", self._mapping)

    def iterator_age(self, milliseconds: float) -> None:
        if self.enabled:
            self._recorder.record("gauge", "IteratorAge", milliseconds, "Milliseconds", self._function)
