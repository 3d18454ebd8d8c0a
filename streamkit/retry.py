"""The retry engine: one policy shape and one loop for every engine, on tenacity's pieces.

- `Backoff`: exponential backoff with full jitter (AWS's recommended shape): a uniform draw below
  ``min(maximum, base * 2**(attempt-1))`` — tenacity's `wait_exponential` ceiling, drawn below as its
  `wait_random_exponential` does, with an injectable random source so tests are repeatable. Pure.
- `RetryPolicy`: how often and how long (attempts, elapsed time) and which errors are worth another
  try (`StreamkitError.retryable` by default). Pure: `next_delay` only decides.
- `call_with_retry`: the loop, a `tenacity.Retrying` whose stop and wait come from the policy and whose
  sleep and clock are injected (a `Clock`): the engine decides, the caller's clock waits. A stop event
  cuts a pause short with `Interrupted`.

Engines whose retries are state machines of their own (the producer's per-entry retries, the event
source mapping's AWS semantics in `esm_core.decide`, the consumer's per-record attempts) use
`RetryPolicy.next_delay` for the same decision and wait through their clock.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from streamkit.aws.codes import RETRYABLE_CODES
from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.errors import ConfigurationError, NoProgressError, StreamkitError

if TYPE_CHECKING:
    import tenacity

__all__ = ["Backoff", "Interrupted", "RetryPolicy", "call_until_answered", "call_with_retry", "is_retryable"]

T = TypeVar("T")


class Interrupted(Exception):
    """A pause between attempts was cut short by a stop; the operation was not retried."""


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, StreamkitError) and exc.retryable


class Backoff:
    """``delay(attempt)``: full jitter below ``min(maximum, base * 2**(attempt-1))``."""

    def __init__(self, *, base: float, maximum: float, rng: random.Random | None = None) -> None:
        if base < 0 or maximum < base:
            raise ConfigurationError(f"backoff needs 0 <= base <= maximum, got base={base}, maximum={maximum}")
        self.base = base
        self.maximum = maximum
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        if attempt < 1:
            return 0.0
        return min(self.maximum, self.base * 2.0 ** min(attempt - 1, 60))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (counting from 1)."""
        return self._rng.uniform(0.0, self.ceiling(attempt))


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Attempts and time allowed, and which errors count as passing."""

    base: float = 0.1
    maximum: float = 5.0
    #: At most this many attempts in all (None: no limit by count).
    max_attempts: int | None = None
    #: No new attempt starts this long after the first (None: no limit by time).
    max_elapsed: float | None = None
    retryable: Callable[[BaseException], bool] = field(default=is_retryable)

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be >= 1, got {self.max_attempts}")
        Backoff(base=self.base, maximum=self.maximum)  # checks the pair

    def backoff(self, rng: random.Random | None = None) -> Backoff:
        return Backoff(base=self.base, maximum=self.maximum, rng=rng)

    def gives_up(self, attempt: int, elapsed: float, error: BaseException | None = None) -> bool:
        """After failed attempt `attempt` (from 1), `elapsed` seconds after the first began: stop trying?"""
        if error is not None and not self.retryable(error):
            return True
        if self.max_attempts is not None and attempt >= self.max_attempts:
            return True
        return self.max_elapsed is not None and elapsed >= self.max_elapsed

    def pause(self, backoff: Backoff, attempt: int, elapsed: float) -> float:
        """The pause before attempt `attempt + 1`, cut so that a last attempt comes at `max_elapsed`."""
        delay = backoff.delay(attempt)
        if self.max_elapsed is not None:
            delay = max(0.0, min(delay, self.max_elapsed - elapsed))
        return delay

    def next_delay(self, backoff: Backoff, attempt: int, elapsed: float, error: BaseException | None = None) -> float | None:
        """The pause before attempt `attempt + 1`, or None to give up (a last attempt comes at `max_elapsed`)."""
        if self.gives_up(attempt, elapsed, error):
            return None
        return self.pause(backoff, attempt, elapsed)

    @staticmethod
    def retryable_code(code: str) -> bool:
        """Whether an AWS error code (a PutRecords entry's `ErrorCode`, say) is worth another attempt."""
        return code in RETRYABLE_CODES

    @staticmethod
    def within_ttl(now: float, delay: float, oldest_put: float, ttl: float) -> bool:
        """Whether another attempt after `delay` still starts before the oldest record's TTL runs out."""
        return now + delay < oldest_put + ttl


def call_with_retry(fn: Callable[[], T], policy: RetryPolicy, *, clock: Clock = SYSTEM_CLOCK,
                    stop: threading.Event | None = None, rng: random.Random | None = None,
                    on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
    """``fn()`` until it returns, or its error is not retryable, or the policy gives up (the last error is raised).

    `on_retry(attempt, error, delay)` is called before each pause (to log). With `stop`, a pause ends
    early with `Interrupted` once it is set.

    Each tenacity piece decides on its own inputs (the attempt number, the error, the injected clock):
    tenacity 8.2 asks `stop` before `wait`, 8.3 and later ask `wait` first, and neither order matters here.
    """
    import tenacity  # on first use: a Lambda cold start that never retries does not load it

    backoff = policy.backoff(rng)
    start = clock.monotonic()

    def worth_another(error: BaseException) -> bool:
        return not isinstance(error, Interrupted) and policy.retryable(error)

    def give_up(state: tenacity.RetryCallState) -> bool:
        return policy.gives_up(state.attempt_number, clock.monotonic() - start)

    def wait(state: tenacity.RetryCallState) -> float:
        return policy.pause(backoff, state.attempt_number, clock.monotonic() - start)

    def sleep(seconds: float) -> None:
        if stop is None:
            clock.sleep(seconds)
        elif clock.wait(stop, seconds):
            raise Interrupted("stopped while waiting to retry")

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.next_action is not None:
            error = state.outcome.exception()
            assert error is not None
            on_retry(state.attempt_number, error, state.next_action.sleep)

    retrying: Any = tenacity.Retrying(stop=give_up, wait=wait, sleep=sleep, before_sleep=before_sleep,
                                      retry=tenacity.retry_if_exception(worth_another), reraise=True)
    return retrying(fn)  # type: ignore[no-any-return]


#: The pauses of `call_until_answered`: from 0.2 s up to 5 s.
UNANSWERED_RETRY = RetryPolicy(base=0.2, maximum=5.0)


def call_until_answered(fn: Callable[[], T], *, what: str, warn: Callable[[str], None], clock: Clock = SYSTEM_CLOCK,
                        stop: threading.Event | None = None, give_up_after: float | None = None) -> T:
    """``fn()`` retried while the servers do not answer (retryable errors), each failure said through
    `warn` ("cannot <what> yet ..."): a server restarting is waited for, not fatal.

    `Interrupted` once `stop` is set; `NoProgressError` after `give_up_after` seconds of failures
    (None: until stopped). A non-retryable error is raised at once.
    """
    policy = RetryPolicy(base=UNANSWERED_RETRY.base, maximum=UNANSWERED_RETRY.maximum, max_elapsed=give_up_after)

    def on_retry(attempt: int, err: BaseException, delay: float) -> None:
        warn(f"cannot {what} yet (attempt {attempt}): {err}; retrying in {delay:.1f} s")

    try:
        return call_with_retry(fn, policy, clock=clock, stop=stop, on_retry=on_retry)
    except StreamkitError as exc:
        if exc.retryable and give_up_after is not None:
            raise NoProgressError(f"no answer from the servers for {give_up_after:g} s (stop_after_idle): "
                                  f"{exc}") from exc
        raise
