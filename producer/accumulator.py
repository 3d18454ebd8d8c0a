"""Per-shard aggregation and PutRecords collection: the producer's decisions, with no I/O.

User records (`Item`s: a `Pending` future from `put`, or a bare `Rec` from `send`) are routed to
their predicted shard, packed into KPL aggregates there, and sealed into `Entry`s (one Kinesis record
each) when full or old enough. `take_batch` picks what one PutRecords call should carry: in shard
FIFO order, within the call caps, the per-shard pacing, the retry times and (when ordered) at most
one entry per shard in flight. The `Producer` does the I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from producer.admission import DrainRate, nominal_rates, pacing_cap
from producer.config import ProducerConfig
from producer.futures import PENDING, RecordFuture
from streamkit.aggregation import AggregateBuilder
from streamkit.errors import ValidationError
from streamkit.hashing import ShardMap, hash_key
from streamkit.kinesis_types import PutEntry
from streamkit.limits import MIB
from streamkit.ratelimit import TokenBucket

__all__ = ["AUTO_PLACED", "Accumulator", "Entry", "Item", "Pending", "Rec"]

THROTTLED = "ProvisionedThroughputExceededException"

#: The one queue of an AUTO stream's records (the service, not the key, picks their shard).
AUTO_PLACED = "auto-placed"

class Rec:
    """One user record sent with `Producer.send` (no future): the same named fields as a `Pending`.

    data, partition_key, explicit_hash_key, put time on the producer's monotonic clock, size (data +
    UTF-8 key bytes), and PutRecords attempts made in entries it has left at a reshard.
    """

    __slots__ = ("attempts", "data", "explicit_hash_key", "partition_key", "put_mono", "size")

    def __init__(self, data: bytes, partition_key: str | None, explicit_hash_key: str | None, put_mono: float,
                 size: int) -> None:
        self.data = data
        self.partition_key = partition_key
        self.explicit_hash_key = explicit_hash_key
        self.put_mono = put_mono
        self.size = size
        self.attempts = 0


class Pending(RecordFuture):
    """A user record put with `Producer.put`: the future `put` returns, with the record's fields."""

    __slots__ = ("attempts", "data", "explicit_hash_key", "partition_key", "put_mono", "size")

    def __init__(self, data: bytes, partition_key: str | None, explicit_hash_key: str | None, put_mono: float,
                 size: int) -> None:
        # RecordFuture.__init__ inlined: this runs once per record.
        self._state = PENDING
        self._exception = None
        self._factory = None
        self._sync = None
        self.data = data
        self.partition_key = partition_key
        self.explicit_hash_key = explicit_hash_key
        self.put_mono = put_mono
        self.size = size
        self.attempts = 0


#: What the accumulator buffers per user record: a `Pending` (put, with a future) or a bare `Rec`
#: (sent with `Producer.send`, no future).
Item = Pending | Rec


@dataclass(eq=False, slots=True)
class Entry:
    """One Kinesis record to send: an aggregate of `records`, or one plain record."""

    shard_id: str
    #: The Kinesis record's bytes, or (an aggregate) the builder that makes them: built on first use,
    #: in the sending thread, so sealing under the producer's lock (and in a caller's put) stays cheap.
    payload: bytes | AggregateBuilder
    partition_key: str | None
    explicit_hash_key: str | None
    records: list[Item]
    aggregated: bool
    size: int  # what Kinesis counts: data + partition key bytes
    oldest: float  # put time of its oldest record (monotonic)
    user_bytes: int  # the records' own data + key bytes (what they count against the buffer bound)
    keys: AbstractSet[str | None]  # the records' partition keys (an aggregate's: its builder's key table)
    full: bool = False  # an aggregate sealed because the next record did not fit: waiting cannot grow it
    not_before: float = 0.0
    sent_at: float = 0.0  # when its last attempt went out
    attempts: int = 0
    last_error: str = ""
    last_code: str = ""

    @property
    def data(self) -> bytes:
        p = self.payload
        if isinstance(p, AggregateBuilder):
            p = self.payload = p.build()
        return p

    def to_api(self) -> PutEntry:
        out: PutEntry = {"Data": self.data}
        if self.partition_key is not None:  # None: a keyless record for an AUTO stream, omitted on the wire
            out["PartitionKey"] = self.partition_key
        if self.explicit_hash_key is not None:
            out["ExplicitHashKey"] = self.explicit_hash_key
        return out


