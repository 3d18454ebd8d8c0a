"""The sensor publisher: readings from a JSON-lines file or a simulated fleet, through the Producer."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from producer.config import ProducerConfig
from producer.producer import Producer
from streamkit.aggregation import MAX_RECORD_BYTES
from streamkit.errors import ConfigurationError, ValidationError
from streamkit.hashing import validate_partition_key

__all__ = ["BadLine", "PublishSummary", "file_readings", "publish", "simulated_readings"]

log = logging.getLogger("streamkit.publisher")


@dataclass(frozen=True, kw_only=True)
class BadLine:
    line_number: int
    reason: str


@dataclass(kw_only=True)
class PublishSummary:
    user_records: int = 0
    kinesis_records: int = 0
    put_calls: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failed: int = 0
    retried: int = 0
    bad_lines: int = 0
    #: Seconds the publisher was held back: the stream's shards accept less than it offered, and the
    #: producer slowed it to their rate rather than let readings expire in its buffer.
    held_back_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def file_readings(path: Path, key_field: str, on_bad: Callable[[BadLine], None], *,
                  max_record_size: int = MAX_RECORD_BYTES) -> Iterator[tuple[str, bytes]]:
    """(partition key, JSON bytes) per line; bad lines go to `on_bad` with their number and are not yielded.

    Bad: not JSON, no usable key field, or a reading the producer would refuse (a key of more than
    256 characters, or more than `max_record_size` bytes with its key).
    """
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line:
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                on_bad(BadLine(line_number=number, reason=f"not valid JSON ({exc})"))
                continue
            if not isinstance(obj, dict) or key_field not in obj or obj[key_field] in (None, ""):
                on_bad(BadLine(line_number=number, reason=f"no {key_field!r} field to use as the partition key"))
                continue
            key = str(obj[key_field])
            try:
                validate_partition_key(key)
            except ValidationError as exc:
                on_bad(BadLine(line_number=number, reason=str(exc)))
                continue
            size = len(line) + len(key.encode("utf-8"))
            if size > max_record_size:
                on_bad(BadLine(line_number=number, reason=f"reading of {size} bytes with its key is over the "
                                                          f"{max_record_size}-byte Kinesis record limit"))
                continue
            yield key, line


def simulated_readings(sensors: int, rate: float, duration: float, *, seed: int = 1,
                       clock: Callable[[], float] = time.monotonic,
                       sleep: Callable[[float], None] = time.sleep) -> Iterator[tuple[str, bytes]]:
    """A fleet of `sensors` emitting `rate` readings/s in total for `duration` s (paced, bounded)."""
    if sensors < 1 or rate <= 0 or duration <= 0:
        raise ConfigurationError("--sensors, --rate and --duration must be positive")
    rng = random.Random(seed)
    total = math.ceil(rate * duration)
    seq = [0] * sensors
    start = clock()
    for i in range(total):
        due = start + i / rate
        ahead = due - clock()
        if ahead > 0.002:
            sleep(ahead)
        s = rng.randrange(sensors)
        seq[s] += 1
        sensor_id = f"sensor-{s:05d}"
        reading = {"sensor_id": sensor_id, "seq": seq[s], "ts": round(time.time(), 3),
                   "temperature_c": round(21 + 4 * math.sin(i / 500 + s) + rng.gauss(0, 0.3), 2),
                   "humidity_pct": round(45 + rng.gauss(0, 5), 1), "battery_v": round(3.7 - i * 1e-7, 4)}
        yield sensor_id, orjson.dumps(reading)


def publish(stream: str, readings: Iterator[tuple[str, bytes]], *, client: Any = None,
            config: ProducerConfig | None = None, progress: Callable[[int], None] | None = None,
            bad_lines: list[BadLine] | None = None, held: Callable[[float], None] | None = None) -> PublishSummary:
    """Send every reading; returns the counts once all of them are written or failed.

    Readings go out with `Producer.send` (no future each: a long file does not pile up futures in
    memory); a reading that fails for good reaches ``config.on_failure`` and is counted in ``failed``.
    `progress` hears of every 1,000 readings sent; `held`, when the producer has held the publisher
    back since it last heard (with the seconds held so far).
    """
    summary = PublishSummary()
    t0 = time.perf_counter()
    n = 0
    held_so_far = 0.0
    with Producer(stream, client=client, config=config) as p:
        for n, (key, data) in enumerate(readings, start=1):
            p.send(data, key)
            if n % 1000 == 0:
                if progress is not None:
                    progress(1000)
                if held is not None and p.held_back_seconds > held_so_far:
                    held_so_far = p.held_back_seconds
                    held(held_so_far)
        p.flush()
        m = p.metrics()
    if progress is not None:
        progress(n % 1000)
    summary.seconds = round(time.perf_counter() - t0, 3)
    summary.user_records = m["user_records_written"]
    summary.failed = m["user_records_failed"]
    summary.kinesis_records = m["kinesis_records_written"]
    summary.put_calls = m["put_calls"]
    summary.bytes = m["bytes_written"]
    summary.retried = m["retries"]
    summary.bad_lines = len(bad_lines or [])
    summary.held_back_s = m["admission_wait_s"]
    return summary


