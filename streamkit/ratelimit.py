"""Token buckets and per-shard Kinesis limits: used by the local proxy (to enforce) and the producer (to pace).

Pure: time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["KinesisLimits", "ShardLimiter", "TokenBucket"]

MIB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class KinesisLimits:
    """Kinesis's per-shard rates (scaled) and per-call caps (never scaled)."""

    scale: float = 1.0
    write_bytes_per_s: float = 1 * MIB
    write_records_per_s: float = 1000
    read_calls_per_s: float = 5
    read_bytes_per_s: float = 2 * MIB
    put_records_max_entries: int = 500
    put_records_max_bytes: int = 5 * MIB
    record_max_bytes: int = 1 * MIB
    get_records_max_limit: int = 10_000

    def scaled(self, rate: float) -> float:
        return rate * self.scale


@dataclass(kw_only=True)
class TokenBucket:
    """Refills at `rate` per second up to `capacity`; may run into debt when charged after the fact."""

    rate: float
    capacity: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, now: float, seconds: float = 1.0, *, min_capacity: float = 0.0) -> TokenBucket:
        cap = max(rate * seconds, min_capacity, 1e-9)
        return cls(rate=rate, capacity=cap, tokens=cap, updated=now)

    def wait_time(self, amount: float, now: float) -> float:
        """Seconds until `amount` can be taken (0 if now); amounts above capacity wait for a full bucket."""
        self.refill(now)
        missing = min(amount, self.capacity) - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def try_take(self, amount: float, now: float) -> bool:
        self.refill(now)
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        return False

    def charge(self, amount: float, now: float) -> None:
        """Take `amount` whether or not it is there (reads are charged after the data is returned)."""
        self.refill(now)
        self.tokens -= amount

    def in_debt(self, now: float) -> bool:
        self.refill(now)
        return self.tokens < 0


@dataclass
class _ShardBuckets:
    write_bytes: TokenBucket
    write_records: TokenBucket
    read_calls: TokenBucket
    read_bytes: TokenBucket


@dataclass
class ShardLimiter:
    """Admits or refuses writes and reads per shard, as Kinesis would."""

    limits: KinesisLimits = field(default_factory=KinesisLimits)
    _shards: dict[str, _ShardBuckets] = field(default_factory=dict)

    def _buckets(self, shard: str, now: float) -> _ShardBuckets:
        b = self._shards.get(shard)
        if b is None:
            lim = self.limits
            b = self._shards[shard] = _ShardBuckets(
                # A scaled-down shard must still let one record of the maximum size through now and then.
                write_bytes=TokenBucket.full(lim.scaled(lim.write_bytes_per_s), now, min_capacity=lim.record_max_bytes),
                write_records=TokenBucket.full(lim.scaled(lim.write_records_per_s), now),
                read_calls=TokenBucket.full(lim.scaled(lim.read_calls_per_s), now),
                read_bytes=TokenBucket.full(lim.scaled(lim.read_bytes_per_s), now),
            )
        return b

    def admit_write(self, shard: str, nbytes: int, now: float) -> bool:
        """One record of `nbytes` (data + partition key): both the byte and the record budget must allow it."""
        b = self._buckets(shard, now)
        b.write_bytes.refill(now)
        b.write_records.refill(now)
        if b.write_records.tokens >= 1 and b.write_bytes.tokens >= nbytes:
            b.write_records.tokens -= 1
            b.write_bytes.tokens -= nbytes
            return True
        return False

    def admit_read_call(self, shard: str, now: float) -> bool:
        """A GetRecords call: refused past 5 calls/s, or while an earlier large read is still being paid off."""
        b = self._buckets(shard, now)
        if b.read_bytes.in_debt(now):
            return False
        return b.read_calls.try_take(1, now)

    def charge_read(self, shard: str, nbytes: int, now: float) -> None:
        self._buckets(shard, now).read_bytes.charge(nbytes, now)

    def reset(self) -> None:
        self._shards.clear()