@dataclass(eq=False)
class _ShardQueue:
    shard_id: str
    builder: AggregateBuilder | None = None
    open_records: list[Item] = field(default_factory=list)
    open_bytes: int = 0  # user bytes of open_records
    open_since: float = 0.0  # put time of open_records[0]
    ready: deque[Entry] = field(default_factory=deque)
    in_flight: int = 0
    records_bucket: TokenBucket | None = None
    bytes_bucket: TokenBucket | None = None
    #: User bytes of every record of this shard not yet resolved (open, ready or in flight), and what
    #: admission lets it hold (`producer.admission`); `drain` measures what the shard accepts.
    held_bytes: int = 0
    budget: float = float("inf")
    drain: DrainRate | None = None
    #: When the shard last accepted a record (or its first record came): a shard that accepts nothing
    #: for `record_ttl` is stuck, and only then may records expire before their first attempt.
    progress_at: float | None = None


class Accumulator:
    """Buffers user records per shard and hands out PutRecords batches."""

    def __init__(self, config: ProducerConfig, shard_map: ShardMap, *, placed_by_service: bool = False) -> None:
        self.config = config
        self.shard_map = shard_map
        #: An AUTO stream: Kinesis places records itself, so there is no shard to predict. Every record
        #: goes to one queue (no key needed), paced as all the open shards together.
        self.placed_by_service = placed_by_service
        self.pace_scale = max(1, len(shard_map.open_shards)) if placed_by_service else 1
        self._queues: dict[str, _ShardQueue] = {}
        #: Admission by drain time (off with buffer_full="expire"); an AUTO stream's warm throughput.
        self.admission = config.buffer_full != "expire"
        self.warm_mibps: float | None = None
        self.buffered_bytes = 0
        self.buffered_records = 0
        self._route: dict[str, _ShardQueue] = {}  # partition key -> its shard's queue, for the current map

    def _route_key(self, partition_key: str) -> _ShardQueue:
        q = self._queue(self.shard_map.shard_for_key(partition_key).shard_id)
        if len(self._route) >= 100_000:
            self._route.clear()
        self._route[partition_key] = q
        return q

    # -- intake --------------------------------------------------------------------------------
    def _queue(self, shard_id: str) -> _ShardQueue:
        q = self._queues.get(shard_id)
        if q is None:
            q = self._queues[shard_id] = _ShardQueue(shard_id)
            if self.admission:
                cfg = self.config
                nb, nr = nominal_rates(cfg.rate_limit, shards=self.pace_scale,
                                       warm_mibps=self.warm_mibps if self.placed_by_service else None)
                q.drain = DrainRate(nominal_bytes=nb, nominal_records=nr, shards=self.pace_scale,
                                    cap=pacing_cap(cfg.rate_limit, shards=self.pace_scale),
                                    bytes_per_record=cfg.aggregation_max_size if cfg.aggregation else 0.0)
                q.budget = q.drain.budget(0.0, cfg.ttl)
        return q

    def queue_for(self, key: str | None, ehk: str | None) -> _ShardQueue:
        """The queue a record of this key (and explicit hash key) goes to."""
        if self.placed_by_service:
            return self._queue(AUTO_PLACED)
        if ehk is None:
            return self._route.get(key) or self._route_key(key)  # type: ignore[arg-type]
        return self._queue(self.shard_map.shard_for_key(key, ehk).shard_id)  # type: ignore[arg-type]

    @staticmethod
    def has_room(q: _ShardQueue, size: int) -> bool:
        """Admission: a record of `size` fits in its shard's drain budget (an empty shard takes any record)."""
        return q.held_bytes + size <= q.budget or q.held_bytes == 0

    def observe(self, e: Entry, now: float, *, accepted: bool, throttled: bool) -> None:
        """An attempt of `e` came back; the shard's measured rate and admission budget follow."""
        q = self._queues.get(e.shard_id)
        if q is None or q.drain is None:
            return
        q.drain.observe(now, e.user_bytes if accepted else 0, e.size, throttled=throttled, sent=e.sent_at)
        if accepted:
            q.progress_at = now
        q.budget = q.drain.budget(now, self.config.ttl)

    def making_progress(self, e: Entry, now: float) -> bool:
        """Admission is on and `e`'s shard accepted a record within the last `record_ttl` (it is not stuck)."""
        q = self._queues.get(e.shard_id)
        return (self.admission and q is not None and q.progress_at is not None
                and now - q.progress_at < self.config.ttl)

    def throttled_retry_at(self, e: Entry, now: float) -> float | None:
        """When a throttled `e` fits its shard's last second of accepted writes again (`DrainRate.room_at`)."""
        q = self._queues.get(e.shard_id)
        if q is None or q.drain is None:
            return None
        return q.drain.room_at(now, e.size)

    def drain_seconds(self, now: float) -> dict[str, float]:
        """Per shard queue holding records: seconds they take to drain at its accepted rate (admission's view)."""
        return {sid: q.held_bytes / q.drain.rate(now) for sid, q in self._queues.items()
                if q.drain is not None and q.held_bytes}

    def add(self, item: Item, tags: tuple[tuple[str, str], ...] = ()) -> bool:
        """Route one user record to its shard's open aggregate, sealing it when full; admitted whatever
        the shard holds (records moving between queues, or admitted already by `has_room`).

        True when the sender has something new to consider (a new aggregate was started, so a new
        flush deadline exists, or one was sealed and is ready to go).
        """
        return self.add_fields(item, item.data, item.partition_key, item.explicit_hash_key, item.put_mono,  # type: ignore[return-value]
                               item.size, True, tags)

    def add_fields(self, item: Item, data: bytes, key: str | None, ehk: str | None, put_mono: float, size: int,
                   admitted: bool = False, tags: tuple[tuple[str, str], ...] = ()) -> bool | None:
        """`add` with the record's fields already at hand (the producer's per-record path).

        None, adding nothing, when the record's shard has no room (`has_room`) and it was not `admitted`.
        `tags` go into the record's KPL sub-record (a trace context; a plain record carries none).
        """
        if self.placed_by_service:  # (aggregation is off there too: a keyless record meets no builder)
            q = self._queue(AUTO_PLACED)
        elif ehk is None:
            q = self._route.get(key) or self._route_key(key)  # type: ignore[arg-type]  # keyed off AUTO streams
        else:
            q = self._queue(self.shard_map.shard_for_key(key, ehk).shard_id)  # type: ignore[arg-type]
        held = q.held_bytes
        if held + size > q.budget and held and not admitted:
            return None
        q.held_bytes = held + size
        self.buffered_bytes += size
        self.buffered_records += 1
        b = q.builder
        if b is not None and (b.try_add(data, key, ehk, tags) if tags else b.try_add(data, key, ehk)):  # type: ignore[arg-type]
            # The common case: the record joins its shard's open aggregate.
            q.open_records.append(item)
            q.open_bytes += size
            return False
        if not self.config.aggregation:
            q.ready.append(self._plain(q.shard_id, item))
            if q.drain is not None and q.drain.sealed(size):
                q.budget = q.drain.budget(put_mono, self.config.ttl)
            return len(q.ready) == 1
        self._seal(q, full=True)  # full (or none open yet): start a new aggregate with this record
        b = q.builder = AggregateBuilder(self.config.aggregation_max_size)
        try:
            b.try_add(data, key, ehk, tags)  # type: ignore[arg-type]
        except ValidationError:
            # Too big to aggregate but within the record limit: it goes alone, as a plain record.
            q.builder = None
            q.ready.append(self._plain(q.shard_id, item))
            if q.drain is not None:
                q.drain.sealed(size)
            return True
        q.open_records.append(item)
        q.open_bytes = size
        q.open_since = put_mono
        return True

    def _plain(self, shard_id: str, item: Item) -> Entry:
        key, size = item.partition_key, item.size
        return Entry(shard_id=shard_id, payload=item.data, partition_key=key, explicit_hash_key=item.explicit_hash_key,
                     records=[item], aggregated=False, size=size, oldest=item.put_mono, user_bytes=size,
                     keys=frozenset((key,)))

    def _seal(self, q: _ShardQueue, *, full: bool = False) -> None:
        b, recs = q.builder, q.open_records
        q.builder, q.open_records = None, []
        if b is None or not recs:
            return
        if q.drain is not None:
            q.drain.sealed(q.open_bytes)
        if len(recs) == 1:
            q.ready.append(self._plain(q.shard_id, recs[0]))
            return
        assert b.partition_key is not None
        # Route the aggregate by an explicit hash key inside its shard: the first record's own one,
        # else the hash of its key (which predicted this shard).
        ehk = b.explicit_hash_key if b.explicit_hash_key is not None else str(hash_key(b.partition_key))
        q.ready.append(Entry(shard_id=q.shard_id, payload=b, partition_key=b.partition_key, explicit_hash_key=ehk,
                             records=recs, aggregated=True, size=b.record_size, oldest=q.open_since,
                             user_bytes=q.open_bytes, keys=b.partition_keys(), full=full))

    def seal_due(self, now: float) -> None:
        """Seal the open aggregates whose oldest record has waited `record_max_buffered_time`.

        An aggregate whose shard could not send it now anyway (its queue is not empty, or, when ordered,
        a record is in flight) stays open and keeps filling: sealing it early would only cost records.
        """
        linger = self.config.linger
        ordered = self.config.ordered
        for q in self._queues.values():
            if not q.open_records or now - q.open_since < linger:
                continue
            if q.ready or (ordered and q.in_flight):
                continue
            self._seal(q)

    def seal_all(self) -> None:
        for q in self._queues.values():
            self._seal(q)

    # -- output --------------------------------------------------------------------------------
    def _pace(self, q: _ShardQueue, e: Entry, now: float, take: bool) -> float:
        """0 when the shard's pacing budget admits `e` (taking it if asked), else seconds to wait."""
        rate = self.config.rate_limit
        if rate <= 0:
            return 0.0
        if q.records_bucket is None or q.bytes_bucket is None:
            q.records_bucket = TokenBucket.full(1000 * rate * self.pace_scale, now)
            q.bytes_bucket = TokenBucket.full(MIB * rate * self.pace_scale, now, min_capacity=self.config.record_limit)
        wait = max(q.records_bucket.wait_time(1, now), q.bytes_bucket.wait_time(e.size, now))
        d = q.drain
        if wait <= 0 and d is not None and d.throttled_lately(now):
            # The shard throttled lately: send only what fits its last second of accepted writes.
            fits = d.room_at(now, e.size)
            if fits is not None:
                wait = fits - now
        if wait <= 0 and take:
            q.records_bucket.tokens -= 1
            q.bytes_bucket.tokens -= e.size
        return wait

    def take_batch(self, now: float, *, flush: bool = False, free_connections: int = 1) -> list[Entry]:
        """Entries for one PutRecords call, or [] when nothing should be sent yet.

        Sends when a call would be full, when a full aggregate is ready, when the oldest sendable
        record has waited `record_max_buffered_time`, or on flush. With several connections free, what is ready is
        spread over them (no call smaller than one full record, ~1 MiB): parallel calls keep
        serialising, sending and the server's ingest overlapped instead of queued behind one call.
        """
        cfg = self.config
        candidates: list[tuple[_ShardQueue, Entry]] = []
        count = size = 0
        oldest = float("inf")
        any_full = False
        max_count = cfg.collection_max_count
        for q in self._queues.values():
            if cfg.ordered and q.in_flight:
                continue
            keys: set[str | None] = set()
            for n, e in enumerate(q.ready):
                if n >= max_count or e.not_before > now or self._pace(q, e, now, take=False) > 0:
                    break  # FIFO per shard: nothing overtakes a record that must wait
                if cfg.ordered:
                    # Several records of a shard may share a call only if no partition key is in two of
                    # them: a failed one then never lets a later record of its key through first.
                    if not keys.isdisjoint(e.keys):
                        break
                    keys.update(e.keys)
                candidates.append((q, e))
                count += 1
                size += e.size
                oldest = min(oldest, e.oldest)
                any_full = any_full or e.full
        if not candidates:
            return []
        # A full aggregate goes at once: waiting cannot make it bigger, and a free connection that
        # sends it now keeps serialising and the server's ingest overlapped with the puts.
        full = count >= cfg.collection_max_count or size >= cfg.call_limit or any_full
        if not (flush or full or now - oldest >= cfg.linger or any(e.attempts for _, e in candidates)):
            return []
        batch: list[Entry] = []
        max_size = min(cfg.call_limit, max(cfg.record_limit, size // max(1, free_connections)))
        size = 0
        candidates.sort(key=lambda qe: qe[1].oldest)
        taken_per_shard: dict[str, int] = {}
        for q, e in candidates:
            if len(batch) >= cfg.collection_max_count or (batch and size + e.size > max_size):
                break
            # Keep each shard's FIFO: only its next entry may be taken.
            if q.ready[taken_per_shard.get(q.shard_id, 0)] is not e:
                continue
            if self._pace(q, e, now, take=True) > 0:
                continue
            batch.append(e)
            size += e.size
            taken_per_shard[q.shard_id] = taken_per_shard.get(q.shard_id, 0) + 1
        for e in batch:
            q = self._queues[e.shard_id]
            q.ready.remove(e)
            q.in_flight += 1
            e.attempts += 1
        return batch

    def next_wakeup(self, now: float) -> float | None:
        """When something next becomes due: an aggregate to seal, a call to send, a retry or pacing delay."""
        cfg = self.config
        times: list[float] = []
        for q in self._queues.values():
            if q.open_records and not q.ready and not (cfg.ordered and q.in_flight):
                times.append(q.open_since + cfg.linger)
            if q.ready and not (cfg.ordered and q.in_flight):
                e = q.ready[0]
                times.append(max(e.not_before, e.oldest + cfg.linger if not e.attempts else 0.0,
                                 now + self._pace(q, e, now, take=False)))
        return min(times) if times else None

    # -- completion ----------------------------------------------------------------------------
    def finished(self, e: Entry) -> None:
        """An entry is out of flight for good (written, or failed for good); its records leave the buffer."""
        q = self._queues[e.shard_id]
        q.in_flight -= 1
        q.held_bytes -= e.user_bytes
        self.buffered_bytes -= e.user_bytes
        self.buffered_records -= len(e.records)

    def retry_later(self, e: Entry, not_before: float, error: str, code: str) -> None:
        """Put a failed entry back at the head of its shard's queue, to go again at `not_before`."""
        q = self._queues[e.shard_id]
        q.in_flight -= 1
        e.not_before = not_before
        e.last_error, e.last_code = error, code
        q.ready.appendleft(e)

    def dropped(self, e: Entry) -> None:
        """An entry that will not be sent again (expired or rejected); its records leave the buffer."""
        self.buffered_bytes -= e.user_bytes
        self.buffered_records -= len(e.records)

    def expire(self, now: float, ttl: float) -> list[Entry]:
        """Remove queued entries whose oldest record is past its TTL (in-flight ones are left alone).

        With admission by drain time, an entry not yet tried stays (it is written late rather than never
        tried: admission let it in on a rate the shard did not keep) unless its shard is stuck, having
        accepted nothing for a TTL: throttled without end, or a server that does not answer.
        """
        out: list[Entry] = []
        for q in self._queues.values():
            if not q.ready:
                continue
            if q.progress_at is None:
                q.progress_at = q.ready[0].oldest
            stuck = not self.admission or now - q.progress_at >= ttl  # (making_progress, for a queue)
            keep: deque[Entry] = deque()
            for e in q.ready:
                # A throttled entry of a shard still accepting records stays too (as `making_progress`
                # keeps it on a throttled answer): its shard is busy, not stuck.
                gave_up = stuck or (e.attempts and e.last_code != THROTTLED)
                (out if now - e.oldest >= ttl and gave_up else keep).append(e)
            q.ready = keep
        for e in out:
            self._queues[e.shard_id].held_bytes -= e.user_bytes
            self.dropped(e)
        return out

    @property
    def in_flight(self) -> int:
        return sum(q.in_flight for q in self._queues.values())

    @property
    def idle(self) -> bool:
        # Read from the queues, not the counters: a KeyboardInterrupt landing inside `add_fields` can
        # leave a counter one record off, and a flush must still see the buffer empty once it is.
        return not any(q.open_records or q.ready or q.in_flight for q in self._queues.values())

    def reroute(self, shard_map: ShardMap, *, everything: bool = False,
                first: Sequence[Item] = ()) -> tuple[int, list[Item]]:
        """Adopt a new shard map; records queued for shards that closed (or, with `everything`, all
        records: the stream switched record distribution) are routed again, in order, after `first`
        (records out of the buffer already, to be put again before them: they were put earlier).

        Call it only with nothing in flight. Returns how many user records moved, and those that can no
        longer be routed (records without a key, once the stream places records by key again).
        """
        self.shard_map = shard_map
        self.pace_scale = max(1, len(shard_map.open_shards)) if self.placed_by_service else 1
        self._route.clear()
        moved: list[Item] = []
        for sid in list(self._queues):
            if not everything and sid in shard_map and shard_map[sid].is_open and sid != AUTO_PLACED:
                continue
            q = self._queues.pop(sid)
            assert q.in_flight == 0, "reroute with records in flight"
            for e in q.ready:
                moved.extend(_carry_attempts(item, e.attempts) for item in e.records)
            moved.extend(q.open_records)
        self.buffered_bytes -= sum(item.size for item in moved)
        self.buffered_records -= len(moved)
        moved[:0] = first
        unroutable = [item for item in moved if item.partition_key is None and not self.placed_by_service]
        for item in moved:
            if item.partition_key is not None or self.placed_by_service:
                self.add(item)
        return len(moved) - len(unroutable), unroutable

    def lone_entry(self, item: Item) -> Entry:
        """`item` as an entry of its own, outside any queue (to fail it)."""
        return self._plain(AUTO_PLACED, item)

    def drain(self) -> list[Item]:
        """Remove and return every record not in flight (for shutdown)."""
        out: list[Item] = []
        for q in self._queues.values():
            for e in q.ready:
                out.extend(_carry_attempts(item, e.attempts) for item in e.records)
                q.held_bytes -= e.user_bytes
            out.extend(q.open_records)
            q.held_bytes -= sum(item.size for item in q.open_records)
            q.ready.clear()
            q.open_records = []
            q.open_bytes = 0
            q.builder = None
        self.buffered_bytes -= sum(item.size for item in out)
        self.buffered_records -= len(out)
        return out


def _carry_attempts(item: Item, attempts: int) -> Item:
    """The record with `attempts` more counted as made before its next entry."""
    item.attempts += attempts
    return item
