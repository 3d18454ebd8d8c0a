"""Which PutRecords failures are retried, and how long to wait: the producer's retry decisions."""

from __future__ import annotations

import random

from streamkit.retry import Backoff

__all__ = ["RETRYABLE_ENTRY_CODES", "RetryPolicy"]

#: Per-entry error codes worth another attempt (anything else fails the record at once).
RETRYABLE_ENTRY_CODES = frozenset({"ProvisionedThroughputExceededException", "InternalFailure",
                                   "KMSThrottlingException", "ServiceUnavailable"})


class RetryPolicy:
    """Exponential backoff with full jitter, bounded by each record's TTL."""

    def __init__(self, *, base: float, maximum: float, rng: random.Random | None = None) -> None:
        self._backoff = Backoff(base=base, maximum=maximum, rng=rng)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (counting from 1)."""
        return self._backoff.delay(attempt)

    @staticmethod
    def retryable(code: str) -> bool:
        return code in RETRYABLE_ENTRY_CODES

    @staticmethod
    def within_ttl(now: float, delay: float, oldest_put: float, ttl: float) -> bool:
        """Whether another attempt after `delay` still starts before the oldest record's TTL runs out."""
        return now + delay < oldest_put + ttl
