"""Tumbling windows as AWS documents them ("Using tumbling windows with Kinesis"): the decisions. Pure.

- Records are grouped into windows of TumblingWindowInSeconds by their arrival time; a batch never
  spans two windows (`esm_lanes.take_batch`).
- The function returns ``state`` with every invocation, and the next invocation of the window gets it
  back; a response without ``state`` is a failed invocation.
- When the window ends (a later record arrived, the clock passed its end, or its shard ended: a split
  or merge closes the parent's windows, and the children start with fresh state) Lambda makes one
  final invocation with no records and ``isFinalInvokeForWindow: true``.
- State is limited to 1 MB: a response whose state is larger ends the window early: a final invocation
  with that state and ``isWindowTerminatedEarly: true``; the window's later records start afresh.
- A failed final invocation is retried as a batch is (MaximumRetryAttempts; forever by default, the shard
  waiting); once the retries run out the window's state is given up, and said.
"""

from __future__ import annotations

from typing import Any

import orjson

from streamkit.limits import ESM_WINDOW_STATE_MAX

__all__ = ["final_gives_up", "state_size", "terminates_early"]


def state_size(state: Any) -> int:
    """Bytes of `state` as JSON (what the 1 MB limit measures); a state that is not JSON counts as too large."""
    try:
        return len(orjson.dumps(state))
    except TypeError:
        return ESM_WINDOW_STATE_MAX + 1


def terminates_early(state: Any, *, limit: int = ESM_WINDOW_STATE_MAX) -> bool:
    return state_size(state) > limit


def final_gives_up(failures: int, max_retry_attempts: int) -> bool:
    """After `failures` failed final invocations of a window: stop retrying it?"""
    return max_retry_attempts >= 0 and failures > max_retry_attempts
