"""The two producers behind one synchronous face, so one test body runs against both.

`AsyncOnLoop` drives an `AsyncProducer` from test code: its coroutines run on an event loop in a
thread of their own, and each call waits for its coroutine, so a test reads the same for either kind.
`put` goes through `put_future` (what `AsyncProducer.put` awaits) and hands back a
`concurrent.futures.Future` fed from the loop's future, so bad input still raises at the call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from producer import AsyncProducer, Producer

T = TypeVar("T")


class AsyncOnLoop:
    def __init__(self, stream_name: str, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-event-loop", daemon=True)
        self._thread.start()
        self.aio = AsyncProducer(stream_name, **kwargs)
        try:
            self._run(self.aio.start())
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if not self._thread.is_alive():  # after close(): a loop of its own for the call
            return asyncio.run(coro)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def put(self, data: Any, partition_key: Any, explicit_hash_key: Any = None) -> concurrent.futures.Future[Any]:
        async def buffered() -> concurrent.futures.Future[Any]:
            on_loop = await self.aio.put_future(data, partition_key, explicit_hash_key)
            out: concurrent.futures.Future[Any] = concurrent.futures.Future()

            def copy(f: asyncio.Future[Any]) -> None:
                exc = f.exception()
                if exc is not None:
                    out.set_exception(exc)
                else:
                    out.set_result(f.result())

            on_loop.add_done_callback(copy)
            return out

        return self._run(buffered())

    def put_json(self, obj: Any, partition_key: Any) -> concurrent.futures.Future[Any]:
        import orjson

        return self.put(orjson.dumps(obj), partition_key)

    def send(self, data: Any, partition_key: Any, explicit_hash_key: Any = None) -> None:
        self._run(self.aio.send(data, partition_key, explicit_hash_key))

    def send_json(self, obj: Any, partition_key: Any) -> None:
        self._run(self.aio.send_json(obj, partition_key))

    def flush(self, timeout: float | None = None) -> bool:
        return self._run(self.aio.flush(timeout))

    def close(self, timeout: float | None = None) -> None:
        if not self._thread.is_alive():
            self._run(self.aio.close(timeout))
            return
        try:
            self._run(self.aio.close(timeout))
        finally:
            self._stop_loop()

    def metrics(self) -> dict[str, Any]:
        return self.aio.metrics()

    def __getattr__(self, name: str) -> Any:  # shard_map, config, stream_name, ...
        return getattr(self.aio.producer, name)

    def __enter__(self) -> AsyncOnLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: What the parametrised producer tests build: ``make("stream", client=..., config=...)``.
KINDS: dict[str, Callable[..., Any]] = {"threaded": Producer, "async": AsyncOnLoop}
