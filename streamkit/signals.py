"""SIGTERM and SIGINT as a request to stop, for the engines' run loops (consumer, emulator CLI)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["stopping_on_signals"]


@contextmanager
def stopping_on_signals(stop: Callable[[], None], *, install: bool = True) -> Iterator[None]:
    """Inside the block, SIGTERM and SIGINT call `stop` (a graceful stop: the run loop finishes its
    batches and returns); the previous handlers are back afterwards. Only in the main thread (Python
    allows signal handlers nowhere else) and when `install`."""
    previous: dict[signal.Signals, Any] = {}
    if install and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, lambda signum, frame: stop())
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
