"""Lease tables of the two layouts are never mixed (dynalite): a store refuses the other layout's table.

Reproduction (issue 24): `--checkpoint dynamodb:T` on a KCL table ignored the KCL's checkpoints and wrote
`app|shardId-...` items into it, after which the KCL failed every shard. Runs in about 2 s.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from streamkit.checkpoints import DynamoDBCheckpointStore
from streamkit.checkpoints.model import Checkpoint, Lease
from streamkit.errors import CheckpointError
from tests.integration.test_kcl_lease_table import create_kcl_table, kcl_lease, scan

pytestmark = pytest.mark.integration


def kcl_table(client: Any, *items: dict[str, Any]) -> str:
    table = f"kcl-{uuid.uuid4().hex[:8]}"
    create_kcl_table(client, table)
    for item in items:
        client.put_item(TableName=table, Item=item)
    return table


def test_a_kcl_table_survives_a_streamkit_layout_store_unchanged(dynamodb_client: Any) -> None:
    table = kcl_table(dynamodb_client, kcl_lease("shardId-000000000000", "49590", 0, counter=7, owner="w1"),
                      kcl_lease("shardId-000000000001", "TRIM_HORIZON", 0, counter=2, kcl3=False))
    before = scan(dynamodb_client, table)
    store = DynamoDBCheckpointStore(table, client=dynamodb_client)  # layout="streamkit", as dynamodb:T
    for attempt in (lambda: store.list_leases("app"), lambda: store.get_lease("app", "shardId-000000000000"),
                    lambda: store.create_lease("app", Lease(shard_id="shardId-000000000002",
                                                            checkpoint=Checkpoint("TRIM_HORIZON")))):
        with pytest.raises(CheckpointError) as info:
            attempt()
        assert f"--checkpoint kcl:{table}" in str(info.value) and "\n" not in str(info.value)
    assert scan(dynamodb_client, table) == before


def test_a_streamkit_table_survives_a_kcl_layout_store_unchanged(dynamodb_client: Any) -> None:
    table = f"sk-{uuid.uuid4().hex[:8]}"
    DynamoDBCheckpointStore(table, client=dynamodb_client).create_lease(
        "app", Lease(shard_id="shardId-000000000000", checkpoint=Checkpoint("TRIM_HORIZON")))
    before = scan(dynamodb_client, table)
    store = DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl")
    with pytest.raises(CheckpointError, match=f"--checkpoint dynamodb:{table}"):
        store.list_leases("app")
    with pytest.raises(CheckpointError, match=f"--checkpoint dynamodb:{table}"):
        store.create_lease("app", Lease(shard_id="shardId-000000000001", checkpoint=Checkpoint("TRIM_HORIZON")))
    assert scan(dynamodb_client, table) == before


def test_a_kcl_item_with_a_numeric_checkpoint_is_named_in_one_line(dynamodb_client: Any) -> None:
    bad = kcl_lease("shardId-000000000003", "0", 0, counter=1)
    bad["checkpoint"] = {"N": "49590"}
    table = kcl_table(dynamodb_client, bad)
    with pytest.raises(CheckpointError) as info:
        DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl").list_leases("app")
    assert str(info.value) == (f"DynamoDB table {table!r}: malformed lease item 'shardId-000000000003': "
                               "checkpoint is of type N, not a string (S)")


def test_kcl_items_of_other_entity_types_do_not_stop_a_kcl_store(dynamodb_client: Any) -> None:
    table = kcl_table(dynamodb_client, kcl_lease("shardId-000000000000", "TRIM_HORIZON", 0, counter=1),
                      {"leaseKey": {"S": "worker-x"}, "entityType": {"S": "SOME_OTHER_ENTITY"}})
    leases = DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl").list_leases("app")
    assert [lease.shard_id for lease in leases] == ["shardId-000000000000"]
