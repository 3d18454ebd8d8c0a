"""Token buckets and per-shard Kinesis limits: used by the local proxy (to enforce) and the producer (to pace).

Pure: time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamkit import limits

__all__ = ["KinesisLimits", "ShardLimiter", "TokenBucket"]

@dataclass(frozen=True, kw_only=True)
class KinesisLimits:
    """Kinesis's per-shard rates (scaled) and per-call caps (never scaled); defaults from streamkit.limits."""

    scale: float = 1.0
    write_bytes_per_s: float = limits.SHARD_WRITE_BYTES_PER_S
    write_records_per_s: float = limits.SHARD_WRITE_RECORDS_PER_S
    read_calls_per_s: float = limits.SHARD_READ_CALLS_PER_S
    read_bytes_per_s: float = limits.SHARD_READ_BYTES_PER_S
    put_records_max_entries: int = limits.PUT_RECORDS_MAX_ENTRIES
    put_records_max_bytes: int = limits.PUT_RECORDS_MAX_BYTES
    record_max_bytes: int = limits.RECORD_MAX_BYTES
    get_records_max_limit: int = limits.GET_RECORDS_MAX_RECORDS
    get_records_max_bytes: int = limits.GET_RECORDS_MAX_BYTES

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
    reads_refused_until: float = 0.0


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
                # ...and one record, and one GetRecords call: at --limit-scale 0.1 the read-call bucket would
                # otherwise hold 5 x 0.1 = 0.5 tokens, and no call would ever fit.
                write_records=TokenBucket.full(lim.scaled(lim.write_records_per_s), now, min_capacity=1.0),
                read_calls=TokenBucket.full(lim.scaled(lim.read_calls_per_s), now, min_capacity=1.0),
                read_bytes=TokenBucket.full(lim.scaled(lim.read_bytes_per_s), now),
            )
        return b

    def admit_write(self, shard: str, nbytes: int, now: float, *, burst: int = 0) -> bool:
        """One record of `nbytes` (data + partition key): both the byte and the record budget must allow it.

        `burst`: the stream's maximum record size, when above 1 MiB: the shard's byte budget is then a
        tank of that size that refills at its sustained rate, as AWS serves large records.
        """
        b = self._buckets(shard, now)
        if burst > b.write_bytes.capacity:
            b.write_bytes.capacity = burst
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
        if b.read_bytes.in_debt(now) or now < b.reads_refused_until:
            return False
        return b.read_calls.try_take(1, now)

    def penalise_reads(self, shard: str, now: float, until: float) -> None:
        """Refuse the shard's GetRecords calls until `until` (after one that returned the 10 MiB maximum)."""
        b = self._buckets(shard, now)
        b.reads_refused_until = max(b.reads_refused_until, until)

    def charge_read(self, shard: str, nbytes: int, now: float) -> None:
        self._buckets(shard, now).read_bytes.charge(nbytes, now)

    def reset(self) -> None:
        self._shards.clear()
