"""Admission by drain time: how much one shard's queue may hold before a new record would wait too long.

Pure (time is passed in). A record put now waits, before its first attempt, about as long as its shard
takes to accept what is queued ahead of it: the queue's bytes over the shard's accepted rate. The
producer admits a record while that wait stays within `ADMIT_SHARE` of `record_ttl`; past it,
`put`/`send` block (or raise, with ``buffer_full="raise"``). So under overload the caller slows to
what the shards accept, and no record expires before it has been tried.

The accepted rate of a shard, in user bytes per second:

- before anything is known, its nominal rate: Kinesis's 1 MiB/s and 1,000 records/s per shard,
  times `rate_limit` when that paces below them; records/s become bytes/s through the bytes the
  shard's recent Kinesis records carried (an aggregate of many readings, or one plain record); an
  AUTO stream's one queue counts all its open shards, or its warm throughput when that is higher;
- then what the shard accepted over the last `WINDOW` seconds. While the shard throttles, that *is*
  its rate (shared with other producers, or a smaller quota than the nominal); while it does not, the
  rate is at least the nominal one (a local server without limits accepts more), and never more than
  the producer's own pacing lets it send (`rate_limit` x the limits).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from streamkit.limits import MIB, SHARD_WRITE_RECORDS_PER_S

__all__ = ["ADMIT_SHARE", "FLOOR_SHARE", "THROTTLE_MEMORY", "WINDOW", "DrainRate", "nominal_rates", "pacing_cap"]

#: A new record is admitted while its shard's backlog drains within this share of `record_ttl`.
ADMIT_SHARE = 0.5
#: Seconds of accepted writes the measured rate is taken over.
WINDOW = 10.0
#: Seconds after its last throttle that a shard's records are sent only when they fit its last second
#: of accepted writes (`DrainRate.room_at`), instead of at the pacing rate alone.
THROTTLE_MEMORY = 60.0
#: Bounds of `DrainRate.margin` (seconds).
MARGIN_MIN, MARGIN_MAX = 0.01, 0.25
#: A shard that accepts nothing still counts as accepting this share of its nominal rate (so its
#: queue keeps room for a few records; they expire after attempts if it never accepts again).
FLOOR_SHARE = 0.02


def nominal_rates(rate_limit: float, *, shards: int = 1, warm_mibps: float | None = None) -> tuple[float, float]:
    """(Kinesis bytes/s, Kinesis records/s) a queue of `shards` shards accepts before anything is measured."""
    factor = min(1.0, rate_limit) if rate_limit > 0 else 1.0
    byte_rate = float(MIB * shards)
    if warm_mibps:
        byte_rate = max(byte_rate, warm_mibps * MIB)
    return byte_rate * factor, SHARD_WRITE_RECORDS_PER_S * shards * factor


def pacing_cap(rate_limit: float, *, shards: int = 1) -> float:
    """Bytes/s the producer's own pacing lets a queue send at most (infinite with pacing off): what is
    measured above it is the pacing bucket's first second of burst, not a rate the queue keeps."""
    return rate_limit * MIB * shards if rate_limit > 0 else float("inf")


