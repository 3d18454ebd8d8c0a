"""The event source mapping's settings (AWS's names and ranges) and the counts a run reports."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from streamkit.errors import ConfigurationError
from streamkit.validation import check_fields

__all__ = ["EsmConfig", "EsmStats"]


@dataclass(frozen=True, kw_only=True)
class EsmConfig:
    """The event source mapping's settings, with AWS's names and ranges."""

    batch_size: int = 100
    batching_window: float = 0.0
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "LATEST"
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
    retry_delay: float = 0.2  # pause before re-invoking a failed batch

    def __post_init__(self) -> None:
        check_fields(self)  # types, NaN and infinity first
        checks = [
            (1 <= self.batch_size <= 10_000, f"batch_size must be 1..10000, got {self.batch_size}"),
            (0 <= self.batching_window <= 300, f"batching_window must be 0..300 s, got {self.batching_window}"),
            (self.starting_position in ("TRIM_HORIZON", "LATEST"), "starting_position must be TRIM_HORIZON or LATEST"),
            (1 <= self.parallelization_factor <= 10, "parallelization_factor must be 1..10"),
            (self.max_retry_attempts == -1 or 0 <= self.max_retry_attempts <= 10_000,
             "max_retry_attempts must be -1 or 0..10000"),
            (self.max_record_age == -1 or 60 <= self.max_record_age <= 604_800,
             "max_record_age must be -1 or 60..604800 s"),
            (0 <= self.tumbling_window <= 900, "tumbling_window must be 0..900 s"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigurationError(message)
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
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_json(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k != "lock"}
