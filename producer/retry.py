"""Which PutRecords failures are retried, and how long to wait: the decisions, built from tenacity pieces."""

from __future__ import annotations

import random

from tenacity import RetryCallState, wait_exponential

__all__ = ["RETRYABLE_ENTRY_CODES", "RetryPolicy"]

#: Per-entry error codes worth another attempt (anything else fails the record at once).
RETRYABLE_ENTRY_CODES = frozenset({"ProvisionedThroughputExceededException", "InternalFailure",
                                   "KMSThrottlingException", "ServiceUnavailable"})


class RetryPolicy:
    """Exponential backoff with full jitter (AWS's recommended shape), bounded by each record's TTL.

    tenacity's `wait_exponential` gives the ceiling for an attempt; the wait is drawn uniformly below
    it (what tenacity's `wait_random_exponential` does), from an injectable random source.
    """

    def __init__(self, *, base: float, maximum: float, rng: random.Random | None = None) -> None:
        self._ceiling = wait_exponential(multiplier=base, max=maximum)
        self._rng = rng or random.Random()

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (counting from 1)."""
        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return self._rng.uniform(0.0, float(self._ceiling(state)))

    @staticmethod
    def retryable(code: str) -> bool:
        return code in RETRYABLE_ENTRY_CODES

    @staticmethod
    def within_ttl(now: float, delay: float, oldest_put: float, ttl: float) -> bool:
        """Whether another attempt after `delay` still starts before the oldest record's TTL runs out."""
        return now + delay < oldest_put + ttl
