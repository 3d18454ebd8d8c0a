"""The producer's retry decisions: `streamkit.retry.RetryPolicy` (merged there; this import path is kept)."""

from __future__ import annotations

from streamkit.aws.codes import RETRYABLE_CODES
from streamkit.retry import RetryPolicy

__all__ = ["RETRYABLE_ENTRY_CODES", "RetryPolicy"]

#: Per-entry error codes worth another attempt: the one list, `streamkit.aws.codes.RETRYABLE_CODES`.
RETRYABLE_ENTRY_CODES = RETRYABLE_CODES
