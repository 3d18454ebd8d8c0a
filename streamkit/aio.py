"""Async handlers where streamkit calls a handler: one event loop in a background thread runs them.

The consumer, the Lambda wrapper and the dispatcher call handlers from their own threads (one per
shard, the Lambda runtime's, one per lane). An ``async def`` handler (or a `RecordProcessor` with
``async def`` methods) is run to completion on `shared_loop`, a single event loop that streamkit keeps in
a daemon thread, while the calling thread waits; its order and retry rules are the same as a plain
function's. Many shards' handlers await concurrently on that one loop, so a handler spending its time
in ``await`` (an HTTP call, a database) costs no thread of its own, and clients it opens (an aiohttp
session, say) stay bound to the same loop from one call to the next, across invocations in Lambda too.

A handler should not block that loop (no ``time.sleep``, no synchronous I/O in ``async def``): every
async handler in the process shares it.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from streamkit.errors import EventLoopReentryError

if TYPE_CHECKING:  # asyncio is imported when an async handler first runs: a plain handler never loads it
    import asyncio

__all__ = ["BackgroundLoop", "blocking", "blocking_methods", "is_async", "shared_loop"]

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio event loop in a daemon thread, started on first use; `run` waits for a coroutine there."""

    def __init__(self, name: str = "streamkit-async") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        import asyncio

        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                started = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(started.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
                self._thread.start()
                started.wait()
                self._loop = loop
            return self._loop

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run `awaitable` on the loop and wait for its result (its exception is raised here)."""
        if self._thread is not None and threading.current_thread() is self._thread:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise EventLoopReentryError("a streamkit handler called from its own event loop's thread would wait forever")
        import asyncio

        return asyncio.run_coroutine_threadsafe(_as_coroutine(awaitable), self.loop).result()

    def close(self) -> None:
        """Stop the loop and its thread (a later `run` starts them again)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            if not thread.is_alive():
                loop.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


#: The loop every async handler in the process runs on.
shared_loop = BackgroundLoop()


def is_async(fn: object) -> bool:
    """Whether calling `fn` gives an awaitable: an ``async def`` function, method, partial or callable object."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - an object whose __call__ is async
    return call is not None and not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)


def blocking(fn: Callable[..., Any], loop: BackgroundLoop | None = None) -> Callable[..., Any]:
    """`fn` as a plain function: an async one is run to completion on `loop`; a plain one is returned as is."""
    if not is_async(fn):
        return fn
    where = loop or shared_loop

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        result: Coroutine[Any, Any, Any] = fn(*args, **kwargs)
        return where.run(result)

    return call


def blocking_methods(obj: T, names: tuple[str, ...], loop: BackgroundLoop | None = None) -> T:
    """`obj` with each of its `names` methods that is ``async def`` made plain (set on the instance)."""
    for name in names:
        method = getattr(obj, name, None)
        if method is not None and is_async(method):
            setattr(obj, name, blocking(method, loop))
    return obj
