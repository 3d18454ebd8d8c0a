"""The 2025-26 stream settings, emulated in the limit proxy for servers that predate them (kinesalite).

AWS's shapes, as botocore 1.43 models them:

- ``StreamARN`` in place of ``StreamName`` on every call: rewritten to the name before forwarding;
- CreateStream with ``StreamModeDetails`` (ON_DEMAND starts with 4 shards and takes no ShardCount),
  ``MaxRecordSizeInKiB`` (1,024-10,240), ``RecordDistributionStrategy`` (AUTO only on on-demand streams,
  else InvalidArgumentException), ``WarmThroughputMiBps``; DescribeStreamSummary returns them;
  UpdateMaxRecordSize, UpdateStreamRecordDistributionStrategy and UpdateStreamMode (StreamARN only) set them;
- on PutRecord(s): a record above the stream's maximum is a ValidationException; a record without
  ``PartitionKey`` is a ValidationException on a USER_PARTITION_KEY stream; on an AUTO stream keys and
  explicit hash keys are ignored and records are spread over the open shards, and records written
  without a key come back from GetRecords without ``PartitionKey``;
- records above the backend's own 1 MiB limit are kept by the proxy and stand in the backend as a short
  token, restored in GetRecords; per shard, records above 1 MiB draw on a burst tank of the stream's
  maximum record size that refills at the shard's 1 MiB/s ("Handle large records").
"""

from __future__ import annotations

import base64
import itertools
import random
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["SettingsError", "StreamSettings", "StreamSettingsRegistry", "stream_name"]

KIB = 1024
BACKEND_RECORD_LIMIT = 1024 * 1024  # what kinesalite itself accepts
_TOKEN_PREFIX = b"\x00streamkit-large-record:"
KEYLESS = "\x00keyless"  # the key a keyless record carries in the backend


