"""The local proxy's data plane under Kinesis's limits: the state its handlers share (shard maps,
token buckets, iterator ownership, faults, counters) and the PutRecord(s), GetShardIterator and GetRecords
handlers that answer as AWS does when a shard is over its limits. The HTTP server is `streamkit.local.proxy`.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
import urllib.parse
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

from streamkit.hashing import ShardMap, hash_key
from streamkit.kinesis_types import LOCAL_ACCOUNT
from streamkit.local.faults import FaultSpec
from streamkit.local.stream_settings import SettingsError, StreamSettingsRegistry, stream_name
from streamkit.ratelimit import KinesisLimits, ShardLimiter

__all__ = [
    "ACCOUNT",
    "DATA_PLANE",
    "GET_RECORDS_PENALTY",
    "JSON_TYPE",
    "TARGET_PREFIX",
    "ProxyState",
    "handle_get_records",
    "handle_get_shard_iterator",
    "handle_put_record",
    "handle_put_records",
]

TARGET_PREFIX = "Kinesis_20131202."
#: Seconds a shard refuses GetRecords after a call that returned 10 MiB (AWS's GetRecords reference).
GET_RECORDS_PENALTY = 5.0
DATA_PLANE = frozenset({"PutRecord", "PutRecords", "GetRecords", "GetShardIterator"})
#: The 2025-26 settings calls, answered by the proxy itself (stream_settings.py).
_UPDATES = frozenset({"UpdateMaxRecordSize", "UpdateStreamRecordDistributionStrategy", "UpdateStreamMode"})
#: Calls whose StreamARN names something the backend has no name for: left as they are.
_ARN_ONLY = frozenset({"RegisterStreamConsumer", "DescribeStreamConsumer", "ListStreamConsumers",
                       "DeregisterStreamConsumer", "SubscribeToShard"})
JSON_TYPE = "application/x-amz-json-1.1"
ACCOUNT = LOCAL_ACCOUNT  # defined once, in streamkit.kinesis_types
_ITERATOR_MEMORY = 100_000
_SHARD_MAP_TTL = 2.0


class _Reply(Exception):
    """Raised inside a handler to answer with an AWS-shaped error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _Reset(Exception):
    """Raised inside a handler to reset the connection without an answer."""


