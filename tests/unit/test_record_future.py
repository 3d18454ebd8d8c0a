"""RecordFuture is a real concurrent.futures.Future, whichever thread gets there first."""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, as_completed, wait

import pytest

from producer.futures import RecordFuture, resolve_exception, resolve_results


def make_result(fut: RecordFuture, i: int) -> tuple[str, int]:
    return ("ok", i)


def test_resolved_before_anyone_looks() -> None:
    futs = [RecordFuture() for _ in range(3)]
    resolve_results(futs, make_result)
    assert [f.result() for f in futs] == [("ok", 0), ("ok", 1), ("ok", 2)]
    assert all(f.done() and not f.cancelled() and f.exception() is None for f in futs)


def test_result_is_built_once_and_only_when_read() -> None:
    calls: list[int] = []

    def factory(fut: RecordFuture, i: int) -> int:
        calls.append(i)
        return i * 10

    futs = [RecordFuture(), RecordFuture()]
    resolve_results(futs, factory)
    assert calls == []
    assert futs[1].result() == 10 and futs[1].result() == 10
    assert calls == [1]


def test_a_waiting_thread_is_woken() -> None:
    fut = RecordFuture()
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(fut.result(timeout=5)))
    t.start()
    while fut._sync is None:  # the waiter has created the condition: resolution takes the locked path
        threading.Event().wait(0.001)
    resolve_results([fut], make_result)
    t.join(5)
    assert got == [("ok", 0)]


def test_callbacks_run_whether_added_before_or_after_resolution() -> None:
    seen: list[str] = []
    before, after = RecordFuture(), RecordFuture()
    before.add_done_callback(lambda f: seen.append("before"))
    resolve_results([before, after], make_result)
    after.add_done_callback(lambda f: seen.append("after"))
    assert seen == ["before", "after"]


def test_exceptions_reach_result_exception_and_waiters() -> None:
    futs = [RecordFuture(), RecordFuture()]
    futs[1].add_done_callback(lambda f: None)  # one on the locked path
    error = RuntimeError("boom")
    resolve_exception(futs, error)
    for f in futs:
        assert f.exception() is error
        with pytest.raises(RuntimeError, match="boom"):
            f.result()


def test_wait_and_as_completed_work() -> None:
    futs = [RecordFuture() for _ in range(4)]
    threading.Timer(0.05, lambda: resolve_results(futs[:2], make_result)).start()
    done, _ = wait(futs, timeout=5, return_when=FIRST_COMPLETED)
    assert done and set(done) <= set(futs[:2])
    threading.Timer(0.05, lambda: resolve_results(futs[2:], make_result)).start()
    assert len(list(as_completed(futs, timeout=5))) == 4
    assert not wait(futs, timeout=0).not_done


def test_result_times_out_while_pending_and_cannot_be_cancelled() -> None:
    fut = RecordFuture()
    with pytest.raises(TimeoutError):
        fut.result(timeout=0.01)
    assert not fut.cancel() and not fut.cancelled() and not fut.done()


def test_resolving_twice_keeps_the_first_outcome() -> None:
    fut = RecordFuture()
    resolve_results([fut], make_result)
    resolve_exception([fut], RuntimeError("late"))
    assert fut.result() == ("ok", 0)


def test_racing_resolvers_and_waiters_never_lose_a_wakeup() -> None:
    for _ in range(200):
        fut = RecordFuture()
        results: list[object] = []
        waiter = threading.Thread(target=lambda f=fut, out=results: out.append(f.result(timeout=5)))
        waiter.start()
        resolve_results([fut], make_result)
        waiter.join(5)
        assert results == [("ok", 0)]
