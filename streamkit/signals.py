"""SIGTERM and SIGINT as a request to stop, for the engines' run loops (consumer, emulator CLI)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["SignalSeen", "stopping_on_signals"]


@dataclass
class SignalSeen:
    """The signal that asked the run to stop (``"SIGTERM"``, ``"SIGINT"``), or None: for its summary."""

    name: str | None = None


@contextmanager
def stopping_on_signals(stop: Callable[[], None], *, install: bool = True) -> Iterator[SignalSeen]:
    """Inside the block, SIGTERM and SIGINT call `stop` (a graceful stop: the run loop finishes its
    batches and returns); the previous handlers are back afterwards. Only in the main thread (Python
    allows signal handlers nowhere else) and when `install`. Yields which signal came, if one did."""
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
        for signum, handler in previous.items():
            signal.signal(signum, handler)
