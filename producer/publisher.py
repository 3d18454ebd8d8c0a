"""The sensor publisher: readings from a JSON-lines file or a simulated fleet, through the Producer."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import orjson

from producer.config import ProducerConfig
from producer.futures import RecordFuture
from producer.position import FilePosition, save_position
from producer.producer import Producer
from producer.results import FailedRecord
from streamkit.aggregation import MAX_RECORD_BYTES
from streamkit.destinations import parse_destination
from streamkit.errors import ConfigurationError, ProducerClosedError, StreamkitError, ValidationError
from streamkit.hashing import validate_partition_key

__all__ = ["BadLine", "PositionKeeper", "PublishSummary", "Reading", "StopRequest", "file_lines", "file_readings", "publish",
           "simulated_readings"]

log = logging.getLogger("streamkit.publisher")


@dataclass(frozen=True, kw_only=True)
class BadLine:
    line_number: int
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Reading:
    """One reading of a file: its partition key, its bytes, its line number and the byte offset past the line."""

    key: str
    data: bytes
    line: int
    end_offset: int


@dataclass(kw_only=True)
class PublishSummary:
    """What a run read, wrote and handed over. ``read`` = ``user_records`` + ``failed`` once it ends."""

    #: Readings accepted by the producer (read from the input).
    read: int = 0
    #: Readings acknowledged by Kinesis.
    user_records: int = 0
    #: Readings that could not be written: handed to the failure destination, or not (none was set,
    #: or it refused them).
    handed_over: int = 0
    not_handed_over: int = 0
    #: Readings accepted and not acknowledged by Kinesis (``read - user_records``): handed over or lost.
    unacknowledged: int = 0
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
    #: The signal that stopped the run early, if any (SIGTERM, SIGINT, SIGHUP).
    stopped_by: str | None = None
    #: `--file`: the line the durable position is past now (a rerun resumes after it).
    position_line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


def file_readings(path: Path, key_field: str, on_bad: Callable[[BadLine], None], *,
                  max_record_size: int = MAX_RECORD_BYTES) -> Iterator[tuple[str, bytes]]:
    """(partition key, JSON bytes) per line; bad lines go to `on_bad` with their number and are not yielded.

    Bad: not JSON, no usable key field, or a reading the producer would refuse (a key of more than
    256 characters, or more than `max_record_size` bytes with its key).
    """
    for r in file_lines(path, key_field, on_bad, max_record_size=max_record_size):
        yield r.key, r.data


def file_lines(path: Path, key_field: str, on_bad: Callable[[BadLine], None], *,
               max_record_size: int = MAX_RECORD_BYTES, start: FilePosition | None = None) -> Iterator[Reading]:
    """`file_readings` with each reading's line number and end offset, from `start` (a kept position) on."""
    start = start or FilePosition()
    with path.open("rb") as fh:
        fh.seek(start.offset)
        offset = start.offset
        for number, raw in enumerate(fh, start=start.line + 1):
            offset += len(raw)
            parsed = _parse_line(raw, number, key_field, on_bad, max_record_size)
            if parsed is not None:
                yield Reading(key=parsed[0], data=parsed[1], line=number, end_offset=offset)


def _parse_line(raw: bytes, number: int, key_field: str, on_bad: Callable[[BadLine], None],
                max_record_size: int) -> tuple[str, bytes] | None:
    line = raw.strip()
    if not line:
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        on_bad(BadLine(line_number=number, reason=f"not valid JSON ({exc})"))
        return None
    if not isinstance(obj, dict) or key_field not in obj or obj[key_field] in (None, ""):
        on_bad(BadLine(line_number=number, reason=f"no {key_field!r} field to use as the partition key"))
        return None
    key = str(obj[key_field])
    try:
        validate_partition_key(key)
    except ValidationError as exc:
        on_bad(BadLine(line_number=number, reason=str(exc)))
        return None
    size = len(line) + len(key.encode("utf-8"))
    if size > max_record_size:
        on_bad(BadLine(line_number=number, reason=f"reading of {size} bytes with its key is over the "
                                                  f"{max_record_size}-byte Kinesis record limit"))
        return None
    return key, line


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


class StopRequest:
    """A stop asked for by a signal (SIGTERM, SIGINT, SIGHUP): `request` only stores, so a signal
    handler may call it at any point; the publisher then stops reading, flushes for at most its grace
    period and hands what is still unwritten to the failure destination. A second request ends the
    grace at once."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.at = 0.0
        self.urgent = False
        self.producer: Producer | None = None

    def request(self, reason: str) -> None:
        if self.reason is not None:
            self.urgent = True
        else:
            self.at = time.monotonic()
            self.reason = reason
        p = self.producer
        if p is not None:
            p.stop_accepting()


class _HandOver:
    """The producer's on_failure in the publisher: passes failed readings to the destination (if any)
    and counts what it took and what could not be handed over."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.handed = 0
        self.lost = 0
        self._lock = threading.Lock()

    def send_json(self, documents: Sequence[dict[str, Any]]) -> None:
        n = len(documents)
        if self.target is None:
            with self._lock:
                self.lost += n
            return
        try:
            self.target.send_json(documents)
        except Exception:
            with self._lock:
                self.lost += n
            raise
        with self._lock:
            self.handed += n

    def each(self, record: FailedRecord) -> None:
        """For a callable target: one `FailedRecord` at a time, as `ProducerConfig.on_failure` takes it."""
        try:
            self.target(record)
        except Exception:
            with self._lock:
                self.lost += 1
            raise
        with self._lock:
            self.handed += 1


