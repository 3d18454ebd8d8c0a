"""In-memory fakes for unit tests: `FakeClock` and `FakeKinesis` (a `KinesisTransport`). No pytest, no boto3.

`FakeKinesis` keeps streams, shards with hash ranges, records with sequence numbers, iterators that
expire after 5 minutes of its clock, GetRecords with ``Limit``, PutRecords with per-entry failures,
SplitShard and MergeShards with ChildShards on the parent's last read, and enhanced fan-out. Faults
are injected per call: ``fault(operation, detail)`` may return an exception to raise (a `StreamkitError`,
as the real adapter would raise), ``entry_error(call_no, index, entry)`` an error code for one PutRecords
entry, and ``unreachable = True`` makes every call fail as a dead server does.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamkit.errors import (
    ConfigurationError,
    ExpiredIteratorError,
    KinesisError,
    ServerUnreachableError,
    StreamNotFoundError,
)
from streamkit.hashing import MAX_HASH_KEY, ShardInfo, ShardMap
from streamkit.kinesis_types import LOCAL_ACCOUNT, foreign_arn_problem
from streamkit.limits import GET_RECORDS_MAX_RECORDS, ITERATOR_LIFETIME, KIB, RECORD_MAX_SIZE_KIB_DEFAULT, RECORD_MAX_SIZE_KIB_MAX
from streamkit.transport import Fetched, IteratorStart, PutEntry, PutEntryResult, StreamSummary, stream_name_of

__all__ = ["FakeClock", "FakeKinesis", "FakeKinesisClient"]

ITERATOR_TTL = ITERATOR_LIFETIME  # AWS: a shard iterator expires 5 minutes after it is returned
ACCOUNT = LOCAL_ACCOUNT  # defined once, in streamkit.kinesis_types


class FakeClock:
    """A clock whose time only moves when told to: `sleep` and `wait` return at once and advance it.

    ``on_wait`` (if set) is called with the seconds of every `wait`/`sleep` before time advances: a test
    uses it to make things happen "during" a pause (a stop, a lease stolen, a crash).

    ``scale`` > 0 makes each wait also take that fraction of its length in real time (0.01: a 1 s pause
    takes 10 ms). Engines that run several threads (the emulator's pollers and lanes) need it, so that
    one thread's pauses do not race the clock ahead of the others' work; single-threaded tests keep 0.
    """

    def __init__(self, start: float = 1_000.0, *, wall_start: float = 1_700_000_000.0, scale: float = 0.0) -> None:
        self._now = start
        self.scale = scale
        self._wall_offset = wall_start - start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []
        self.on_wait: Callable[[float], None] | None = None

    def __call__(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_wait is not None:
            self.on_wait(seconds)
        self.advance(seconds)

    def wait(self, event: threading.Event, seconds: float | None) -> bool:
        if event.is_set():
            return True
        seconds = 0.0 if seconds is None else seconds
        if self.scale > 0 and event.wait(seconds * self.scale):
            return True
        self.sleep(seconds)
        return event.is_set()


@dataclass
class _Shard:
    info: ShardInfo
    records: list[dict[str, Any]] = field(default_factory=list)
    children: list[ShardInfo] = field(default_factory=list)

    @property
    def closed(self) -> bool:
        return self.info.ending_sequence_number is not None


@dataclass
class _Stream:
    name: str
    arn: str
    shards: dict[str, _Shard]
    next_shard: int
    mode: str = "PROVISIONED"
    max_record_size_kib: int = RECORD_MAX_SIZE_KIB_DEFAULT
    distribution: str = "USER_PARTITION_KEY"
    warm_throughput_mibps: int | None = None
    placed: int = 0  # AUTO placement: records spread over the open shards in turn
    created_at: float = 0.0


class FakeKinesis:
    """An in-memory Kinesis behind the `KinesisTransport` protocol.

    ``FakeKinesis(shards=N)`` creates any stream it is asked about with N shards (unless
    ``auto_create=False``: then only `create_stream` makes them). Written records are in
    ``written[shard_id]`` as ``(sequence_number, entry)`` and in each shard's record list.
    """

    def __init__(self, shards: int = 1, *, clock: Any = None, auto_create: bool = True,
                 entry_error: Callable[[int, int, PutEntry], str | None] | None = None,
                 call_error: Callable[[int], BaseException | None] | None = None,
                 fault: Callable[[str, dict[str, Any]], BaseException | None] | None = None,
                 region: str = "us-east-1") -> None:
        self.default_shards = shards
        self.clock = clock if clock is not None else FakeClock()
        self.auto_create = auto_create
        self.entry_error = entry_error
        self.call_error = call_error
        self.fault = fault
        self.region = region
        self.unreachable = False
        self.calls = 0  # PutRecords calls
        self.op_counts: dict[str, int] = {}
        self.written: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._streams: dict[str, _Stream] = {}
        self._iterators: dict[str, tuple[str, str, int, float]] = {}
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    # -- helpers ----------------------------------------------------------------------------------
    def _enter(self, op: str, **detail: Any) -> None:
        with self._lock:
            self.op_counts[op] = self.op_counts.get(op, 0) + 1
        if self.unreachable:
            raise ServerUnreachableError(f"cannot reach the Kinesis endpoint: {op}: connection refused",
                                         code="EndpointConnectionError")
        if self.fault is not None:
            exc = self.fault(op, detail)
            if exc is not None:
                raise exc

    def _stream(self, stream: str) -> _Stream:
        problem = foreign_arn_problem(stream, self.region)
        if problem is not None:  # another account's or region's stream, as AWS answers it
            raise StreamNotFoundError(f"stream {stream!r} not found: {problem}")
        name = stream_name_of(stream)
        s = self._streams.get(name)
        if s is None:
            if not self.auto_create:
                raise StreamNotFoundError(f"stream {name!r} not found: Stream {name} under account {ACCOUNT} not found.")
            self.create_stream(name, self.default_shards)
            s = self._streams[name]
        return s

    def _shard(self, stream: str, shard_id: str) -> _Shard:
        s = self._stream(stream)
        shard = s.shards.get(shard_id)
        if shard is None:
            raise KinesisError(f"ResourceNotFoundException: Shard {shard_id} in stream {s.name} does not exist",
                               code="ResourceNotFoundException")
        return shard

    def _new_shard(self, s: _Stream, start: int, end: int, parents: Sequence[str] = ()) -> ShardInfo:
        sid = f"shardId-{s.next_shard:012d}"
        s.next_shard += 1
        info = ShardInfo(shard_id=sid, starting_hash_key=start, ending_hash_key=end,
                         parent_shard_id=parents[0] if parents else None,
                         adjacent_parent_shard_id=parents[1] if len(parents) > 1 else None,
                         starting_sequence_number=f"{next(self._seq):021d}")
        s.shards[sid] = _Shard(info)
        self.written[sid] = []
        return info

    def _close(self, s: _Stream, shard_id: str, children: list[ShardInfo]) -> None:
        shard = s.shards[shard_id]
        shard.info = ShardInfo(shard_id=shard.info.shard_id, starting_hash_key=shard.info.starting_hash_key,
                               ending_hash_key=shard.info.ending_hash_key, parent_shard_id=shard.info.parent_shard_id,
                               adjacent_parent_shard_id=shard.info.adjacent_parent_shard_id,
                               starting_sequence_number=shard.info.starting_sequence_number,
                               ending_sequence_number=f"{next(self._seq):021d}")
        shard.children = children

    def records_of(self, stream: str, shard_id: str) -> list[dict[str, Any]]:
        """The records a shard holds, in order (raw GetRecords shape)."""
        with self._lock:
            return list(self._shard(stream, shard_id).records)

    # -- control plane ------------------------------------------------------------------------
    def create_stream(self, stream: str, shards: int | None, *, on_demand: bool = False,
                      max_record_size_kib: int | None = None, distribution: str | None = None) -> None:
        name = stream_name_of(stream)
        if on_demand:
            shards = 4  # AWS: a new on-demand stream starts at 4 MiB/s of writes, 4 shards
        if shards is None or shards < 1:
            raise ConfigurationError(f"ShardCount must be at least 1, got {shards}")
        _check_record_size(max_record_size_kib or RECORD_MAX_SIZE_KIB_DEFAULT)
        if distribution == "AUTO" and not on_demand:
            raise _invalid("RecordDistributionStrategy AUTO is supported only for on-demand streams")
        with self._lock:
            if name in self._streams:
                raise KinesisError(f"ResourceInUseException: stream {name} exists", code="ResourceInUseException")
            s = _Stream(name, f"arn:aws:kinesis:{self.region}:{ACCOUNT}:stream/{name}", {}, 0,
                        mode="ON_DEMAND" if on_demand else "PROVISIONED",
                        max_record_size_kib=max_record_size_kib or RECORD_MAX_SIZE_KIB_DEFAULT,
                        distribution=distribution or "USER_PARTITION_KEY",
                        created_at=1_700_000_000.0 + len(self._streams))
            self._streams[name] = s
            step = (MAX_HASH_KEY + 1) // shards
            for i in range(shards):
                self._new_shard(s, i * step, MAX_HASH_KEY if i == shards - 1 else (i + 1) * step - 1)

    def delete_stream(self, stream: str) -> None:
        self._enter("DeleteStream", stream=stream)
        with self._lock:
            self._streams.pop(self._stream(stream).name, None)

    def describe_stream_summary(self, stream: str) -> StreamSummary:
        self._enter("DescribeStreamSummary", stream=stream)
        with self._lock:
            s = self._stream(stream)
            return StreamSummary(name=s.name, arn=s.arn, status="ACTIVE",
                                 open_shards=sum(1 for sh in s.shards.values() if not sh.closed), stream_mode=s.mode,
                                 max_record_size_kib=s.max_record_size_kib, record_distribution=s.distribution,
                                 warm_throughput_mibps=s.warm_throughput_mibps, created_at=s.created_at)

    def update_max_record_size(self, stream: str, max_record_size_kib: int) -> None:
        self._enter("UpdateMaxRecordSize", stream=stream)
        _check_record_size(max_record_size_kib)
        with self._lock:
            self._stream(stream).max_record_size_kib = max_record_size_kib

    def update_record_distribution(self, stream: str, distribution: str) -> None:
        self._enter("UpdateStreamRecordDistributionStrategy", stream=stream)
        if distribution not in ("AUTO", "USER_PARTITION_KEY"):
            raise KinesisError(f"ValidationException: RecordDistributionStrategy {distribution!r}",
                               code="ValidationException")
        with self._lock:
            s = self._stream(stream)
            if distribution == "AUTO" and s.mode != "ON_DEMAND":
                raise _invalid("RecordDistributionStrategy AUTO is supported only for on-demand streams")
            s.distribution = distribution

    def update_stream_mode(self, stream: str, mode: str, *, warm_throughput_mibps: int | None = None) -> None:
        self._enter("UpdateStreamMode", stream=stream)
        with self._lock:
            s = self._stream(stream)
            if mode == "PROVISIONED" and s.distribution == "AUTO":
                raise _invalid("a stream with RecordDistributionStrategy AUTO must stay on-demand")
            s.mode = mode
            s.warm_throughput_mibps = warm_throughput_mibps if mode == "ON_DEMAND" else None

    def list_shards(self, stream: str) -> list[ShardInfo]:
        self._enter("ListShards", stream=stream)
        with self._lock:
            return [sh.info for sh in self._stream(stream).shards.values()]

    def split_shard(self, stream: str, shard_id: str, new_starting_hash_key: int | None = None) -> list[ShardInfo]:
        with self._lock:
            s = self._stream(stream)
            parent = self._shard(stream, shard_id)
            if parent.closed:
                raise KinesisError(f"ResourceInUseException: {shard_id} is closed", code="ResourceInUseException")
            lo, hi = parent.info.starting_hash_key, parent.info.ending_hash_key
            mid = new_starting_hash_key if new_starting_hash_key is not None else lo + (hi - lo + 1) // 2
            children = [self._new_shard(s, lo, mid - 1, [shard_id]), self._new_shard(s, mid, hi, [shard_id])]
            self._close(s, shard_id, children)
            return children

    def merge_shards(self, stream: str, shard_id: str, adjacent_shard_id: str) -> ShardInfo:
        with self._lock:
            s = self._stream(stream)
            a, b = self._shard(stream, shard_id), self._shard(stream, adjacent_shard_id)
            lo = min(a.info.starting_hash_key, b.info.starting_hash_key)
            hi = max(a.info.ending_hash_key, b.info.ending_hash_key)
            child = self._new_shard(s, lo, hi, [shard_id, adjacent_shard_id])
            self._close(s, shard_id, [child])
            self._close(s, adjacent_shard_id, [child])
            return child

    # -- data plane -------------------------------------------------------------------------------
    def get_shard_iterator(self, stream: str, shard_id: str, start: IteratorStart) -> str:
        self._enter("GetShardIterator", stream=stream, shard_id=shard_id, start=start)
        with self._lock:
            shard = self._shard(stream, shard_id)
            records = shard.records
            if start.type == "TRIM_HORIZON":
                index = 0
            elif start.type == "LATEST":
                index = len(records)
            elif start.type == "AT_TIMESTAMP":
                ts = start.timestamp or 0.0
                index = next((i for i, r in enumerate(records) if r["ApproximateArrivalTimestamp"] >= ts), len(records))
            else:
                seq = start.sequence_number
                if seq is None or not seq.isdigit():
                    raise KinesisError(f"InvalidArgumentException: bad StartingSequenceNumber {seq!r}",
                                       code="InvalidArgumentException")
                n = int(seq)
                first = int(shard.info.starting_sequence_number or 0)
                end_seq = shard.info.ending_sequence_number
                last = None if end_seq is None else int(end_seq)
                if n < first or (last is not None and n > last):
                    raise KinesisError(f"InvalidArgumentException: StartingSequenceNumber {seq} used in "
                                       f"GetShardIterator on shard {shard_id} is invalid for this shard",
                                       code="InvalidArgumentException")
                if start.type == "AT_SEQUENCE_NUMBER":
                    index = next((i for i, r in enumerate(records) if int(r["SequenceNumber"]) >= n), len(records))
                else:
                    index = next((i for i, r in enumerate(records) if int(r["SequenceNumber"]) > n), len(records))
            return self._iterator(stream_name_of(stream), shard_id, index)

    def _iterator(self, stream: str, shard_id: str, index: int) -> str:
        token = f"it-{next(self._ids)}"
        self._iterators[token] = (stream, shard_id, index, self.clock.monotonic())
        return token

    def get_records(self, iterator: str, limit: int) -> Fetched:
        self._enter("GetRecords", iterator=iterator)
        with self._lock:
            entry = self._iterators.get(iterator)
            if entry is None:
                raise KinesisError(f"InvalidArgumentException: unknown shard iterator {iterator!r}",
                                   code="InvalidArgumentException")
            stream, shard_id, index, made = entry
            if self.clock.monotonic() - made > ITERATOR_TTL:
                raise ExpiredIteratorError(f"ExpiredIteratorException: Iterator expired ({iterator})",
                                           code="ExpiredIteratorException")
            if not 1 <= limit <= GET_RECORDS_MAX_RECORDS:
                raise KinesisError(f"ValidationException: Limit {limit} is not in 1..10000", code="ValidationException")
            shard = self._shard(stream, shard_id)
            batch = [dict(r) for r in shard.records[index:index + limit]]
            end = index + len(batch)
            behind = 0
            if end < len(shard.records):
                newest = float(shard.records[-1]["ApproximateArrivalTimestamp"])
                last_returned = float(shard.records[max(end - 1, 0)]["ApproximateArrivalTimestamp"])
                behind = max(1, int((newest - last_returned) * 1000))
            if shard.closed and end >= len(shard.records):
                return Fetched(records=batch, next_iterator=None, millis_behind_latest=0,
                               child_shards=list(shard.children))
            return Fetched(records=batch, next_iterator=self._iterator(stream, shard_id, end), millis_behind_latest=behind)

    def put_records(self, stream: str, records: Sequence[PutEntry]) -> list[PutEntryResult]:
        with self._lock:
            self.calls += 1
            call_no = self.calls
        self._enter("PutRecords", stream=stream, records=records)
        if self.call_error is not None:
            exc = self.call_error(call_no)
            if exc is not None:
                raise exc
        out: list[PutEntryResult] = []
        with self._lock:
            s = self._stream(stream)
            for n, entry in enumerate(records, start=1):  # a bad entry fails the whole call, as AWS validates
                key = entry.get("PartitionKey")
                if key is None and s.distribution != "AUTO":
                    raise KinesisError(f"ValidationException: 1 validation error detected: Value null at "
                                       f"'records.{n}.member.partitionKey' failed to satisfy constraint: Member must "
                                       "not be null", code="ValidationException")
                size = len(entry["Data"]) + len((key or "").encode())
                if size > s.max_record_size_kib * KIB:
                    raise KinesisError(f"ValidationException: record {n} is {size} bytes, over the stream's "
                                       f"{s.max_record_size_kib} KiB maximum record size", code="ValidationException")
            smap = ShardMap(sh.info for sh in s.shards.values())
            now = self.clock.time()
            for i, entry in enumerate(records):
                code = self.entry_error(call_no, i, entry) if self.entry_error else None
                if code:
                    out.append({"ErrorCode": code, "ErrorMessage": f"injected {code}"})
                    continue
                if s.distribution == "AUTO":  # the service places records itself: keys are ignored
                    shard = smap.open_shards[s.placed % len(smap.open_shards)]
                    s.placed += 1
                else:
                    shard = smap.shard_for_key(entry["PartitionKey"], entry.get("ExplicitHashKey"))
                seq = f"{next(self._seq):021d}"
                data = entry["Data"]
                raw = {"SequenceNumber": seq, "Data": data if isinstance(data, bytes) else str(data).encode(),
                       "ApproximateArrivalTimestamp": now}
                if entry.get("PartitionKey") is not None:
                    raw["PartitionKey"] = entry["PartitionKey"]
                if entry.get("ExplicitHashKey") is not None and s.distribution != "AUTO":
                    raw["ExplicitHashKey"] = entry["ExplicitHashKey"]
                s.shards[shard.shard_id].records.append(raw)
                self.written[shard.shard_id].append((seq, dict(entry)))
                out.append({"ShardId": shard.shard_id, "SequenceNumber": seq})
        return out

    def put(self, stream: str, data: bytes, partition_key: str | None, explicit_hash_key: str | None = None) -> str:
        """One record, no faults (test set-up); its sequence number."""
        entry: PutEntry = {"Data": data}
        if partition_key is not None:
            entry["PartitionKey"] = partition_key
        if explicit_hash_key is not None:
            entry["ExplicitHashKey"] = explicit_hash_key
        hooks = (self.entry_error, self.call_error, self.fault, self.unreachable)
        self.entry_error = self.call_error = self.fault = None
        self.unreachable = False
        try:
            result = self.put_records(stream, [entry])[0]
        finally:
            self.entry_error, self.call_error, self.fault, self.unreachable = hooks
        return str(result["SequenceNumber"])

    # -- enhanced fan-out ---------------------------------------------------------------------------
    def register_stream_consumer(self, stream_arn: str, name: str) -> str:
        self._enter("RegisterStreamConsumer", stream=stream_arn)
        return f"{stream_arn}/consumer/{name}:1"

    def stream_consumer_status(self, consumer_arn: str) -> str:
        self._enter("DescribeStreamConsumer", consumer=consumer_arn)
        return "ACTIVE"

    def subscribe_to_shard(self, consumer_arn: str, shard_id: str, start: IteratorStart) -> Iterator[Fetched]:
        """What is in the shard from `start`, in events of up to 1,000 records; then the subscription ends."""
        stream = consumer_arn.split("/consumer/")[0]
        self._enter("SubscribeToShard", shard_id=shard_id)
        it: str | None = self.get_shard_iterator(stream, shard_id, start)
        while it is not None:
            fetched = self.get_records(it, 1000)
            last = fetched.records[-1]["SequenceNumber"] if fetched.records else start.sequence_number
            yield Fetched(records=fetched.records, next_iterator=None if fetched.next_iterator is None else (last or "0"),
                          millis_behind_latest=fetched.millis_behind_latest, child_shards=fetched.child_shards)
            if fetched.next_iterator is None or not fetched.records:
                return
            it = fetched.next_iterator


def _invalid(message: str) -> KinesisError:
    return KinesisError(f"InvalidArgumentException: {message}", code="InvalidArgumentException")


def _check_record_size(kib: int) -> None:
    if not RECORD_MAX_SIZE_KIB_DEFAULT <= kib <= RECORD_MAX_SIZE_KIB_MAX:
        raise KinesisError(f"ValidationException: MaxRecordSizeInKiB must be 1024..10240, got {kib}",
                           code="ValidationException")


#: The earlier name (a boto3-shaped fake); the producer and every engine take a `KinesisTransport`.
FakeKinesisClient = FakeKinesis
