"""The fan-out dispatcher as a Lambda entry point, configured by environment variables.

    STREAMKIT_DISPATCH_TARGET       lambda:FUNCTION_NAME | sqs:QUEUE_URL        (required)
    STREAMKIT_DISPATCH_MODE         unordered | per-key                          (default unordered)
                                    (per-key invokes a Lambda target synchronously; an SQS target
                                    must then be a FIFO queue)
    STREAMKIT_DISPATCH_LANES        lanes / concurrent deliveries                (default 16)
    STREAMKIT_DISPATCH_MAX_ATTEMPTS attempts per record before giving up         (default 3)
    STREAMKIT_DISPATCH_DEAD_LETTER  file:PATH | sqs:QUEUE_URL                    (default: report failures)

The event is parsed and deaggregated by streamkit; records that cannot be delivered go to the dead
letter destination, or come back as ``batchItemFailures`` at the lowest failed sequence number.
The dispatcher (and its AWS clients) is built once per container, on the first invocation.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from dispatcher.core import Dispatcher
from dispatcher.targets import LambdaTarget, SqsTarget, Target
from streamkit.aws_lambda.events import BatchResponse, parse_event
from streamkit.errors import ConfigurationError

__all__ = ["dispatcher_from_env", "handler"]

_cached: Dispatcher | None = None


def dispatcher_from_env(env: Mapping[str, str] | None = None) -> Dispatcher:
    env = os.environ if env is None else env
    spec = env.get("STREAMKIT_DISPATCH_TARGET", "")
    kind, sep, rest = spec.partition(":")
    lanes = int(env.get("STREAMKIT_DISPATCH_LANES", "16"))
    mode = env.get("STREAMKIT_DISPATCH_MODE", "unordered")
    target: Target
    if sep and kind == "lambda" and rest:
        # per-key: synchronous Invoke, so that a key's next records wait until the function is done.
        target = LambdaTarget(rest, concurrency=lanes, synchronous=mode == "per-key")
    elif sep and kind == "sqs" and rest:
        target = SqsTarget(rest, concurrency=lanes)
    else:
        raise ConfigurationError(f"STREAMKIT_DISPATCH_TARGET={spec!r}: use lambda:FUNCTION_NAME or sqs:QUEUE_URL")
    return Dispatcher(target, mode=mode, lanes=lanes,  # type: ignore[arg-type]
                      max_attempts=int(env.get("STREAMKIT_DISPATCH_MAX_ATTEMPTS", "3")),
                      dead_letter=env.get("STREAMKIT_DISPATCH_DEAD_LETTER") or None)


def handler(event: Mapping[str, Any], context: Any = None) -> BatchResponse:
    global _cached
    if _cached is None:
        _cached = dispatcher_from_env()
    from streamkit import tracing

    if tracing.enabled():  # one span for the batch, linked to each record's trace context
        with tracing.batch_span("kinesis.dispatch", tracing.traceparents_of_event(event)):
            result = _cached.dispatch(parse_event(event))
    else:
        result = _cached.dispatch(parse_event(event))
    return {"batchItemFailures": result.batch_item_failures()}  # type: ignore[typeddict-item]
