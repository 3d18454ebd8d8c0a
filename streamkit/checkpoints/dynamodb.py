"""DynamoDBCheckpointStore: leases and checkpoints in a DynamoDB table, shared by many workers.

Two layouts of the items:

- ``layout="streamkit"`` (the default): one item per (namespace, lease): ``leaseKey`` =
  ``namespace|key``, so several applications may share a table.
- ``layout="kcl"``: the table is one application's, item for item as the KCL 2.x/3.x writes it, so an
  application can move from the KCL to streamkit and back without re-reading its stream. The schema
  is the KCL's own serializer (awslabs/amazon-kinesis-client v3.5.1,
  ``amazon-kinesis-client/src/main/java/software/amazon/kinesis/leases/dynamodb/DynamoDBLeaseSerializer.java``,
  ``.../leases/dynamodb/DynamoDBMultiStreamLeaseSerializer.java``, ``.../leases/MultiStreamLease.java``,
  ``.../common/StreamIdentifier.java``, ``.../leases/dynamodb/DynamoDBLeaseRefresher.java``; and its
  ``docs/kcl_3x_deep-dive.md`` and ``docs/kcl-configurations.md`` for the lease-owner index,
  ``throughputKBps`` and graceful handoff):

  ============================  =====  ==========================================================
  attribute                     type   streamkit
  ============================  =====  ==========================================================
  leaseKey (hash key)           S      the shard id; ``account:stream:epoch:shardId`` multi-stream
  leaseCounter                  N      `Lease.counter`
  leaseOwner                    S      `Lease.owner` (absent: unowned)
  ownerSwitchesSinceCheckpoint  N      `Lease.owner_switches`
  checkpoint                    S      sequence number or TRIM_HORIZON/LATEST/AT_TIMESTAMP/SHARD_END
  checkpointSubSequenceNumber   N      always written; 0 for a plain record (streamkit's None)
  pendingCheckpoint(+SubSeq..)  S, N   read; removed by a checkpoint, as the KCL's update does
  pendingCheckpointState        B      removed by a checkpoint, as the KCL's update does
  parentShardId                 SS     `Lease.parent_shard_ids` (absent when none)
  childShardIds                 SS     `Lease.child_shard_ids`
  startingHashKey/endingHashKey S      decimal strings, written when streamkit creates the lease
  throughputKBps                N      written on renewals (balancing by load reads it)
  checkpointOwner               S      KCL 3's graceful handoff: the worker finishing the lease
  entityType                    S      "LEASE" (KCL 3); items of another type are not leases
  streamName, shardId           S      multi-stream only: ``account:stream:epoch`` and the shard id
  ============================  =====  ==========================================================

  The table is created as the KCL creates it: ``leaseKey`` hash key, on-demand, with KCL 3's
  ``LeaseOwnerToLeaseKeyIndex`` GSI (leaseOwner hash, leaseKey range, keys only). In this layout the
  `namespace` argument is not part of the key: the table is the application's, as in the KCL.
  Attributes streamkit does not know are never rewritten (every change is an UpdateItem of named
  attributes), and ``checkpointTimestamp`` (an AT_TIMESTAMP start) is an extra the KCL ignores.

Every change is an UpdateItem with a ConditionExpression on the lease counter (and actual owner:
``checkpointOwner`` while a handoff is pending, else ``leaseOwner``), which is what fences a worker
that lost its lease: its renewals and checkpoints fail the condition.
"""

from __future__ import annotations

from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from streamkit.aws.codes import RETRYABLE_CODES
from streamkit.checkpoints.base import KEEP_OWNER, NO_OWNER_CHECK
from streamkit.checkpoints.layouts import check_table_layout, lease_item_problem
from streamkit.checkpoints.lease_table import LeaseTableOptions
from streamkit.checkpoints.model import Checkpoint, Lease, split_lease_key
from streamkit.clock import SYSTEM_CLOCK, Clock
from streamkit.errors import CheckpointError, ConfigurationError

__all__ = ["LEASE_OWNER_INDEX", "DynamoDBCheckpointStore"]

_SEP = "|"
#: Items read before the first use to tell the table's layout (one page of a Scan).
_LAYOUT_SAMPLE = 25
#: KCL 3's lease-owner GSI (DynamoDBLeaseRefresher.LEASE_OWNER_TO_LEASE_KEY_INDEX_NAME).
LEASE_OWNER_INDEX = "LeaseOwnerToLeaseKeyIndex"
_ENTITY_LEASE = "LEASE"  # EntityType.LEASE.getDdbValue()
_PENDING = ("pendingCheckpoint", "pendingCheckpointSubSequenceNumber", "pendingCheckpointState")


