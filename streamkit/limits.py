"""Kinesis, Lambda and SQS limits, each defined once (sources and dates in docs/limits.md). Pure constants."""

from __future__ import annotations

__all__ = [
    "EVENT_RECORD_OVERHEAD",
    "GET_RECORDS_MAX_BYTES",
    "GET_RECORDS_MAX_RECORDS",
    "ITERATOR_LIFETIME",
    "KIB",
    "LAMBDA_ASYNC_PAYLOAD",
    "LAMBDA_SYNC_PAYLOAD",
    "MIB",
    "PUT_RECORDS_MAX_BYTES",
    "PUT_RECORDS_MAX_ENTRIES",
    "RECORD_MAX_BYTES",
    "SHARD_READ_BYTES_PER_S",
    "SHARD_READ_CALLS_PER_S",
    "SHARD_WRITE_BYTES_PER_S",
    "SHARD_WRITE_RECORDS_PER_S",
    "SQS_BATCH_ENTRIES",
    "SQS_MESSAGE_BYTES",
]

KIB = 1024
MIB = 1024 * 1024

# Kinesis Data Streams
SHARD_WRITE_BYTES_PER_S = 1 * MIB
SHARD_WRITE_RECORDS_PER_S = 1000
SHARD_READ_BYTES_PER_S = 2 * MIB
SHARD_READ_CALLS_PER_S = 5
#: Data + partition key of one record on a stream with the default MaxRecordSizeInKiB (1,024).
RECORD_MAX_BYTES = 1 * MIB
PUT_RECORDS_MAX_ENTRIES = 500
PUT_RECORDS_MAX_BYTES = 5 * MIB
GET_RECORDS_MAX_RECORDS = 10_000
GET_RECORDS_MAX_BYTES = 10 * MIB
#: A shard iterator expires this many seconds after it is returned.
ITERATOR_LIFETIME = 300.0

# Lambda
#: A synchronous invocation's request payload: "6 MB", enforced as 6 MiB (6,291,456 bytes).
LAMBDA_SYNC_PAYLOAD = 6 * MIB
#: An asynchronous ("Event") invocation's payload.
LAMBDA_ASYNC_PAYLOAD = 256 * KIB
#: Per-record JSON around the base64 data in a Kinesis event, as AWS sends it (~0.5 KB).
EVENT_RECORD_OVERHEAD = 530

# SQS
#: A message's body at the queue default MaximumMessageSize (a queue may allow up to 1 MiB).
SQS_MESSAGE_BYTES = 256 * KIB
SQS_BATCH_ENTRIES = 10
