"""DynamoDBCheckpointStore: leases and checkpoints in a DynamoDB table, shared by many workers.

One item per (namespace, shard): ``leaseKey`` = ``namespace|shard_id``. Every change is an
UpdateItem with a ConditionExpression on the lease counter (and owner), which is what fences a
worker that lost its lease: its renewals and checkpoints fail the condition.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from streamkit.checkpoints.base import KEEP_OWNER, NO_OWNER_CHECK
from streamkit.checkpoints.model import Checkpoint, Lease
from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.errors import CheckpointError

__all__ = ["DynamoDBCheckpointStore"]

_SEP = "|"


def _to_lease(item: dict[str, Any]) -> Lease:
    sub = item.get("checkpointSubSequenceNumber")
    ts = item.get("checkpointTimestamp")
    return Lease(
        shard_id=item["shardId"]["S"],
        owner=item["leaseOwner"]["S"] if "leaseOwner" in item else None,
        counter=int(item["leaseCounter"]["N"]),
        checkpoint=Checkpoint(item["checkpoint"]["S"], int(sub["N"]) if sub else None, float(ts["N"]) if ts else None),
        parent_shard_ids=tuple(p["S"] for p in item.get("parentShardIds", {}).get("L", [])),
        owner_switches=int(item.get("ownerSwitchesSinceCheckpoint", {"N": "0"})["N"]),
    )


class DynamoDBCheckpointStore:
    def __init__(self, table: str, *, client: Any = None, create: bool = True,
                 endpoint_url: str | None = None, region: str | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        from streamkit.aws.clients import aws_client

        self.table = table
        self._clock = clock
        self._client = client or aws_client("dynamodb", endpoint_url=endpoint_url, region=region)
        if create:
            self.ensure_table()

    def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, op)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _store_error(f"DynamoDB {op} on table {self.table!r} failed", exc) from exc

    def ensure_table(self, timeout: float = 60.0) -> None:
        """Create the lease table (on-demand billing) if it does not exist, and wait until it is ACTIVE."""
        try:
            self._client.create_table(
                TableName=self.table,
                KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise CheckpointError(f"cannot create DynamoDB table {self.table!r}: {exc}") from exc
        except BotoCoreError as exc:
            raise CheckpointError(f"cannot reach DynamoDB to create {self.table!r}: {exc}") from exc
        deadline = self._clock.monotonic() + timeout
        while self._clock.monotonic() < deadline:
            status = self._call("describe_table", TableName=self.table)["Table"]["TableStatus"]
            if status == "ACTIVE":
                return
            self._clock.sleep(0.05)
        raise CheckpointError(f"DynamoDB table {self.table!r} not ACTIVE after {timeout:.0f} s")

    def create_lease(self, namespace: str, lease: Lease) -> bool:
        item: dict[str, Any] = {
            "leaseKey": {"S": namespace + _SEP + lease.shard_id},
            "namespace": {"S": namespace},
            "shardId": {"S": lease.shard_id},
            "leaseCounter": {"N": str(lease.counter)},
            "checkpoint": {"S": lease.checkpoint.sequence_number},
            "parentShardIds": {"L": [{"S": p} for p in lease.parent_shard_ids]},
            "ownerSwitchesSinceCheckpoint": {"N": str(lease.owner_switches)},
        }
        if lease.checkpoint.sub_sequence_number is not None:
            item["checkpointSubSequenceNumber"] = {"N": str(lease.checkpoint.sub_sequence_number)}
        if lease.checkpoint.timestamp is not None:
            item["checkpointTimestamp"] = {"N": repr(lease.checkpoint.timestamp)}
        if lease.owner is not None:
            item["leaseOwner"] = {"S": lease.owner}
        try:
            self._client.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(leaseKey)")
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise _store_error(f"DynamoDB PutItem on {self.table!r} failed", exc) from exc
        except BotoCoreError as exc:
            raise _store_error(f"DynamoDB PutItem on {self.table!r} failed", exc) from exc

    def get_lease(self, namespace: str, shard_id: str) -> Lease | None:
        out = self._call("get_item", TableName=self.table, Key={"leaseKey": {"S": namespace + _SEP + shard_id}},
                         ConsistentRead=True)
        return _to_lease(out["Item"]) if "Item" in out else None

    def list_leases(self, namespace: str) -> list[Lease]:
        leases: list[Lease] = []
        kwargs: dict[str, Any] = dict(TableName=self.table, ConsistentRead=True,
                                      FilterExpression="#ns = :ns", ExpressionAttributeNames={"#ns": "namespace"},
                                      ExpressionAttributeValues={":ns": {"S": namespace}})
        while True:
            out = self._call("scan", **kwargs)
            leases.extend(_to_lease(i) for i in out.get("Items", []))
            if "LastEvaluatedKey" not in out:
                break
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        return sorted(leases, key=lambda lease: lease.shard_id)

    def update_lease(self, namespace: str, shard_id: str, *, expected_counter: int, expected_owner: str | None,
                     owner: str | None = KEEP_OWNER, checkpoint: Checkpoint | None = None,
                     owner_switches: int | None = None) -> Lease | None:
        names = {"#c": "leaseCounter"}
        values: dict[str, Any] = {":expected": {"N": str(expected_counter)}, ":one": {"N": "1"}}
        sets = ["#c = #c + :one"]
        removes = []
        conds = ["#c = :expected"]
        if expected_owner != NO_OWNER_CHECK:
            names["#o"] = "leaseOwner"
            if expected_owner is None:
                conds.append("attribute_not_exists(#o)")
            else:
                conds.append("#o = :eowner")
                values[":eowner"] = {"S": expected_owner}
        if owner is not KEEP_OWNER:
            names["#o"] = "leaseOwner"
            if owner is None:
                removes.append("#o")
            else:
                sets.append("#o = :owner")
                values[":owner"] = {"S": owner}
        if checkpoint is not None:
            names.update({"#cp": "checkpoint", "#sub": "checkpointSubSequenceNumber", "#ts": "checkpointTimestamp"})
            sets.append("#cp = :cp")
            values[":cp"] = {"S": checkpoint.sequence_number}
            if checkpoint.sub_sequence_number is None:
                removes.append("#sub")
            else:
                sets.append("#sub = :sub")
                values[":sub"] = {"N": str(checkpoint.sub_sequence_number)}
            if checkpoint.timestamp is None:
                removes.append("#ts")
            else:
                sets.append("#ts = :ts")
                values[":ts"] = {"N": repr(checkpoint.timestamp)}
        if owner_switches is not None:
            names["#sw"] = "ownerSwitchesSinceCheckpoint"
            sets.append("#sw = :sw")
            values[":sw"] = {"N": str(owner_switches)}
        expr = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            out = self._client.update_item(
                TableName=self.table, Key={"leaseKey": {"S": namespace + _SEP + shard_id}},
                UpdateExpression=expr, ConditionExpression=" AND ".join(conds),
                ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise _store_error(f"DynamoDB UpdateItem on {self.table!r} failed", exc) from exc
        except BotoCoreError as exc:
            raise _store_error(f"DynamoDB UpdateItem on {self.table!r} failed", exc) from exc
        return _to_lease(out["Attributes"])

    def delete_lease(self, namespace: str, shard_id: str) -> None:
        self._call("delete_item", TableName=self.table, Key={"leaseKey": {"S": namespace + _SEP + shard_id}})


#: DynamoDB error codes worth another try: throttling and the service's own failures.
_RETRYABLE_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                              "InternalServerError", "ServiceUnavailable"})


def _store_error(what: str, exc: ClientError | BotoCoreError) -> CheckpointError:
    """A failed DynamoDB call as a CheckpointError; retryable when the server did not answer (a refused
    or reset connection, a timeout: BotoCoreError), throttled, or failed on its side."""
    retryable = not isinstance(exc, ClientError) or exc.response.get("Error", {}).get("Code") in _RETRYABLE_CODES
    return CheckpointError(f"{what}: {exc}", retryable=retryable)
