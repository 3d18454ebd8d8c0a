"""Kinesis, Lambda and SQS limits, each defined once (sources and dates in docs/limits.md). Pure constants.

One name per limit, not per value: the GetRecords record limit, the mapping's BatchSize maximum and
MaximumRetryAttempts' maximum are all 10,000 and stay three names. tests/unit/test_limits.py checks that
no library file writes one of these values where it means the limit.
"""

from __future__ import annotations

__all__ = [
    "ESM_BATCHING_WINDOW_MAX",
    "ESM_BATCH_SIZE_MAX",
    "ESM_FILTERS_MAX",
    "ESM_MAX_RETRY_ATTEMPTS_MAX",
    "ESM_PARALLELIZATION_MAX",
    "ESM_RECORD_AGE_MAX",
    "ESM_RECORD_AGE_MIN",
    "ESM_TUMBLING_WINDOW_MAX",
    "ESM_WINDOW_STATE_MAX",
    "EVENT_RECORD_OVERHEAD",
    "GET_RECORDS_MAX_BYTES",
    "GET_RECORDS_MAX_RECORDS",
    "ITERATOR_LIFETIME",
    "KIB",
    "LAMBDA_ACCOUNT_CONCURRENCY_DEFAULT",
    "LAMBDA_ASYNC_PAYLOAD",
    "LAMBDA_MEMORY_MAX_MB",
    "LAMBDA_MEMORY_MIN_MB",
    "LAMBDA_ONE_VCPU_MB",
    "LAMBDA_SCALE_ENVIRONMENTS",
    "LAMBDA_SCALE_PERIOD_S",
    "LAMBDA_SYNC_PAYLOAD",
    "MIB",
    "PARTITION_KEY_MAX_CHARS",
    "PUT_RECORDS_MAX_BYTES",
    "PUT_RECORDS_MAX_ENTRIES",
    "RECORD_MAX_BYTES",
    "RECORD_MAX_BYTES_LARGEST",
    "RECORD_MAX_SIZE_KIB_DEFAULT",
    "RECORD_MAX_SIZE_KIB_MAX",
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
#: A stream's MaxRecordSizeInKiB: 1,024 by default (new and existing streams), up to 10,240.
RECORD_MAX_SIZE_KIB_DEFAULT = 1024
RECORD_MAX_SIZE_KIB_MAX = 10_240
#: Data + partition key of one record on a stream with the default MaxRecordSizeInKiB (1,024).
RECORD_MAX_BYTES = RECORD_MAX_SIZE_KIB_DEFAULT * KIB
#: ... and on a stream raised to the largest MaxRecordSizeInKiB (10,240).
RECORD_MAX_BYTES_LARGEST = RECORD_MAX_SIZE_KIB_MAX * KIB
#: A partition key: 1 to 256 Unicode characters.
PARTITION_KEY_MAX_CHARS = 256
PUT_RECORDS_MAX_ENTRIES = 500
PUT_RECORDS_MAX_BYTES = 5 * MIB
GET_RECORDS_MAX_RECORDS = 10_000
GET_RECORDS_MAX_BYTES = 10 * MIB
#: A shard iterator expires this many seconds after it is returned.
ITERATOR_LIFETIME = 300.0

# Lambda event source mapping for Kinesis
#: BatchSize: 1 to 10,000 records.
ESM_BATCH_SIZE_MAX = 10_000
#: MaximumRetryAttempts: -1 (until the record expires) or 0 to 10,000.
ESM_MAX_RETRY_ATTEMPTS_MAX = 10_000
#: MaximumBatchingWindowInSeconds: 0 to 300.
ESM_BATCHING_WINDOW_MAX = 300
#: TumblingWindowInSeconds: up to 900.
ESM_TUMBLING_WINDOW_MAX = 900
#: ParallelizationFactor: 1 to 10 concurrent batches per shard.
ESM_PARALLELIZATION_MAX = 10
#: MaximumRecordAgeInSeconds: -1 (no limit) or 60 to 604,800 (7 days).
ESM_RECORD_AGE_MIN = 60
ESM_RECORD_AGE_MAX = 604_800

# Lambda
#: A synchronous invocation's request payload: "6 MB", enforced as 6 MiB (6,291,456 bytes).
LAMBDA_SYNC_PAYLOAD = 6 * MIB
#: An asynchronous ("Event") invocation's payload.
LAMBDA_ASYNC_PAYLOAD = 256 * KIB
#: Per-record JSON around the base64 data in a Kinesis event, as AWS sends it (~0.5 KB).
EVENT_RECORD_OVERHEAD = 530
#: Filter patterns per event source mapping (FilterCriteria.Filters): AWS's default quota, ORed.
ESM_FILTERS_MAX = 5
#: Memory a function may be given, MB ("Configure Lambda function memory": 128 to 10,240 MB in 1-MB steps).
LAMBDA_MEMORY_MIN_MB = 128
LAMBDA_MEMORY_MAX_MB = 10_240
#: "At 1,769 MB, a function has the equivalent of one vCPU"; CPU is given in proportion to memory.
LAMBDA_ONE_VCPU_MB = 1_769
#: Concurrent executions per account and region, AWS's default quota ("Lambda quotas").
LAMBDA_ACCOUNT_CONCURRENCY_DEFAULT = 1_000
#: "Lambda scaling behavior": per function, 1,000 new execution environments every 10 seconds.
LAMBDA_SCALE_ENVIRONMENTS = 1_000
LAMBDA_SCALE_PERIOD_S = 10
#: A tumbling window's state ("1 MB", taken as 1 MiB of JSON): past it, Lambda terminates the window early.
ESM_WINDOW_STATE_MAX = 1 * MIB

# SQS
#: A message's body at the queue default MaximumMessageSize (a queue may allow up to 1 MiB).
SQS_MESSAGE_BYTES = 256 * KIB
SQS_BATCH_ENTRIES = 10

# DynamoDB
#: A tag's key length in characters (1 to 128) and its value's (0 to 256), as for every AWS resource tag.
DYNAMODB_TAG_KEY_MAX_CHARS = 128
DYNAMODB_TAG_VALUE_MAX_CHARS = 256
