"""A tumbling-window aggregation as a Lambda handler: fold records into a state, hand each finished window on.

The pattern: sensors -> stream -> one aggregate per shard per window -> storage every N minutes. Lambda
(and `lambda run --tumbling-window N`) passes the window's ``state`` from invocation to invocation and
ends each window with a final invocation; this module turns two plain functions into that handler:

    def add(state: dict, record: StreamRecord) -> dict: ...      # the reducer, JSON state in and out
    def store(window: WindowResult) -> None: ...                  # once per final window

    handler = tumbling_window(add, store)

`store` is called once per final invocation, with the window's bounds, its shard and whether AWS ended it
early (its state outgrew 1 MB: several partial results then stand for that window, each to be merged).
A record that fails the reducer fails the invocation, so Lambda retries the batch from the window's last
state; `store` failing fails the final invocation, which Lambda retries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from streamkit.aws_lambda.events import parse_event
from streamkit.errors import EventFormatError
from streamkit.records import StreamRecord

__all__ = ["WindowResult", "tumbling_window"]

State = dict[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowResult:
    """One window's aggregate, as the final invocation hands it over."""

    start: str  # ISO 8601, as the event writes it
    end: str
    shard_id: str
    state: State
    terminated_early: bool


def tumbling_window(reduce: Callable[[State, StreamRecord], State], on_window: Callable[[WindowResult], None], *,
                    body: str | type[Any] = "json") -> Callable[[Mapping[str, Any], Any], dict[str, Any]]:
    """A Lambda handler ``(event, context)`` for a tumbling-window mapping: `reduce` folds each record (its
    body decoded per `body`) into the window's state; `on_window` gets each final window."""

    def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        if "window" not in event or "isFinalInvokeForWindow" not in event:
            raise EventFormatError("not a tumbling-window event: the mapping needs TumblingWindowInSeconds")
        state: State = dict(event.get("state") or {})
        if event["isFinalInvokeForWindow"]:
            window = event["window"]
            on_window(WindowResult(start=window["start"], end=window["end"], shard_id=str(event.get("shardId", "")),
                                   state=state, terminated_early=bool(event.get("isWindowTerminatedEarly"))))
            return {"state": {}}
        for record in parse_event(event, body=body):
            state = reduce(state, record)
        return {"state": state}

    return handler
