"""Exponential backoff with full jitter, from tenacity's pieces, with an injectable random source. Pure."""

from __future__ import annotations

import random

from tenacity import RetryCallState, wait_exponential

__all__ = ["Backoff"]


class Backoff:
    """``delay(attempt)``: a uniform draw below ``min(maximum, base * 2**(attempt-1))``.

    tenacity's `wait_exponential` gives the ceiling; drawing below it is what its
    `wait_random_exponential` does ("full jitter", AWS's recommended shape for retries).
    """

    def __init__(self, *, base: float, maximum: float, rng: random.Random | None = None) -> None:
        self._ceiling = wait_exponential(multiplier=base, max=maximum)
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return float(self._ceiling(state))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (counting from 1)."""
        return self._rng.uniform(0.0, self.ceiling(attempt))
