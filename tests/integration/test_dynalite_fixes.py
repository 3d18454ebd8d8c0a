"""dynalite as the local stack runs it: UpdateTable creates a global secondary index (KCL 3 adds its
LeaseOwnerToLeaseKeyIndex to a lease table that way), filled from the items already there; a client
killed mid-request does not take the server down. ~2 s."""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError

from streamkit.checkpoints.dynamodb import LEASE_OWNER_INDEX
from streamkit.local.stack import LocalStack

pytestmark = pytest.mark.integration


def kcl_owner_index(attribute_definitions: bool = True) -> dict[str, Any]:
    """UpdateTable's arguments as KCL 3.1.3's DynamoDBLeaseRefresher sends them (no ProvisionedThroughput)."""
    args: dict[str, Any] = {"GlobalSecondaryIndexUpdates": [{"Create": {
        "IndexName": LEASE_OWNER_INDEX,
        "KeySchema": [{"AttributeName": "leaseOwner", "KeyType": "HASH"},
                      {"AttributeName": "leaseKey", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"}}}]}
    if attribute_definitions:
        args["AttributeDefinitions"] = [{"AttributeName": "leaseOwner", "AttributeType": "S"},
                                        {"AttributeName": "leaseKey", "AttributeType": "S"}]
    return args


def new_table(client: Any) -> str:
    name = f"lease-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}])
    deadline = time.monotonic() + 10
    while client.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE" and time.monotonic() < deadline:
        time.sleep(0.05)
    return name


def owned_by(client: Any, table: str, owner: str) -> list[str]:
    q = client.query(TableName=table, IndexName=LEASE_OWNER_INDEX, KeyConditionExpression="leaseOwner = :o",
                     ExpressionAttributeValues={":o": {"S": owner}})
    return sorted(i["leaseKey"]["S"] for i in q["Items"])


def test_update_table_creates_the_kcl_owner_index_active_and_filled_with_earlier_items(dynamodb_client: Any) -> None:
    table = new_table(dynamodb_client)
    dynamodb_client.put_item(TableName=table, Item={"leaseKey": {"S": "shard-a"}, "leaseOwner": {"S": "w1"}})
    dynamodb_client.put_item(TableName=table, Item={"leaseKey": {"S": "shard-b"}})  # unowned: not in the index
    indexes = dynamodb_client.update_table(TableName=table, **kcl_owner_index())["TableDescription"][
        "GlobalSecondaryIndexes"]
    assert [(i["IndexName"], i["IndexStatus"]) for i in indexes] == [(LEASE_OWNER_INDEX, "ACTIVE")]
    dynamodb_client.put_item(TableName=table, Item={"leaseKey": {"S": "shard-c"}, "leaseOwner": {"S": "w1"}})
    dynamodb_client.update_item(TableName=table, Key={"leaseKey": {"S": "shard-b"}},
                                UpdateExpression="SET leaseOwner = :o", ExpressionAttributeValues={":o": {"S": "w2"}})
    assert owned_by(dynamodb_client, table, "w1") == ["shard-a", "shard-c"]
    assert owned_by(dynamodb_client, table, "w2") == ["shard-b"]


def test_an_index_on_an_undefined_attribute_or_twice_is_refused(dynamodb_client: Any) -> None:
    table = new_table(dynamodb_client)
    with pytest.raises(ClientError, match="not defined in AttributeDefinitions"):
        dynamodb_client.update_table(TableName=table, **kcl_owner_index(attribute_definitions=False))
    dynamodb_client.update_table(TableName=table, **kcl_owner_index())
    with pytest.raises(ClientError, match="already exists"):
        dynamodb_client.update_table(TableName=table, **kcl_owner_index())


def test_a_client_gone_in_the_middle_of_a_request_leaves_dynalite_serving(local_stack: LocalStack,
                                                                         dynamodb_client: Any) -> None:
    url = urlparse(local_stack.dynamodb_endpoint)
    for _ in range(3):  # as a worker SIGKILLed mid-call: headers and half a body, then the socket closes
        with socket.create_connection((url.hostname, url.port), timeout=5) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\n"
                      b"X-Amz-Target: DynamoDB_20120810.ListTables\r\nContent-Length: 1000\r\n\r\n{\"Lim")
            time.sleep(0.05)
    time.sleep(0.2)
    assert "TableNames" in dynamodb_client.list_tables()
