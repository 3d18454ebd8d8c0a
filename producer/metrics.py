"""Producer counters and latency percentiles."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ProducerMetrics"]


@dataclass
class ProducerMetrics:
    """Mutable counters kept by the producer under its lock; `snapshot` is what users read."""

    user_records_put: int = 0
    user_records_written: int = 0
    user_records_failed: int = 0
    kinesis_records_written: int = 0
    aggregates_written: int = 0
    put_calls: int = 0
    put_call_errors: int = 0
    retries: int = 0
    throttles: int = 0
    reshards_detected: int = 0
    #: Puts held back (buffer bound or admission by drain time), and the seconds they waited in all.
    admission_waits: int = 0
    admission_wait_s: float = 0.0
    bytes_written: int = 0
    #: The stream's RecordDistributionStrategy as last read, and whether records are aggregated for it.
    record_distribution: str = "USER_PARTITION_KEY"
    aggregating: bool = True
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=20_000))

    def snapshot(self, *, buffered_bytes: int, buffered_records: int, held_back: bool = False,
                 drain_seconds: dict[str, float] | None = None) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 3) if lat else None

        return {
            "user_records_put": self.user_records_put,
            "user_records_written": self.user_records_written,
            "user_records_failed": self.user_records_failed,
            "kinesis_records_written": self.kinesis_records_written,
            "aggregates_written": self.aggregates_written,
            "put_calls": self.put_calls,
            "put_call_errors": self.put_call_errors,
            "retries": self.retries,
            "throttles": self.throttles,
            "reshards_detected": self.reshards_detected,
            "admission_waits": self.admission_waits,
            "admission_wait_s": round(self.admission_wait_s, 3),
            # A caller is waiting in put/send now; per shard, seconds its held records take to drain.
            "held_back": held_back,
            "drain_seconds": {k: round(v, 2) for k, v in sorted((drain_seconds or {}).items())},
            "bytes_written": self.bytes_written,
            "record_distribution": self.record_distribution,
            "aggregating": self.aggregating,
            "buffered_bytes": buffered_bytes,
            "buffered_records": buffered_records,
            "put_latency_ms": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0)},
        }
