"""KCL 3.5's single-table format: the lease table also holds the coordinator state and the worker
metrics, every item with an ``entityType`` (awslabs/amazon-kinesis-client v3.5.1, ``leases/EntityType.java``:
LEASE, STREAM, LEADER, CLIENT_VERSION_MIGRATION, TABLE_MIGRATION, WORKER_METRIC_STATS; keys from
``leader/LeaderLock.java`` "Leader", ``coordinator/migration/MigrationState.java`` "Migration3.0",
``TableMigrationState.java`` "TableMigration3.5", ``coordinator/streamInfo/StreamInfo.java`` (streamId),
``worker/metricstats/WorkerMetricStats.java`` (the worker id under leaseKey)). Only KCL 3.1.3 runs here,
so the items are fixtures built from that source. streamkit reads and writes the leases among them and
leaves every other item as it was. kinesalite + dynalite, ~8 s."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from streamkit.checkpoints import DynamoDBCheckpointStore
from streamkit.testing import StreamHandle
from tests.integration.test_kcl_lease_table import create_kcl_table, kcl_lease, put, run_consumer, scan, shard_ids

pytestmark = pytest.mark.integration
UPPER = str(2**127 + 1)


def other_entities(stream_id: str) -> dict[str, dict[str, Any]]:
    """One item of each non-lease entity type, as KCL 3.5 writes them into the lease table."""
    return {
        "Leader": {"leaseKey": {"S": "Leader"}, "entityType": {"S": "LEADER"}, "ownerName": {"S": "kcl-worker-1"},
                   "leaseDuration": {"S": "120000"}, "recordVersionNumber": {"S": str(uuid.uuid4())},
                   "steadySince": {"N": "1796471392"}, "tableMigrationStatus": {"S": "COMPLETE"}},
        "Migration3.0": {"leaseKey": {"S": "Migration3.0"}, "entityType": {"S": "CLIENT_VERSION_MIGRATION"},
                         "cv": {"S": "CLIENT_VERSION_3X"}, "mb": {"S": "kcl-worker-1"}, "mts": {"N": "1796471392207"},
                         "h": {"L": [{"M": {"cv": {"S": "CLIENT_VERSION_INIT"}, "mb": {"S": "kcl-worker-1"},
                                            "mts": {"N": "1796471392206"}}}]}},
        "TableMigration3.5": {"leaseKey": {"S": "TableMigration3.5"}, "entityType": {"S": "TABLE_MIGRATION"},
                              "status": {"S": "COMPLETE"}, "mb": {"S": "kcl-worker-1"}},
        stream_id: {"leaseKey": {"S": stream_id}, "entityType": {"S": "STREAM"},
                    "streamId": {"S": uuid.uuid4().hex}},
        "kcl-worker-1": {"leaseKey": {"S": "kcl-worker-1"}, "entityType": {"S": "WORKER_METRIC_STATS"},
                         "lut": {"N": "1796471426"}, "opr": {"M": {"C": {"L": [{"N": "100"}]}}},
                         "sts": {"M": {"C": {"L": [{"N": "12.5"}]}}}},
    }


def test_a_kcl_35_single_table_keeps_its_other_entities_and_its_leases_are_processed(
        stream_factory: Any, dynamodb_client: Any) -> None:
    stream: StreamHandle = stream_factory(shards=2)
    lower, upper = shard_ids(stream)
    before = put(stream, b"before", "0")
    put(stream, b"after-lower", "0")
    put(stream, b"upper", UPPER)
    table = f"kcl35-{uuid.uuid4().hex[:8]}"
    create_kcl_table(dynamodb_client, table)
    others = other_entities(f"123456789012:{stream.name}:1700000000")
    for item in others.values():
        dynamodb_client.put_item(TableName=table, Item=item)
    # Only the lower shard's lease exists (checkpointed at "before"); streamkit creates the upper one.
    dynamodb_client.put_item(TableName=table, Item=kcl_lease(lower, before, 0, counter=4))
    store = DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl")
    assert {lease.shard_id for lease in store.list_leases(table)} == {lower}

    got = run_consumer(stream.name, stream.client, store, app=table)

    assert got[(stream.name, lower)] == [b"after-lower"] and got[(stream.name, upper)] == [b"upper"]
    items = scan(dynamodb_client, table)
    assert {k: items[k] for k in others} == others  # every other entity exactly as it was
    assert items[lower]["entityType"] == {"S": "LEASE"} and items[upper]["entityType"] == {"S": "LEASE"}
    assert set(items) == set(others) | {lower, upper}
    assert {lease.shard_id for lease in store.list_leases(table)} == {lower, upper}


def test_an_item_of_another_entity_type_under_a_shard_key_is_not_read_as_a_lease(dynamodb_client: Any) -> None:
    table = f"kcl35-{uuid.uuid4().hex[:8]}"
    create_kcl_table(dynamodb_client, table)
    # A worker whose id looks like a shard id: its metrics item is keyed by that id.
    dynamodb_client.put_item(TableName=table, Item={"leaseKey": {"S": "shardId-000000000007"},
                                                    "entityType": {"S": "WORKER_METRIC_STATS"}, "lut": {"N": "1"}})
    store = DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl")
    assert store.list_leases(table) == []
    assert store.get_lease(table, "shardId-000000000007") is None
