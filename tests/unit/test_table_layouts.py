"""Lease-table layout detection and item checks (pure), as a table of items."""

from __future__ import annotations

from typing import Any

import pytest

from streamkit.checkpoints.layouts import check_table_layout, item_layout, lease_item_problem
from streamkit.errors import CheckpointError

KCL2 = {"leaseKey": {"S": "shardId-000000000000"}, "leaseCounter": {"N": "3"}, "checkpoint": {"S": "TRIM_HORIZON"},
        "checkpointSubSequenceNumber": {"N": "0"}, "ownerSwitchesSinceCheckpoint": {"N": "0"}}
KCL3 = {**KCL2, "entityType": {"S": "LEASE"}}
STREAMKIT = {"leaseKey": {"S": "app|shardId-000000000000"}, "namespace": {"S": "app"},
             "shardId": {"S": "shardId-000000000000"}, "leaseCounter": {"N": "1"}, "checkpoint": {"S": "LATEST"},
             "ownerSwitchesSinceCheckpoint": {"N": "0"}, "parentShardIds": {"L": []}}


@pytest.mark.parametrize(("item", "layout"), [
    (KCL2, "kcl"), (KCL3, "kcl"), ({**KCL3, "entityType": {"S": "SOME_FUTURE_ENTITY"}}, "kcl"),
    ({"leaseKey": {"S": "x"}, "entityType": {"S": "WORKER"}}, "kcl"), (STREAMKIT, "streamkit")])
def test_each_item_is_of_one_layout(item: dict[str, Any], layout: str) -> None:
    assert item_layout(item) == layout


def test_kcl_items_of_every_entity_type_are_accepted_and_only_leases_are_checked() -> None:
    check_table_layout("t", "kcl", [KCL2, KCL3, {"leaseKey": {"S": "w"}, "entityType": {"S": "WORKER_METRICS"}}])


@pytest.mark.parametrize(("item", "problem"), [
    ({**KCL3, "checkpoint": {"N": "495"}}, "checkpoint is of type N, not a string (S)"),
    ({k: v for k, v in KCL3.items() if k != "checkpoint"}, "checkpoint is missing"),
    ({**KCL3, "leaseCounter": {"S": "1"}}, "leaseCounter is missing or not a number"),
    ({**KCL3, "checkpointSubSequenceNumber": {"S": "0"}}, "checkpointSubSequenceNumber is not a number"),
    ({**KCL3, "leaseKey": {"N": "1"}}, "leaseKey is not a string"),
])
def test_a_malformed_kcl_item_is_named_with_what_is_wrong(item: dict[str, Any], problem: str) -> None:
    assert lease_item_problem(item, "kcl") == problem
    with pytest.raises(CheckpointError, match="malformed lease item") as info:
        check_table_layout("t", "kcl", [KCL2, item])
    assert "\n" not in str(info.value) and problem in str(info.value)


def test_a_streamkit_item_whose_key_is_not_namespace_and_shard_is_malformed() -> None:
    assert lease_item_problem({**STREAMKIT, "leaseKey": {"S": "other|x"}}, "streamkit") is not None
    assert lease_item_problem(STREAMKIT, "streamkit") is None


def test_a_kcl_table_opened_as_streamkit_names_the_kcl_form() -> None:
    with pytest.raises(CheckpointError) as info:
        check_table_layout("orders", "streamkit", [KCL3])
    msg = str(info.value)
    assert "a KCL lease table" in msg and "--checkpoint kcl:orders" in msg and "\n" not in msg


def test_a_streamkit_table_opened_as_kcl_names_the_dynamodb_form() -> None:
    with pytest.raises(CheckpointError) as info:
        check_table_layout("orders", "kcl", [STREAMKIT])
    assert "a streamkit checkpoint table" in str(info.value) and "--checkpoint dynamodb:orders" in str(info.value)


def test_an_empty_table_is_of_either_layout() -> None:
    check_table_layout("t", "kcl", [])
    check_table_layout("t", "streamkit", [])
