"""Lease tables streamkit creates, hardened as the KCL's LeaseManagementConfig would: deletion protection,
point-in-time recovery, tags, billing mode, with the KCL's defaults. Against moto's DynamoDB server
(the `sqs_endpoint` fixture: moto's server answers every service), since dynalite implements none of
these calls. ~3 s."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from streamkit.checkpoints import DynamoDBCheckpointStore, LeaseTableOptions
from streamkit.checkpoints.dynamodb import LEASE_OWNER_INDEX
from streamkit.errors import ConfigurationError
from streamkit.local.stack import LocalStack
from streamkit.local.testing import local_client

pytestmark = pytest.mark.integration


@pytest.fixture
def moto_dynamodb(sqs_endpoint: str) -> Any:
    return local_client("dynamodb", sqs_endpoint)


def table_name() -> str:
    return f"leases-{uuid.uuid4().hex[:8]}"


def pitr(client: Any, table: str) -> str:
    desc = client.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    return str(desc["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"])


def test_by_default_a_table_is_created_as_the_kcl_creates_it(moto_dynamodb: Any) -> None:
    name = table_name()
    DynamoDBCheckpointStore(name, client=moto_dynamodb, layout="kcl")
    table = moto_dynamodb.describe_table(TableName=name)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert not table.get("DeletionProtectionEnabled", False)
    assert pitr(moto_dynamodb, name) == "DISABLED"
    assert moto_dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", []) == []


def test_hardened_options_reach_the_table(moto_dynamodb: Any) -> None:
    name = table_name()
    options = LeaseTableOptions(billing_mode="PROVISIONED", read_capacity=7, write_capacity=5, deletion_protection=True,
                                point_in_time_recovery=True, tags={"team": "streams", "cost-center": "42"})
    DynamoDBCheckpointStore(name, client=moto_dynamodb, layout="kcl", table_options=options)
    table = moto_dynamodb.describe_table(TableName=name)["Table"]
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 7
    assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 5
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == LEASE_OWNER_INDEX and index["ProvisionedThroughput"]["ReadCapacityUnits"] == 7
    assert table["DeletionProtectionEnabled"] is True
    assert pitr(moto_dynamodb, name) == "ENABLED"
    tags = moto_dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"team": "streams", "cost-center": "42"}
    with pytest.raises(ClientError, match="DeletionProtectionEnabled"):
        moto_dynamodb.delete_table(TableName=name)


def test_point_in_time_recovery_is_turned_on_for_an_existing_table_too(moto_dynamodb: Any) -> None:
    name = table_name()
    DynamoDBCheckpointStore(name, client=moto_dynamodb)
    assert pitr(moto_dynamodb, name) == "DISABLED"
    DynamoDBCheckpointStore(name, client=moto_dynamodb, table_options=LeaseTableOptions(point_in_time_recovery=True))
    assert pitr(moto_dynamodb, name) == "ENABLED"


def test_default_options_still_work_on_dynalite(local_stack: LocalStack, dynamodb_client: Any) -> None:
    name = table_name()
    DynamoDBCheckpointStore(name, client=dynamodb_client, layout="kcl")
    assert dynamodb_client.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE"


@pytest.mark.parametrize("bad", [dict(billing_mode="ON_DEMAND"), dict(read_capacity=0), dict(tags={"": "x"})])
def test_impossible_options_are_refused_at_construction(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="LeaseTableOptions"):
        LeaseTableOptions(**bad)
