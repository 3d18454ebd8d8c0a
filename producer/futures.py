"""A `concurrent.futures.Future` that costs almost nothing until somebody waits on it.

A producer hands out one future per user record, hundreds of thousands a second. A stock `Future`
builds a `Condition` (a lock, a deque, bound methods) and two lists at construction, and resolving it
takes that lock and notifies; at that rate the objects and the garbage collector's work on them cost
more than aggregating the record. `RecordFuture` makes its condition, waiter list and callback list on
first use, so a record nobody waits on is resolved by setting two attributes, and its `PutResult` is
built only when read. It stays a real `Future`: `result()`, `exception()`, `add_done_callback()`,
`concurrent.futures.wait()` and `as_completed()` all work (tests/unit/test_record_future.py).

Race-freedom: the lazy parts are created under one module lock, and the fast resolution path checks
under that same lock that no condition exists yet. A thread that creates the condition afterwards
sees the finished state when it looks (every base-class reader checks `_state` after taking the
condition); a resolution after the condition exists takes the base class's locked path and notifies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures._base import FINISHED, PENDING
from typing import Any

__all__ = ["PENDING", "RecordFuture", "resolve_exception", "resolve_results"]

_LAZY = threading.Lock()


class _Sync:
    """What a stock `Future` builds at construction, built here on first use: condition, waiters, callbacks."""

    __slots__ = ("callbacks", "condition", "waiters")

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.waiters: list[Any] = []
        self.callbacks: list[Any] = []


class RecordFuture(Future[Any]):
    """A Future whose synchronisation objects are created on first use. Cannot be cancelled."""

    # Few slots on purpose: every one is a store per record and a pointer the garbage collector visits.
    __slots__ = ("_exception", "_factory", "_index", "_result_obj", "_state", "_sync")
    _index: int
    _result_obj: Any

    def __init__(self) -> None:  # no super().__init__(): that is the cost this class avoids
        self._state = PENDING
        self._exception: BaseException | None = None
        self._factory: Callable[[Any, int], Any] | None = None  # builds the result from (self, _index) when read
        self._sync: _Sync | None = None
        # _index and _result_obj are set when the future resolves, before anything reads them.

    def _lazy_sync(self) -> _Sync:
        s = self._sync
        if s is None:
            with _LAZY:
                s = self._sync
                if s is None:
                    s = self._sync = _Sync()
        return s

    # The attributes the base class and the module functions of concurrent.futures use.
    @property
    def _condition(self) -> threading.Condition:
        return self._lazy_sync().condition

    @_condition.setter
    def _condition(self, value: threading.Condition) -> None:
        self._lazy_sync().condition = value

    @property
    def _waiters(self) -> list[Any]:
        return self._lazy_sync().waiters

    @_waiters.setter
    def _waiters(self, value: list[Any]) -> None:
        self._lazy_sync().waiters = value

    @property
    def _done_callbacks(self) -> list[Any]:
        return self._lazy_sync().callbacks

    @_done_callbacks.setter
    def _done_callbacks(self, value: list[Any]) -> None:
        self._lazy_sync().callbacks = value

    @property
    def _result(self) -> Any:
        factory = self._factory
        if factory is not None:
            self._result_obj = factory(self, self._index)
            self._factory = None
        return self._result_obj

    @_result.setter
    def _result(self, value: Any) -> None:
        self._result_obj = value

    def settled(self) -> bool:
        """Resolved (written or failed), read without creating the condition `done()` would take."""
        return self._state == FINISHED

    def cancel(self) -> bool:
        """Records cannot be taken back once put."""
        return False

    def cancelled(self) -> bool:
        return False


def _no_futures(items: Sequence[object]) -> bool:
    """True when no item is a `RecordFuture` (all are records sent without one): nothing to resolve.

    The scan runs in C (``map(type, ...)`` into a set of one or two types), not a Python loop over
    every record: a sender thread resolving an aggregate of thousands of `send` records holds the GIL
    that much less.
    """
    return not any(issubclass(t, RecordFuture) for t in set(map(type, items)))


def resolve_results(futures: Sequence[object], factory: Callable[[Any, int], Any]) -> None:
    """Resolve each future to ``factory(future, index)``, built only if the result is read.

    Items that are not `RecordFuture`s (records sent without one) are skipped; they keep their index.
    """
    if _no_futures(futures):
        return
    slow: list[tuple[int, RecordFuture]] = []
    with _LAZY:
        for i, fut in enumerate(futures):
            if not isinstance(fut, RecordFuture) or fut._state != PENDING:
                continue
            if fut._sync is None:
                # Two plain attributes, not a (factory, index) tuple: a tuple per record would be one
                # more object for the garbage collector to track, hundreds of thousands a second.
                fut._factory = factory
                fut._index = i
                fut._state = FINISHED
            else:
                slow.append((i, fut))
    for i, fut in slow:  # somebody waits or registered a callback: notify them the standard way
        fut.set_result(factory(fut, i))


def resolve_exception(futures: Iterable[object], error: BaseException) -> None:
    """Fail futures with `error`; items that are not `RecordFuture`s are skipped."""
    slow: list[RecordFuture] = []
    with _LAZY:
        for fut in futures:
            if not isinstance(fut, RecordFuture) or fut._state != PENDING:
                continue
            if fut._sync is None:
                fut._exception = error
                fut._state = FINISHED
            else:
                slow.append(fut)
    for fut in slow:
        fut.set_exception(error)
