"""The OnFailure record AWS's mapping writes for discarded records: metadata only, no data."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from streamkit.aws_lambda.esm_config import EsmConfig
from streamkit.aws_lambda.esm_core import Outcome, PendingRecord
from streamkit.aws_lambda.esm_invoke import ACCOUNT, iso_time

__all__ = ["failure_record", "s3_failure_object", "s3_object_key"]


def failure_record(records: Sequence[PendingRecord], outcome: Outcome, *, shard_id: str, config: EsmConfig,
                   arn: str, now: float) -> dict[str, Any]:
    """The document AWS sends to an SQS/SNS OnFailure destination for `records` (discarded, in order).

    ``functionError`` is "Unhandled" when the invocation raised and null when the function reported the
    failure in ``batchItemFailures``, as LocalStack's snapshots recorded AWS writing (2024-2025).
    """
    aged = outcome.condition == "RecordAgeExceeded"
    doc: dict[str, Any] = {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"arn:aws:lambda:{config.region}:{ACCOUNT}:function:{config.function_name}",
            "condition": outcome.condition,
            # AWS wrote 1 for records that expired, whether before their first invocation or while retried.
            "approximateInvokeCount": 1 if aged else max(r.attempts for r in records),
        },
    }
    if not aged:  # a RecordAgeExceeded record has no responseContext (recorded against AWS)
        doc["responseContext"] = {"statusCode": 200, "executedVersion": "$LATEST",
                                  "functionError": "Unhandled" if outcome.unhandled else None}
    return doc | {
        "version": "1.0",
        "timestamp": iso_time(now),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0].sequence_number,
            "endSequenceNumber": records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": iso_time(records[0].arrival),
            "approximateArrivalOfLastRecord": iso_time(records[-1].arrival),
            "batchSize": len(records),
            "streamArn": arn,
        },
    }


def s3_object_key(mapping_uuid: str, shard_id: str, now: float) -> str:
    """Where AWS writes an OnFailure object in an S3 destination, as its Kinesis on-failure page documents:
    ``aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>`` (UTC)."""
    t = dt.datetime.fromtimestamp(now, dt.UTC)
    return f"aws/lambda/{mapping_uuid}/{shard_id}/{t:%Y/%m/%d}/{t:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"


def s3_failure_object(record: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The S3 object AWS writes: every field of the SQS/SNS OnFailure `record`, plus ``payload``, "the
    original invocation record as an escaped JSON string" (AWS's page), i.e. the invocation's event."""
    return record | {"payload": orjson.dumps(event).decode()}
