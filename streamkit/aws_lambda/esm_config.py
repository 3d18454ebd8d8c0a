"""The event source mapping's settings (AWS's names and ranges) and the counts a run reports."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from streamkit.errors import ConfigurationError
from streamkit.limits import (
    ESM_BATCH_SIZE_MAX,
    ESM_BATCHING_WINDOW_MAX,
    ESM_MAX_RETRY_ATTEMPTS_MAX,
    ESM_PARALLELIZATION_MAX,
    ESM_RECORD_AGE_MAX,
    ESM_RECORD_AGE_MIN,
    ESM_TUMBLING_WINDOW_MAX,
)
from streamkit.validation import check_fields

__all__ = ["EsmConfig", "EsmStats"]


@dataclass(frozen=True, kw_only=True)
class EsmConfig:
    """The event source mapping's settings, with AWS's names and ranges."""

    batch_size: int = 100
    batching_window: float = 0.0
    starting_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] = "LATEST"
    starting_position_timestamp: float | None = None  # epoch seconds, with AT_TIMESTAMP (StartingPositionTimestamp)
    parallelization_factor: int = 1
    bisect_on_error: bool = False
    max_retry_attempts: int = -1  # -1: until the record expires, as AWS's default
    max_record_age: float = -1  # -1: until retention runs out
    report_batch_item_failures: bool = False
    on_failure: Any = None  # "file:PATH", "sqs:URL" or a destination with send_json
    tumbling_window: float = 0.0
    function_name: str = "streamkit-local-function"
    timeout: float = 60.0  # the function timeout the handler's context counts down from
    region: str = "us-east-1"
    #: Pause before re-invoking a failed batch, doubling per failed invocation up to `retry_delay_max`
    #: (AWS was recorded invoking a failing batch 8 times in ~60 s; the defaults give that).
    retry_delay: float = 0.25
    retry_delay_max: float = 30.0
    #: MemorySize, MB: the context's memory_limit_in_mb and the REPORT line's Memory Size.
    memory_size: int = 128
    #: FilterCriteria: up to 5 patterns (JSON text or decoded), ORed, on the record's ``data`` only
    #: (`streamkit.aws_lambda.esm_filters`); records no pattern matches are not delivered, and passed.
    filter_criteria: tuple[str | Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        check_fields(self)  # types, NaN and infinity first
        checks = [
            (1 <= self.batch_size <= ESM_BATCH_SIZE_MAX, f"batch_size must be 1..{ESM_BATCH_SIZE_MAX}, got {self.batch_size}"),
            (0 <= self.batching_window <= ESM_BATCHING_WINDOW_MAX,
             f"batching_window must be 0..{ESM_BATCHING_WINDOW_MAX} s, got {self.batching_window}"),
            (self.starting_position in ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"),
             "starting_position must be TRIM_HORIZON, LATEST or AT_TIMESTAMP"),
            ((self.starting_position == "AT_TIMESTAMP") == (self.starting_position_timestamp is not None),
             "starting_position_timestamp is given with starting_position AT_TIMESTAMP, and only then"),
            (1 <= self.parallelization_factor <= ESM_PARALLELIZATION_MAX,
             f"parallelization_factor must be 1..{ESM_PARALLELIZATION_MAX}"),
            (self.max_retry_attempts == -1 or 0 <= self.max_retry_attempts <= ESM_MAX_RETRY_ATTEMPTS_MAX,
             f"max_retry_attempts must be -1 or 0..{ESM_MAX_RETRY_ATTEMPTS_MAX}"),
            (self.max_record_age == -1 or ESM_RECORD_AGE_MIN <= self.max_record_age <= ESM_RECORD_AGE_MAX,
             f"max_record_age must be -1 or {ESM_RECORD_AGE_MIN}..{ESM_RECORD_AGE_MAX} s"),
            (0 <= self.tumbling_window <= ESM_TUMBLING_WINDOW_MAX, f"tumbling_window must be 0..{ESM_TUMBLING_WINDOW_MAX} s"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigurationError(message)
        if not isinstance(self.filter_criteria, tuple | list):
            raise ConfigurationError("filter_criteria must be a list of patterns")
        object.__setattr__(self, "filter_criteria", tuple(self.filter_criteria))
        from streamkit.aws_lambda.esm_filters import compile_criteria

        compile_criteria(self.filter_criteria)
        if self.on_failure is not None:
            from streamkit.destinations import check_destination

            check_destination(self.on_failure)  # the EventSourceMapping opens it


@dataclass
class EsmStats:
    invocations: int = 0
    records_delivered: int = 0
    records_succeeded: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    records_discarded: int = 0
    bisections: int = 0
    max_concurrent_per_shard: int = 0
    windows_closed: int = 0
    windows_terminated_early: int = 0
    records_polled: int = 0
    records_filtered_out: int = 0
    #: AWS's EventCount metrics (EventSourceMappingMetricsConfig), counted as AWS defines them: events
    #: in every invocation, retries included; events of failed invocations; events dropped (expired or
    #: out of retries); events whose OnFailure record reached the destination.
    invoked_events: int = 0
    failed_invoke_events: int = 0
    dropped_events: int = 0
    on_failure_delivered_events: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def event_counts(self) -> dict[str, int]:
        """The counts under AWS's metric names."""
        return {"PolledEventCount": self.records_polled, "FilteredOutEventCount": self.records_filtered_out,
                "InvokedEventCount": self.invoked_events, "FailedInvokeEventCount": self.failed_invoke_events,
                "DroppedEventCount": self.dropped_events,
                "OnFailureDestinationDeliveredEventCount": self.on_failure_delivered_events}

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in vars(self).items() if k != "lock"}
        out["event_counts"] = self.event_counts()
        return out
