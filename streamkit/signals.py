"""SIGTERM and SIGINT as a request to stop, for the engines' run loops (consumer, emulator CLI)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["SignalSeen", "hold_late_signals", "stopping_on_signals"]


@dataclass
class SignalSeen:
    """The signal that asked the run to stop (``"SIGTERM"``, ``"SIGINT"``), or None: for its summary."""

    name: str | None = None


@contextmanager
def stopping_on_signals(stop: Callable[[], None], *, install: bool = True, hold: bool = False) -> Iterator[SignalSeen]:
    """Inside the block, SIGTERM and SIGINT call `stop` (a graceful stop: the run loop finishes its
    batches and returns); the previous handlers are back afterwards. Only in the main thread (Python
    allows signal handlers nowhere else) and when `install`. Yields which signal came, if one did.

    With `hold` (a command-line run, which writes its summary after the block and then exits), the
    previous handlers come back only through `hold_late_signals`: a signal between the end of the work and
    the end of the process does not kill it before its summary is out."""
    previous: dict[signal.Signals, Any] = {}
    seen = SignalSeen()

    def on_signal(signum: int, frame: Any) -> None:
        seen.name = signal.Signals(signum).name
        stop()

    if install and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, on_signal)
    try:
        yield seen
    finally:
        if hold:
            hold_late_signals(previous)
        else:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def hold_late_signals(previous: dict[signal.Signals, Any]) -> None:
    """After a run's work: the first SIGTERM/SIGINT (each in `previous`) is let pass, so that the summary
    is written and the process ends by itself; a second one gets the previous handler back (the default:
    the process ends at once)."""
    held = False

    def late(signum: int, frame: Any) -> None:
        nonlocal held
        if not held:
            held = True
            return
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.raise_signal(signum)

    for sig in previous:
        signal.signal(sig, late)