class SettingsError(Exception):
    """An AWS-shaped refusal: HTTP status, error code, message."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class StreamSettings:
    mode: str = "PROVISIONED"
    max_record_size_kib: int = 1024
    distribution: str = "USER_PARTITION_KEY"
    warm_throughput_mibps: int | None = None

    @property
    def max_record_bytes(self) -> int:
        return self.max_record_size_kib * KIB

    @property
    def auto(self) -> bool:
        return self.distribution == "AUTO"


def stream_name(req: dict[str, Any]) -> str:
    name = req.get("StreamName")
    if name:
        return str(name)
    return str(req.get("StreamARN", "")).rsplit("/", 1)[-1]


def _check_size(kib: Any) -> int:
    if not isinstance(kib, int) or not 1024 <= kib <= 10240:
        raise SettingsError("ValidationException", f"1 validation error detected: Value '{kib}' at "
                            "'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value between 1024 "
                            "and 10240")
    return kib


class StreamSettingsRegistry:
    """Settings per stream name, large-record payloads, and which sequence numbers were written keyless."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, StreamSettings] = {}
        self._large: dict[bytes, bytes] = {}
        self._keyless: set[str] = set()
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)

    def get(self, stream: str) -> StreamSettings:
        with self._lock:
            return self._streams.get(stream) or StreamSettings()

    # -- control plane ------------------------------------------------------------------------
    def create_request(self, req: dict[str, Any]) -> tuple[dict[str, Any], StreamSettings]:
        """The CreateStream request for the backend, and the settings to keep once it succeeds."""
        mode = str((req.get("StreamModeDetails") or {}).get("StreamMode", "PROVISIONED"))
        settings = StreamSettings(mode=mode, max_record_size_kib=_check_size(req.get("MaxRecordSizeInKiB", 1024)),
                                  distribution=str(req.get("RecordDistributionStrategy") or "USER_PARTITION_KEY"),
                                  warm_throughput_mibps=req.get("WarmThroughputMiBps"))
        if settings.auto and mode != "ON_DEMAND":
            raise SettingsError("InvalidArgumentException",
                                "RecordDistributionStrategy AUTO is supported only for streams in ON_DEMAND mode")
        if mode == "ON_DEMAND" and req.get("ShardCount") is not None:
            raise SettingsError("InvalidArgumentException", "ShardCount must not be given for an ON_DEMAND stream")
        backend = {"StreamName": stream_name(req), "ShardCount": 4 if mode == "ON_DEMAND" else req.get("ShardCount")}
        return backend, settings

    def created(self, stream: str, settings: StreamSettings) -> None:
        with self._lock:
            self._streams[stream] = settings

    def deleted(self, stream: str) -> None:
        with self._lock:
            self._streams.pop(stream, None)

    def describe(self, stream: str, summary: dict[str, Any]) -> dict[str, Any]:
        s = self.get(stream)
        summary["StreamModeDetails"] = {"StreamMode": s.mode}
        summary["MaxRecordSizeInKiB"] = s.max_record_size_kib
        if s.mode == "ON_DEMAND":
            summary["RecordDistributionStrategy"] = s.distribution
            if s.warm_throughput_mibps is not None:
                summary["WarmThroughput"] = {"TargetMiBps": s.warm_throughput_mibps,
                                             "CurrentMiBps": s.warm_throughput_mibps}
        return summary

    def update(self, op: str, req: dict[str, Any]) -> None:
        if "StreamARN" not in req:
            raise SettingsError("ValidationException", f"{op} needs StreamARN")
        stream = stream_name(req)
        with self._lock:
            s = self._streams.setdefault(stream, StreamSettings())
            if op == "UpdateMaxRecordSize":
                s.max_record_size_kib = _check_size(req.get("MaxRecordSizeInKiB"))
            elif op == "UpdateStreamRecordDistributionStrategy":
                strategy = str(req.get("RecordDistributionStrategy"))
                if strategy not in ("AUTO", "USER_PARTITION_KEY"):
                    raise SettingsError("ValidationException", f"RecordDistributionStrategy {strategy!r} is not valid")
                if strategy == "AUTO" and s.mode != "ON_DEMAND":
                    raise SettingsError("InvalidArgumentException",
                                        "RecordDistributionStrategy AUTO is supported only for streams in ON_DEMAND mode")
                s.distribution = strategy
            elif op == "UpdateStreamMode":
                mode = str((req.get("StreamModeDetails") or {}).get("StreamMode"))
                if mode not in ("ON_DEMAND", "PROVISIONED"):
                    raise SettingsError("ValidationException", f"StreamMode {mode!r} is not valid")
                if mode == "PROVISIONED" and s.auto:
                    raise SettingsError("InvalidArgumentException",
                                        "a stream with RecordDistributionStrategy AUTO must stay ON_DEMAND")
                s.mode = mode
                s.warm_throughput_mibps = req.get("WarmThroughputMiBps") if mode == "ON_DEMAND" else None

    # -- data plane ---------------------------------------------------------------------------
    def admit_entry(self, stream: str, entry: dict[str, Any], n: int, *, open_ranges: list[tuple[int, int]]
                    ) -> tuple[dict[str, Any], int, bool]:
        """The entry for the backend, its size as Kinesis counts it, and whether it was written keyless.

        `n` is the entry's index from 1 (for AWS's error messages).
        """
        s = self.get(stream)
        key = entry.get("PartitionKey")
        data = base64.b64decode(entry.get("Data", ""))
        size = len(data) + len(str(key or "").encode())
        if key is None and not s.auto:
            raise SettingsError("ValidationException", f"1 validation error detected: Value null at "
                                f"'records.{n}.member.partitionKey' failed to satisfy constraint: Member must not be null")
        if size > s.max_record_bytes:
            raise SettingsError("ValidationException", f"1 validation error detected: Value at 'records.{n}.member.data' "
                                f"failed to satisfy constraint: Member must have length less than or equal to "
                                f"{s.max_record_bytes}")
        out = dict(entry)
        if s.auto:  # the service places records itself: spread them, whatever their keys say
            lo, hi = self._rng.choice(open_ranges)
            out["ExplicitHashKey"] = str(self._rng.randint(lo, hi))
            if key is None:
                out["PartitionKey"] = KEYLESS
        if size > BACKEND_RECORD_LIMIT:  # larger than the backend takes: kept here, a token there
            token = _TOKEN_PREFIX + str(next(self._ids)).encode()
            with self._lock:
                self._large[token] = data
            out["Data"] = base64.b64encode(token).decode()
        return out, size, key is None

    def wrote_keyless(self, sequence_numbers: list[str]) -> None:
        with self._lock:
            self._keyless.update(sequence_numbers)

    def restore(self, records: list[dict[str, Any]]) -> None:
        """GetRecords records as AWS returns them: large payloads back, no PartitionKey where none was given."""
        with self._lock:
            for r in records:
                if r.get("PartitionKey") == KEYLESS or r.get("SequenceNumber") in self._keyless:
                    r.pop("PartitionKey", None)
                data = r.get("Data")
                if isinstance(data, str) and len(data) < 80:
                    raw = base64.b64decode(data)
                    if raw.startswith(_TOKEN_PREFIX) and raw in self._large:
                        r["Data"] = base64.b64encode(self._large[raw]).decode()