def _n(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name)
    return None if value is None else int(value["N"])


def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


class DynamoDBCheckpointStore:
    def __init__(self, table: str, *, client: Any = None, create: bool = True, layout: Literal["streamkit", "kcl"]
                 = "streamkit", endpoint_url: str | None = None, region: str | None = None,
                 clock: Clock = SYSTEM_CLOCK, table_options: LeaseTableOptions | None = None) -> None:
        from streamkit.aws.clients import aws_client

        if layout not in ("streamkit", "kcl"):
            raise ConfigurationError(f"DynamoDBCheckpointStore layout must be 'streamkit' or 'kcl', got {layout!r}")
        if not table:
            raise ConfigurationError("DynamoDBCheckpointStore needs a table name")
        self.table = table
        self.layout = layout
        self._kcl = layout == "kcl"
        self._clock = clock
        self.table_options = table_options or LeaseTableOptions()
        self._client = client or aws_client("dynamodb", endpoint_url=endpoint_url, region=region)
        self._layout_checked = False
        if create:
            self.ensure_table()

    def __repr__(self) -> str:
        return f"DynamoDBCheckpointStore({self.table!r}, layout={self.layout!r})"

    # -- items -----------------------------------------------------------------------------------
    def _key(self, namespace: str, key: str) -> dict[str, Any]:
        return {"leaseKey": {"S": key if self._kcl else namespace + _SEP + key}}

    def check_layout(self) -> None:
        """Before the first use: refuse a table of the other layout (or with a malformed item), in one line."""
        if self._layout_checked:
            return
        out = self._call("scan", TableName=self.table, Limit=_LAYOUT_SAMPLE, ConsistentRead=True)
        check_table_layout(self.table, self.layout, out.get("Items", []))
        self._layout_checked = True

    def _to_lease(self, item: dict[str, Any]) -> Lease:
        problem = lease_item_problem(item, self.layout)
        if problem is not None:
            key = item.get("leaseKey", {}).get("S")
            raise CheckpointError(f"DynamoDB table {self.table!r}: malformed lease item {key!r}: {problem}")
        if self._kcl:
            stream, shard_id = split_lease_key(item["leaseKey"]["S"])
            parents = tuple(sorted(item.get("parentShardId", {}).get("SS", [])))
        else:
            stream, shard_id = split_lease_key(item["shardId"]["S"])
            parents = tuple(p["S"] for p in item.get("parentShardIds", {}).get("L", []))
        seq = item["checkpoint"]["S"]
        # The KCL writes 0 beside a sentinel (TRIM_HORIZON, SHARD_END, ...): no position there.
        sub = _n(item, "checkpointSubSequenceNumber") if seq.isdigit() else None
        ts = item.get("checkpointTimestamp")
        pending = _s(item, "pendingCheckpoint")
        start, end = _s(item, "startingHashKey"), _s(item, "endingHashKey")
        kbps = item.get("throughputKBps")
        return Lease(
            shard_id=shard_id,
            stream=stream,
            owner=_s(item, "leaseOwner"),
            counter=int(item["leaseCounter"]["N"]),
            checkpoint=Checkpoint(seq, sub, float(ts["N"]) if ts else None),
            parent_shard_ids=parents,
            owner_switches=_n(item, "ownerSwitchesSinceCheckpoint") or 0,
            checkpoint_owner=_s(item, "checkpointOwner"),
            throughput_kbps=float(kbps["N"]) if kbps else None,
            child_shard_ids=tuple(sorted(item.get("childShardIds", {}).get("SS", []))),
            hash_key_range=(int(start), int(end)) if start and end else None,
            pending_checkpoint=Checkpoint(pending, _n(item, "pendingCheckpointSubSequenceNumber")) if pending else None,
        )

    def _is_lease(self, item: dict[str, Any]) -> bool:
        """KCL 3 marks each lease with entityType LEASE; an item without one is a KCL 2.x lease."""
        entity = _s(item, "entityType")
        return entity is None or entity == _ENTITY_LEASE

    def _to_item(self, namespace: str, lease: Lease) -> dict[str, Any]:
        cp = lease.checkpoint
        item: dict[str, Any] = self._key(namespace, lease.key)
        item["leaseCounter"] = {"N": str(lease.counter)}
        item["ownerSwitchesSinceCheckpoint"] = {"N": str(lease.owner_switches)}
        item["checkpoint"] = {"S": cp.sequence_number}
        if self._kcl:
            item["checkpointSubSequenceNumber"] = {"N": str(cp.sub_sequence_number or 0)}
            if lease.parent_shard_ids:
                item["parentShardId"] = {"SS": sorted(lease.parent_shard_ids)}
            item["entityType"] = {"S": _ENTITY_LEASE}
            if lease.stream is not None:
                item["streamName"] = {"S": lease.stream}
                item["shardId"] = {"S": lease.shard_id}
        else:
            item["namespace"] = {"S": namespace}
            item["shardId"] = {"S": lease.key}
            item["parentShardIds"] = {"L": [{"S": p} for p in lease.parent_shard_ids]}
            if cp.sub_sequence_number is not None:
                item["checkpointSubSequenceNumber"] = {"N": str(cp.sub_sequence_number)}
        if lease.child_shard_ids:
            item["childShardIds"] = {"SS": sorted(lease.child_shard_ids)}
        if lease.hash_key_range is not None:
            item["startingHashKey"] = {"S": str(lease.hash_key_range[0])}
            item["endingHashKey"] = {"S": str(lease.hash_key_range[1])}
        if cp.timestamp is not None:
            item["checkpointTimestamp"] = {"N": repr(cp.timestamp)}
        if lease.owner is not None:
            item["leaseOwner"] = {"S": lease.owner}
        if lease.checkpoint_owner is not None:
            item["checkpointOwner"] = {"S": lease.checkpoint_owner}
        if lease.throughput_kbps is not None:
            item["throughputKBps"] = {"N": repr(float(lease.throughput_kbps))}
        return item

    # -- calls -----------------------------------------------------------------------------------
    def _call(self, op: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, op)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _store_error(f"DynamoDB {op} on table {self.table!r} failed", exc) from exc

    def ensure_table(self, timeout: float = 60.0) -> None:
        """Create the lease table if it does not exist (as `table_options` say: on-demand by default), and
        wait until it is ACTIVE; then turn point-in-time recovery on if asked, as the KCL does.

        In the KCL layout it is created as the KCL 3 creates it, with the lease-owner GSI."""
        options = self.table_options
        request: dict[str, Any] = dict(
            TableName=self.table,
            KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
            **options.create_table_arguments(),
        )
        if self._kcl:
            request["AttributeDefinitions"].append({"AttributeName": "leaseOwner", "AttributeType": "S"})
            index: dict[str, Any] = {
                "IndexName": LEASE_OWNER_INDEX,
                "KeySchema": [{"AttributeName": "leaseOwner", "KeyType": "HASH"},
                              {"AttributeName": "leaseKey", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
            if options.throughput is not None:
                index["ProvisionedThroughput"] = options.throughput
            request["GlobalSecondaryIndexes"] = [index]
        try:
            self._client.create_table(**request)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise CheckpointError(f"cannot create DynamoDB table {self.table!r}: {exc}") from exc
        except BotoCoreError as exc:  # no answer (refused, reset, timed out): worth another try
            raise CheckpointError(f"cannot reach DynamoDB to create {self.table!r}: {exc}", retryable=True) from exc
        deadline = self._clock.monotonic() + timeout
        while self._clock.monotonic() < deadline:
            status = self._call("describe_table", TableName=self.table)["Table"]["TableStatus"]
            if status == "ACTIVE":
                if options.point_in_time_recovery:
                    self._call("update_continuous_backups", TableName=self.table,
                               PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
                return
            self._clock.sleep(0.05)
        raise CheckpointError(f"DynamoDB table {self.table!r} not ACTIVE after {timeout:.0f} s")

    def create_lease(self, namespace: str, lease: Lease) -> bool:
        self.check_layout()
        try:
            self._client.put_item(TableName=self.table, Item=self._to_item(namespace, lease),
                                  ConditionExpression="attribute_not_exists(leaseKey)")
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise _store_error(f"DynamoDB PutItem on {self.table!r} failed", exc) from exc
        except BotoCoreError as exc:
            raise _store_error(f"DynamoDB PutItem on {self.table!r} failed", exc) from exc

    def get_lease(self, namespace: str, key: str) -> Lease | None:
        self.check_layout()
        out = self._call("get_item", TableName=self.table, Key=self._key(namespace, key), ConsistentRead=True)
        item = out.get("Item")
        return self._to_lease(item) if item is not None and self._is_lease(item) else None

    def list_leases(self, namespace: str) -> list[Lease]:
        self.check_layout()
        leases: list[Lease] = []
        kwargs: dict[str, Any] = dict(TableName=self.table, ConsistentRead=True)
        if not self._kcl:
            kwargs.update(FilterExpression="#ns = :ns", ExpressionAttributeNames={"#ns": "namespace"},
                          ExpressionAttributeValues={":ns": {"S": namespace}})
        while True:
            out = self._call("scan", **kwargs)
            leases.extend(self._to_lease(i) for i in out.get("Items", []) if self._is_lease(i))
            if "LastEvaluatedKey" not in out:
                break
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        return sorted(leases, key=lambda lease: lease.key)

    def update_lease(self, namespace: str, key: str, *, expected_counter: int, expected_owner: str | None,
                     owner: str | None = KEEP_OWNER, checkpoint: Checkpoint | None = None,
                     owner_switches: int | None = None, checkpoint_owner: str | None = KEEP_OWNER,
                     throughput_kbps: float | None = None) -> Lease | None:
        self.check_layout()
        names = {"#c": "leaseCounter"}
        values: dict[str, Any] = {":expected": {"N": str(expected_counter)}, ":one": {"N": "1"}}
        sets = ["#c = #c + :one"]
        removes = []
        conds = ["#c = :expected"]
        if expected_owner != NO_OWNER_CHECK:
            names["#o"] = "leaseOwner"
            names["#co"] = "checkpointOwner"
            if expected_owner is None:
                conds.append("attribute_not_exists(#o) AND attribute_not_exists(#co)")
            else:  # the actual owner: the checkpoint owner while a handoff is pending, else the owner
                conds.append("(#co = :eowner OR (attribute_not_exists(#co) AND #o = :eowner))")
                values[":eowner"] = {"S": expected_owner}
        for alias, attribute, value in (("o", "leaseOwner", owner), ("co", "checkpointOwner", checkpoint_owner)):
            if value is KEEP_OWNER:
                continue
            names[f"#{alias}"] = attribute
            if value is None:
                removes.append(f"#{alias}")
            else:
                sets.append(f"#{alias} = :new{alias}")
                values[f":new{alias}"] = {"S": value}
        if checkpoint is not None:
            names.update({"#cp": "checkpoint", "#sub": "checkpointSubSequenceNumber", "#ts": "checkpointTimestamp"})
            sets.append("#cp = :cp")
            values[":cp"] = {"S": checkpoint.sequence_number}
            if checkpoint.sub_sequence_number is not None or self._kcl:
                sets.append("#sub = :sub")
                values[":sub"] = {"N": str(checkpoint.sub_sequence_number or 0)}
            else:
                removes.append("#sub")
            if checkpoint.timestamp is None:
                removes.append("#ts")
            else:
                sets.append("#ts = :ts")
                values[":ts"] = {"N": repr(checkpoint.timestamp)}
            for i, name in enumerate(_PENDING):  # a checkpoint supersedes a prepared one (the KCL's update)
                names[f"#p{i}"] = name
                removes.append(f"#p{i}")
        if owner_switches is not None:
            names["#sw"] = "ownerSwitchesSinceCheckpoint"
            sets.append("#sw = :sw")
            values[":sw"] = {"N": str(owner_switches)}
        if throughput_kbps is not None:
            names["#tp"] = "throughputKBps"
            sets.append("#tp = :tp")
            values[":tp"] = {"N": repr(float(throughput_kbps))}
        expr = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            out = self._client.update_item(
                TableName=self.table, Key=self._key(namespace, key),
                UpdateExpression=expr, ConditionExpression=" AND ".join(conds),
                ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise _store_error(f"DynamoDB UpdateItem on {self.table!r} failed", exc) from exc
        except BotoCoreError as exc:
            raise _store_error(f"DynamoDB UpdateItem on {self.table!r} failed", exc) from exc
        return self._to_lease(out["Attributes"])

    def delete_lease(self, namespace: str, key: str) -> None:
        self.check_layout()
        self._call("delete_item", TableName=self.table, Key=self._key(namespace, key))


def _store_error(what: str, exc: ClientError | BotoCoreError) -> CheckpointError:
    """A failed DynamoDB call as a CheckpointError; retryable when the server did not answer (a refused
    or reset connection, a timeout: BotoCoreError), throttled, or failed on its side."""
    retryable = not isinstance(exc, ClientError) or exc.response.get("Error", {}).get("Code") in RETRYABLE_CODES
    return CheckpointError(f"{what}: {exc}", retryable=retryable)