class ProxyState:
    """Everything the handlers share: limits, faults, shard maps, iterator ownership, counters."""

    def __init__(self, upstream: str, *, limit_scale: float = 1.0, faults: FaultSpec | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.clock = clock
        self.lock = threading.Lock()
        self.configure(limit_scale=limit_scale, faults=faults or FaultSpec())
        self.shard_maps: dict[str, tuple[float, ShardMap]] = {}
        self.iterators: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.settings = StreamSettingsRegistry(self.faults.seed)  # the 2025-26 stream settings (stream_settings.py)
        self._local = threading.local()

    def configure(self, *, limit_scale: float | None = None, faults: FaultSpec | None = None,
                  reset: bool = False) -> None:
        with self.lock:
            if limit_scale is not None:
                self.limit_scale = limit_scale
                self.limiter = ShardLimiter(KinesisLimits(scale=limit_scale))
            if faults is not None:
                self.faults = faults
                self.rng = random.Random(faults.seed)
            if reset or not hasattr(self, "stats"):
                self.stats: Counter[str] = Counter()
                self.limiter.reset()

    def count(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.stats[key] += n

    def chance(self, p: float) -> bool:
        if p <= 0:
            return False
        with self.lock:
            return self.rng.random() < p

    # -- upstream ---------------------------------------------------------------------------
    def forward(self, target: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in (1, 2):
            conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
                self._local.conn = conn
            try:
                hdrs = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length", "connection")}
                hdrs["X-Amz-Target"] = target
                conn.request("POST", "/", body=body, headers=hdrs)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def shard_map(self, stream: str, headers: dict[str, str], *, refresh: bool = False) -> ShardMap:
        now = self.clock()
        cached = self.shard_maps.get(stream)
        if cached and not refresh and now - cached[0] < _SHARD_MAP_TTL:
            return cached[1]
        shards: list[dict[str, Any]] = []
        req: dict[str, Any] = {"StreamName": stream}
        while True:
            status, raw = self.forward(TARGET_PREFIX + "ListShards", orjson.dumps(req), headers)
            if status != 200:
                raise _Reply(status, "ResourceNotFoundException", f"Stream {stream} under account {ACCOUNT} not found.")
            out = orjson.loads(raw)
            new = [s for s in out.get("Shards", []) if s["ShardId"] not in {x["ShardId"] for x in shards}]
            shards.extend(new)
            if not out.get("NextToken") or not new:
                break
            req = {"NextToken": out["NextToken"]}
        smap = ShardMap.from_api(shards)
        self.shard_maps[stream] = (now, smap)
        return smap

    def remember_iterator(self, iterator: str | None, stream: str, shard: str) -> None:
        if not iterator:
            return
        with self.lock:
            self.iterators[iterator] = (stream, shard)
            while len(self.iterators) > _ITERATOR_MEMORY:
                self.iterators.popitem(last=False)


_stream_name = stream_name  # StreamName, or the name in StreamARN (one reading, in stream_settings.py)


def _signing_region(headers: dict[str, str]) -> str:
    """The region the request was signed for (SigV4's credential scope): the region the client talks to."""
    auth = headers.get("Authorization") or headers.get("authorization") or ""
    scope = auth.partition("Credential=")[2].split(",", 1)[0].split("/")
    return scope[2] if len(scope) >= 5 else "us-east-1"


def _shard_key(stream: str, shard: str) -> str:
    """Limits are per shard, and shards of different streams share ids: key them by both."""
    return f"{stream}/{shard}"


def _throttle_message(shard: str, stream: str) -> str:
    return f"Rate exceeded for shard {shard} in stream {stream} under account {ACCOUNT}."


def handle_put_records(state: ProxyState, req: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes]:
    lim = state.limiter.limits
    entries = req.get("Records") or []
    stream = _stream_name(req)
    if len(entries) > lim.put_records_max_entries:
        raise _Reply(400, "ValidationException", "1 validation error detected: Value at 'records' failed to satisfy "
                     f"constraint: Member must have length less than or equal to {lim.put_records_max_entries}")
    smap = state.shard_map(stream, headers)
    settings = state.settings.get(stream)
    ranges = [(sh.starting_hash_key, sh.ending_hash_key) for sh in smap.open_shards]
    sizes = []
    keyless: set[int] = set()
    try:
        admitted = []
        for n, e in enumerate(entries, start=1):
            entry, size, no_key = state.settings.admit_entry(stream, e, n, open_ranges=ranges)
            admitted.append(entry)
            sizes.append(size)
            if no_key:
                keyless.add(n - 1)
    except SettingsError as err:
        raise _Reply(err.status, err.code, err.message) from None
    entries = admitted
    call_limit = max(lim.put_records_max_bytes, settings.max_record_bytes)
    if sum(sizes) > call_limit:
        raise _Reply(400, "InvalidArgumentException", f"Records size exceeds {call_limit // (1024 * 1024)} MB limit")
    faults = state.faults
    results: list[dict[str, Any] | None] = [None] * len(entries)
    accepted: list[int] = []
    now = state.clock()
    for i, (e, n) in enumerate(zip(entries, sizes, strict=True)):
        ehk = e.get("ExplicitHashKey")
        shard = smap.shard_for_hash(int(ehk) if ehk is not None else hash_key(str(e.get("PartitionKey", ""))))
        if state.chance(faults.throttle):
            state.count("fault.throttle_entry")
            results[i] = {"ErrorCode": "ProvisionedThroughputExceededException",
                          "ErrorMessage": _throttle_message(shard.shard_id, stream)}
        elif state.chance(faults.entry_failure):
            state.count("fault.entry_failure")
            results[i] = {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."}
        else:
            with state.lock:
                ok = state.limiter.admit_write(_shard_key(stream, shard.shard_id), n, now, burst=settings.max_record_bytes)
            if ok:
                accepted.append(i)
            else:
                state.count("limit.write_throttled")
                results[i] = {"ErrorCode": "ProvisionedThroughputExceededException",
                              "ErrorMessage": _throttle_message(shard.shard_id, stream)}
    if accepted:
        forwarded = dict(req)
        forwarded["Records"] = [entries[i] for i in accepted]
        status, raw = state.forward(TARGET_PREFIX + "PutRecords", orjson.dumps(forwarded), headers)
        if status != 200:
            return status, raw
        out = orjson.loads(raw)
        for i, r in zip(accepted, out["Records"], strict=True):
            results[i] = r
        state.settings.wrote_keyless([r["SequenceNumber"] for i, r in zip(accepted, out["Records"], strict=True)
                                      if i in keyless and "SequenceNumber" in r])
        state.count("put_records.accepted", sum(1 for r in out["Records"] if "ErrorCode" not in r))
    failed = sum(1 for r in results if r is not None and "ErrorCode" in r)
    state.count("put_records.entries", len(entries))
    body = {"FailedRecordCount": failed, "Records": results, "EncryptionType": "NONE"}
    return 200, orjson.dumps(body)


def handle_put_record(state: ProxyState, req: dict[str, Any], headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
    stream = _stream_name(req)
    smap = state.shard_map(stream, headers)
    settings = state.settings.get(stream)
    try:
        req, n, no_key = state.settings.admit_entry(
            stream, req, 1, open_ranges=[(sh.starting_hash_key, sh.ending_hash_key) for sh in smap.open_shards])
    except SettingsError as err:
        raise _Reply(err.status, err.code, err.message) from None
    raw = orjson.dumps(req)
    ehk = req.get("ExplicitHashKey")
    shard = smap.shard_for_hash(int(ehk) if ehk is not None else hash_key(str(req.get("PartitionKey", ""))))
    if state.chance(state.faults.throttle):
        state.count("fault.throttle_call")
        raise _Reply(400, "ProvisionedThroughputExceededException", _throttle_message(shard.shard_id, stream))
    with state.lock:
        ok = state.limiter.admit_write(_shard_key(stream, shard.shard_id), n, state.clock(),
                                       burst=settings.max_record_bytes)
    if not ok:
        state.count("limit.write_throttled")
        raise _Reply(400, "ProvisionedThroughputExceededException", _throttle_message(shard.shard_id, stream))
    status, body = state.forward(TARGET_PREFIX + "PutRecord", raw, headers)
    if status == 200 and no_key:
        state.settings.wrote_keyless([orjson.loads(body)["SequenceNumber"]])
    return status, body


def handle_get_shard_iterator(state: ProxyState, req: dict[str, Any], headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
    status, body = state.forward(TARGET_PREFIX + "GetShardIterator", raw, headers)
    if status == 200:
        state.remember_iterator(orjson.loads(body).get("ShardIterator"), _stream_name(req), str(req.get("ShardId")))
    return status, body


def handle_get_records(state: ProxyState, req: dict[str, Any], headers: dict[str, str], raw: bytes) -> tuple[int, bytes]:
    lim = state.limiter.limits
    limit = req.get("Limit")
    if limit is not None and int(limit) > lim.get_records_max_limit:
        raise _Reply(400, "ValidationException", "1 validation error detected: Value at 'limit' failed to satisfy "
                     f"constraint: Member must have value less than or equal to {lim.get_records_max_limit}")
    iterator = str(req.get("ShardIterator", ""))
    with state.lock:
        owner = state.iterators.get(iterator)
    if state.chance(state.faults.expired):
        state.count("fault.expired")
        now_ms = int(time.time() * 1000)
        raise _Reply(400, "ExpiredIteratorException",
                     f"Iterator expired. The iterator was created at time {now_ms - 300_001} while right now it is {now_ms} "
                     "which is further in the future than the tolerated delay of 300000 milliseconds.")
    if state.chance(state.faults.throttle):
        state.count("fault.throttle_call")
        raise _Reply(400, "ProvisionedThroughputExceededException", "Rate exceeded for shard.")
    if owner is not None:
        with state.lock:
            ok = state.limiter.admit_read_call(_shard_key(*owner), state.clock())
        if not ok:
            state.count("limit.read_throttled")
            raise _Reply(400, "ProvisionedThroughputExceededException", _throttle_message(owner[1], owner[0]))
    status, body = state.forward(TARGET_PREFIX + "GetRecords", raw, headers)
    if status == 200:
        out = orjson.loads(body)
        state.settings.restore(out.get("Records", []))
        capped = owner is not None and _cap_response(state, out, owner, headers)
        body = orjson.dumps(out)
    if status == 200 and owner is not None:
        nbytes = sum(_record_bytes(r) for r in out.get("Records", []))
        with state.lock:
            state.limiter.charge_read(_shard_key(*owner), nbytes, state.clock())
            if capped or nbytes >= lim.get_records_max_bytes:
                # AWS: "If a call returns 10 MiB, subsequent calls made within the next 5 seconds throw
                # ProvisionedThroughputExceededException."
                now = state.clock()
                state.limiter.penalise_reads(_shard_key(*owner), now, now + GET_RECORDS_PENALTY)
        state.remember_iterator(out.get("NextShardIterator"), owner[0], owner[1])
        state.count("get_records.records", len(out.get("Records", [])))
    return status, body


def _record_bytes(r: dict[str, Any]) -> int:
    return len(r.get("Data", "")) * 3 // 4 + len(r.get("PartitionKey", "").encode())


def _cap_response(state: ProxyState, out: dict[str, Any], owner: tuple[str, str], headers: dict[str, str]) -> bool:
    """Cut a GetRecords response to AWS's 10 MiB per call (the local servers return up to Limit records,
    whatever their size), continuing after the last record kept; True if it was cut."""
    records = out.get("Records") or []
    cap = state.limiter.limits.get_records_max_bytes
    total = keep = 0
    for r in records:
        total += _record_bytes(r)
        if total > cap and keep:
            break
        keep += 1
    if keep == len(records):
        return False
    stream, shard = owner
    req = {"StreamName": stream, "ShardId": shard, "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
           "StartingSequenceNumber": records[keep - 1]["SequenceNumber"]}
    status, raw = state.forward(TARGET_PREFIX + "GetShardIterator", orjson.dumps(req), headers)
    if status != 200:
        return False  # (the full response then: better too much than a record skipped)
    out["Records"] = records[:keep]
    out["NextShardIterator"] = orjson.loads(raw)["ShardIterator"]
    state.count("get_records.capped")
    return True