@dataclass(slots=True)
class DrainRate:
    """What one shard queue accepted lately: the rate admission works from, and when a throttled
    record fits the shard's last second of writes again."""

    nominal_bytes: float
    nominal_records: float
    #: User bytes a Kinesis record of this queue has carried lately (an exponential average; 0: none yet).
    bytes_per_record: float
    #: Shards behind this queue (an AUTO stream's one queue stands for all its open shards).
    shards: int = 1
    #: `pacing_cap`: no rate is counted above it.
    cap: float = float("inf")
    #: (answer time, user bytes accepted, throttled) per attempt within `WINDOW`, oldest first.
    events: deque[tuple[float, int, bool]] = field(default_factory=deque)
    accepted: int = 0  # user bytes accepted within the window
    throttles: int = 0  # throttled attempts within the window
    #: (send time, Kinesis bytes) of the records accepted within the last second, oldest first.
    second: deque[tuple[float, int]] = field(default_factory=deque)
    second_bytes: int = 0
    last_throttle: float = float("-inf")
    #: Seconds a record timed by `room_at` goes after it would fit: doubled when one is throttled all
    #: the same (the shard admitted the earlier record later than it was sent), eased back on success.
    margin: float = MARGIN_MIN

    def sealed(self, user_bytes: int) -> bool:
        """A Kinesis record of `user_bytes` was made (an aggregate sealed, or a plain record queued);
        True for the queue's first (the budget then rests on a real size: recompute it)."""
        if not self.bytes_per_record:
            self.bytes_per_record = user_bytes
            return True
        self.bytes_per_record += (user_bytes - self.bytes_per_record) * 0.2
        return False

    def observe(self, now: float, user_bytes: int, kinesis_bytes: int, *, throttled: bool, sent: float) -> None:
        """An attempt sent at `sent` came back at `now`: accepted (`user_bytes` in a Kinesis record of
        `kinesis_bytes`) or throttled."""
        self.events.append((now, user_bytes, throttled))
        self.accepted += user_bytes
        self.throttles += throttled
        if throttled:
            if self.throttled_lately(now):
                self.margin = min(MARGIN_MAX, self.margin * 2)
            self.last_throttle = now
        else:
            self.margin = max(MARGIN_MIN, self.margin * 0.8)
        horizon = now - WINDOW
        events = self.events
        while events and events[0][0] < horizon:
            _t, nbytes, was_throttled = events.popleft()
            self.accepted -= nbytes
            self.throttles -= was_throttled
        if not throttled:
            # Taken as accepted when sent: Kinesis admits a record on arrival, and the answer comes
            # after the write; so a retry timed from here is early by at most the request's transit.
            self.second.append((sent, kinesis_bytes))
            self.second_bytes += kinesis_bytes
            self._forget(now)

    def _forget(self, now: float) -> None:
        second = self.second
        while second and second[0][0] <= now - 1.0:
            self.second_bytes -= second.popleft()[1]

    def room_at(self, now: float, size: int) -> float | None:
        """When the writes this queue had accepted in the last second leave room for a Kinesis record
        of `size` under the shard limits (1 MiB and 1,000 records per second per shard); None if they
        leave room now.

        A shard measures its writes over a second. After a throttle, a record timed this way arrives
        when it fits, not at a random backoff later: under overload the shard stays busy instead of
        idling between retries.
        """
        self._forget(now)
        byte_cap, record_cap = MIB * self.shards, SHARD_WRITE_RECORDS_PER_S * self.shards
        used_bytes, used_records = self.second_bytes, len(self.second)
        if used_bytes + size <= byte_cap and used_records < record_cap:
            return None
        for t, k in self.second:  # oldest first: each leaves the second at t + 1
            used_bytes -= k
            used_records -= 1
            if used_bytes + size <= byte_cap and used_records < record_cap:
                return t + 1.0 + self.margin
        return None  # (a record larger than the limit itself: only an empty second takes it)

    def throttled_lately(self, now: float) -> bool:
        return now - self.last_throttle < THROTTLE_MEMORY

    def nominal(self) -> float:
        return min(self.nominal_bytes, self.nominal_records * max(1.0, self.bytes_per_record))

    def rate(self, now: float) -> float:
        """Accepted user bytes per second, as the module docstring says."""
        nominal = self.nominal()
        if not self.events:
            return nominal
        # Over the time the window has observations for (at least 1 s): the start of a busy spell
        # after an idle one is not averaged with the idle time.
        measured = self.accepted / max(1.0, min(WINDOW, now - self.events[0][0]))
        if self.throttles:
            return min(self.cap, max(measured, nominal * FLOOR_SHARE))
        return min(self.cap, max(measured, nominal))

    def budget(self, now: float, ttl: float) -> float:
        """User bytes the queue may hold: what it drains in `ADMIT_SHARE` of the TTL."""
        return self.rate(now) * ttl * ADMIT_SHARE
