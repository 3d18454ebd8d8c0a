"""The Clock seam: every wait and every reading of time in the engines goes through one of these.

`SYSTEM_CLOCK` is the real one. `streamkit.testing.FakeClock` moves only when told to (its waits
return at once and advance it), so engines run in unit tests with no real sleeps.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from streamkit.errors import ConfigurationError

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "as_clock"]


@runtime_checkable
class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (record ages, event timestamps)."""
        ...

    def sleep(self, seconds: float) -> None: ...

    def wait(self, event: threading.Event, seconds: float | None) -> bool:
        """Wait up to `seconds` for `event`; True if it is set (a stop that cuts a pause short)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float | None) -> bool:
        return event.wait(seconds)


SYSTEM_CLOCK = SystemClock()


class _CallableClock(SystemClock):
    """A bare ``() -> float`` monotonic function (the older ``clock=`` argument); real waits."""

    def __init__(self, fn: Callable[[], float]) -> None:
        self._fn = fn

    def monotonic(self) -> float:
        return self._fn()


def as_clock(clock: Any) -> Clock:
    if clock is None:
        return SYSTEM_CLOCK
    if isinstance(clock, Clock):
        return clock
    if callable(clock):
        return _CallableClock(clock)
    raise ConfigurationError(f"not a clock: {clock!r}")
