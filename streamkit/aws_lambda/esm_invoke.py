"""Invoking the function: the event AWS builds for a batch, the context object, and the synchronous call."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streamkit.aws_lambda.esm_config import EsmConfig, EsmStats
from streamkit.aws_lambda.esm_core import EVENT_PAYLOAD_LIMIT, PendingRecord, payload_size
from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.errors import PayloadTooLargeError
from streamkit.kinesis_types import LOCAL_ACCOUNT

__all__ = ["ACCOUNT", "Invoker", "LambdaContext", "PayloadTooLargeError", "WindowView", "build_event", "iso_time", "window_time"]

ACCOUNT = LOCAL_ACCOUNT  # defined once, in streamkit.kinesis_types


class LambdaContext:
    """The fields of Lambda's context object a handler may use; the remaining time counts down."""

    def __init__(self, function_name: str, timeout: float, region: str, clock: Clock = SYSTEM_CLOCK, *,
                 memory_mb: int = 128) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = str(memory_mb)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._clock = clock
        self._deadline = clock.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock.monotonic()) * 1000))


def iso_time(ts: float) -> str:
    """Epoch seconds as AWS writes times in OnFailure records and window bounds (milliseconds, Z)."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def window_time(ts: float) -> str:
    """A window bound as AWS's tumbling-window events write it: whole seconds, Z ("2020-07-30T17:00:00Z")."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True)
class WindowView:
    """What a tumbling-window invocation carries beside the records."""

    start: float
    state: Any
    final: bool
    terminated_early: bool = False


def _event_record(r: PendingRecord, shard_id: str, region: str, arn: str) -> dict[str, Any]:
    key = r.raw.get("PartitionKey")
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            **({"partitionKey": key} if key is not None else {}),
            "sequenceNumber": r.sequence_number,
            "data": base64.b64encode(r.raw["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": r.arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{r.sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/streamkit-local-esm",
        "awsRegion": region,
        "eventSourceARN": arn,
    }


def build_event(batch: Sequence[PendingRecord], *, shard_id: str, config: EsmConfig, arn: str,
                window: WindowView | None = None) -> dict[str, Any]:
    """The event AWS's mapping sends for `batch` (with the window's fields when tumbling windows are on)."""
    event: dict[str, Any] = {"Records": [_event_record(r, shard_id, config.region, arn) for r in batch]}
    if window is not None:
        state = dict(window.state) if isinstance(window.state, dict) else window.state  # the handler may change it
        event.update(window={"start": window_time(window.start), "end": window_time(window.start + config.tumbling_window)},
                     state=state, shardId=shard_id, eventSourceARN=arn,
                     isFinalInvokeForWindow=window.final, isWindowTerminatedEarly=window.terminated_early)
    return event


class Invoker:
    """Calls the handler synchronously with one batch's event, counting invocations and concurrency."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any], config: EsmConfig, stats: EsmStats,
                 clock: Clock, environments: Any = None, on_report: Callable[[Any], None] | None = None) -> None:
        from streamkit.aws_lambda.environments import InProcessEnvironments, ReportLog

        self.handler = handler
        #: Where invocations run (`streamkit.aws_lambda.environments`): in this process by default.
        self.environments = environments if environments is not None else InProcessEnvironments(
            handler, memory_mb=config.memory_size)
        #: The invocations' REPORT figures (every cold start's, the last 4,096 invocations').
        self.reports = ReportLog()
        self.on_report = on_report
        self.config = config
        self.stats = stats
        self.clock = clock
        self.arn = ""
        self._active: dict[str, int] = {}
        self._lock = threading.Lock()

    def invoke(self, shard_id: str, batch: list[PendingRecord], window: WindowView | None = None, lane: int = 0
               ) -> tuple[Any, BaseException | None]:
        """The handler's response and None, or None and the error the invocation ended with."""
        size = payload_size(batch)
        if size > EVENT_PAYLOAD_LIMIT:
            # A record too large for a synchronous invoke (a stream with records above ~4.5 MiB: base64 grows
            # them by a third). AWS documents the 6 MB limit, not what the mapping then does; here the
            # invocation fails without reaching the handler, and the mapping's retry policy applies
            # (MaximumRetryAttempts / MaximumRecordAgeInSeconds, then OnFailure; by default the shard waits).
            with self.stats.lock:
                self.stats.invocations += 1
            return None, PayloadTooLargeError(
                f"RequestEntityTooLargeException: the event of {len(batch)} record(s) is {size:,} bytes; Lambda "
                f"takes at most {EVENT_PAYLOAD_LIMIT:,} bytes for a synchronous invoke")
        event = build_event(batch, shard_id=shard_id, config=self.config, arn=self.arn, window=window)
        stats = self.stats
        with stats.lock:
            stats.invocations += 1
            stats.records_delivered += len(batch)
            active = self._active[shard_id] = self._active.get(shard_id, 0) + 1
            stats.max_concurrent_per_shard = max(stats.max_concurrent_per_shard, active)
        cfg = self.config
        context = LambdaContext(cfg.function_name, cfg.timeout, cfg.region, self.clock, memory_mb=cfg.memory_size)
        try:
            response, error, report = self.environments.invoke(f"{shard_id}/{lane}", event, context)
        except Exception as exc:
            return None, exc
        finally:
            with stats.lock:
                self._active[shard_id] -= 1
        self.reports.add(report)
        if self.on_report is not None:
            self.on_report(report)
        return response, error