class _Positions:
    """`produce --file`'s durable position: advanced past each line once its reading is acknowledged or
    handed over, in line order; saved at most once a second and at the end (`producer.position`)."""

    def __init__(self, keeper: PositionKeeper, hand_over: _HandOver) -> None:
        self.keeper = keeper
        self.hand_over = hand_over
        self.pending: deque[tuple[int, int, RecordFuture]] = deque()
        self.pos = keeper.start
        self.saved_at = 0.0  # the first advance saves: a position file exists from the first lines on
        self.blocked = False  # a reading failed and was not handed over: the position stays before it

    def advance(self, *, save: bool = False) -> None:
        pending = self.pending
        while pending and not self.blocked:
            line, offset, fut = pending[0]
            if not fut.settled():
                break
            if fut._exception is not None and (self.hand_over.target is None or self.hand_over.lost):
                self.blocked = True
                break
            pending.popleft()
            self.pos = FilePosition(line=line, offset=offset)
        now = time.monotonic()
        if save or now - self.saved_at >= 1.0:
            self.saved_at = now
            self.keeper.save(self.pos)


@dataclass(frozen=True, kw_only=True)
class PositionKeeper:
    """Where `produce --file` keeps its position, and where this run started (`producer.position`)."""

    position_file: Path
    input_path: Path
    stream: str
    start: FilePosition

    def save(self, pos: FilePosition) -> None:
        save_position(self.position_file, self.input_path, self.stream, pos)


def publish(stream: str, readings: Iterable[tuple[str, bytes]] | Iterable[Reading], *, client: Any = None,
            config: ProducerConfig | None = None, progress: Callable[[int], None] | None = None,
            bad_lines: list[BadLine] | None = None, held: Callable[[float], None] | None = None,
            stop: StopRequest | None = None, shutdown_grace: float = 5.0,
            positions: PositionKeeper | None = None) -> PublishSummary:
    """Send every reading; returns the counts once each is acknowledged or handed over (or a stop ended it).

    Readings go out with `Producer.send` (no future each: a long file does not pile up futures in
    memory), or, when a position is kept (`Reading`s of a file), with `put`, whose futures say which
    lines are done. A reading that fails for good goes to ``config.on_failure`` (counted as handed
    over) or, with none, is counted as not handed over. On `stop`, reading ends, the producer flushes
    for at most `shutdown_grace` seconds, and what is still unwritten is handed over.
    """
    config = config or ProducerConfig()
    target = config.on_failure
    if isinstance(target, str):
        target = parse_destination(target)
    hand_over = _HandOver(target)
    plain_callable = target is not None and not hasattr(target, "send_json")
    config = replace(config, on_failure=cast(Any, hand_over.each if plain_callable else hand_over))
    stop = stop or StopRequest()
    summary = PublishSummary()
    t0 = time.perf_counter()
    n = 0
    held_so_far = 0.0
    p = Producer(stream, client=client, config=config)
    stop.producer = p
    started = stop.reason is None
    if started:
        p.start()  # a missing stream (or an unreachable server) is said before any reading is read
    else:  # stopped before it began: no call at all, and the summary says so
        p.stop_accepting()
    track = _Positions(positions, hand_over) if positions is not None else None
    try:
        for item in readings:
            if stop.reason is not None:
                break
            try:
                if track is not None:
                    r = cast(Reading, item)
                    track.pending.append((r.line, r.end_offset, cast(RecordFuture, p.put(r.data, r.key))))
                else:
                    key, data = cast(tuple[str, bytes], item)
                    p.send(data, key)
            except ProducerClosedError:
                break  # stopped while it waited for room: this reading was not accepted (a rerun reads it)
            n += 1
            if n % 1000 == 0:
                if progress is not None:
                    progress(1000)
                if held is not None and p.held_back_seconds > held_so_far:
                    held_so_far = p.held_back_seconds
                    held(held_so_far)
                if track is not None:
                    track.advance()
    finally:
        if started:
            _finish(p, stop, shutdown_grace, track)
        else:
            p.close()
    m = p.metrics()
    if progress is not None:
        progress(n % 1000)
    summary.seconds = round(time.perf_counter() - t0, 3)
    summary.read = n
    summary.user_records = m["user_records_written"]
    summary.handed_over = hand_over.handed
    summary.not_handed_over = hand_over.lost
    summary.unacknowledged = n - summary.user_records
    summary.failed = m["user_records_failed"]
    summary.kinesis_records = m["kinesis_records_written"]
    summary.put_calls = m["put_calls"]
    summary.bytes = m["bytes_written"]
    summary.retried = m["retries"]
    summary.bad_lines = len(bad_lines or [])
    summary.held_back_s = m["admission_wait_s"]
    summary.stopped_by = stop.reason
    if track is not None:
        summary.position_line = track.pos.line
    return summary


def _finish(p: Producer, stop: StopRequest, grace: float, track: _Positions | None) -> None:
    """Flush (in slices, so a signal's grace is kept), then close: what is unwritten is handed over."""
    while True:
        try:
            if p.flush(timeout=0.1):
                break
        except StreamkitError as exc:  # the sender died: close() below fails what it held, reported
            log.error("%s", exc)
            break
        if track is not None:
            track.advance()
        if stop.reason is not None and (stop.urgent or time.monotonic() - stop.at >= grace):
            break
    p.close(timeout=0)
    if track is not None:
        track.advance(save=True)
