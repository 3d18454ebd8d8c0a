"""A Lambda handler whose module takes 300 ms to import (tests.e2e.slow_init:handler), for Init Duration."""

from __future__ import annotations

import time

time.sleep(0.3)  # module-level work, as a fat deployment package or a client made outside the handler
INVOCATIONS = [0]  # module state: kept across the invocations of one execution environment


def handler(event: dict, context: object) -> dict:  # type: ignore[type-arg]
    INVOCATIONS[0] += 1
    return {"batchItemFailures": [], "seen_in_this_environment": INVOCATIONS[0]}
