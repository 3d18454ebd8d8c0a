"""A KCL lease table, read, resumed from and written back in the KCL's own shape (kinesalite + dynalite).

The fixture items are what the KCL's serializer writes (awslabs/amazon-kinesis-client v3.5.1,
``leases/dynamodb/DynamoDBLeaseSerializer.java`` ``toDynamoRecord``, and
``DynamoDBMultiStreamLeaseSerializer.java`` for several streams): a KCL 2.x lease (no entityType, no
throughput), a KCL 3.x lease (entityType, throughputKBps, hash keys, a pending checkpoint), and
multi-stream leases keyed ``account:stream:epoch:shardId``. `kcl_read` below reads an item the way
the serializer's ``fromDynamoRecord`` does (DynamoUtils.safeGet*: each attribute must have its type),
so a table it accepts is one the KCL can load again.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from typing import Any, ClassVar

import pytest

from streamkit.aggregation import UserRecord, encode
from streamkit.checkpoints import DynamoDBCheckpointStore
from streamkit.checkpoints.dynamodb import LEASE_OWNER_INDEX
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.records import StreamRecord
from streamkit.testing import StreamHandle
from tests.integration.helpers import kcl_identifier

pytestmark = pytest.mark.integration
FAST = dict(idle_poll_interval=0.1, min_poll_interval=0.05, lease_duration=1.5, backoff_base=0.01, backoff_max=0.05)
UPPER = str(2**127 + 1)  # an explicit hash key in the upper shard of two

#: Attribute -> DynamoDB type, as DynamoDBLeaseSerializer (+ the multi-stream one) writes and reads them.
KCL_TYPES = {
    "leaseKey": "S", "leaseCounter": "N", "leaseOwner": "S", "ownerSwitchesSinceCheckpoint": "N",
    "checkpoint": "S", "checkpointSubSequenceNumber": "N", "pendingCheckpoint": "S",
    "pendingCheckpointSubSequenceNumber": "N", "pendingCheckpointState": "B", "parentShardId": "SS",
    "childShardIds": "SS", "startingHashKey": "S", "endingHashKey": "S", "throughputKBps": "N",
    "checkpointOwner": "S", "entityType": "S", "streamName": "S", "shardId": "S",
}


def kcl_read(item: dict[str, Any]) -> dict[str, Any]:
    """fromDynamoRecord's view of an item: every KCL attribute with its type; KCL-required ones present."""
    out: dict[str, Any] = {}
    for name, value in item.items():
        ((kind, raw),) = value.items()
        if name in KCL_TYPES:
            assert kind == KCL_TYPES[name], f"{name} is {kind}, the KCL reads {KCL_TYPES[name]}"
            out[name] = int(raw) if kind == "N" and name != "throughputKBps" else raw
    for required in ("leaseKey", "leaseCounter", "checkpoint", "checkpointSubSequenceNumber",
                     "ownerSwitchesSinceCheckpoint"):
        assert required in out, f"{required} missing: the KCL's ExtendedSequenceNumber/lease needs it"
    return out


def kcl_lease(key: str, checkpoint: str, sub: int, *, counter: int, owner: str | None = None, kcl3: bool = True,
              parents: list[str] | None = None, hash_range: tuple[int, int] | None = None,
              stream: str | None = None, shard: str | None = None, **extra: Any) -> dict[str, Any]:
    """An item as toDynamoRecord builds it."""
    item: dict[str, Any] = {
        "leaseKey": {"S": key}, "leaseCounter": {"N": str(counter)},
        "ownerSwitchesSinceCheckpoint": {"N": "0"},
        "checkpoint": {"S": checkpoint}, "checkpointSubSequenceNumber": {"N": str(sub)},
    }
    if owner:
        item["leaseOwner"] = {"S": owner}
    if parents:
        item["parentShardId"] = {"SS": parents}
    if hash_range:
        item["startingHashKey"] = {"S": str(hash_range[0])}
        item["endingHashKey"] = {"S": str(hash_range[1])}
    if kcl3:
        item["entityType"] = {"S": "LEASE"}
    if stream:
        item["streamName"] = {"S": stream}
        item["shardId"] = {"S": shard}
    item.update(extra)
    return item


def create_kcl_table(client: Any, table: str) -> None:
    """The table as the KCL's DynamoDBLeaseRefresher.createLeaseTableIfNotExists makes it (KCL 2.x: no GSI)."""
    client.create_table(TableName=table, KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    for _ in range(200):  # dynalite: CREATING for a moment
        if client.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE":
            return
        time.sleep(0.05)
    raise AssertionError(f"{table} not ACTIVE")


def put(stream: StreamHandle, data: bytes, ehk: str) -> str:
    out = stream.client.put_record(StreamName=stream.name, Data=data, PartitionKey="k", ExplicitHashKey=ehk)
    return str(out["SequenceNumber"])


def shard_ids(stream: StreamHandle) -> list[str]:
    return [s["ShardId"] for s in stream.client.list_shards(StreamName=stream.name)["Shards"]]


def run_consumer(streams: str | list[str], client: Any, store: DynamoDBCheckpointStore,
                 app: str = "kcl-app") -> dict[tuple[str | None, str], list[bytes]]:
    got: dict[tuple[str | None, str], list[bytes]] = defaultdict(list)
    lock = threading.Lock()

    def handle(r: StreamRecord) -> None:
        with lock:
            got[(r.stream_name, r.shard_id)].append(r.data)

    Consumer(streams, handle, application_name=app, checkpoint_store=store, client=client,
             config=ConsumerConfig(**FAST)).run(install_signal_handlers=False, stop_after_idle=3.0)  # type: ignore[arg-type]
    return got


def scan(client: Any, table: str) -> dict[str, dict[str, Any]]:
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return {i["leaseKey"]["S"]: i for i in items}


def test_a_kcl_table_resumes_after_each_checkpoint_and_stays_kcl_shaped(
        stream_factory: Any, dynamodb_client: Any) -> None:
    stream = stream_factory(shards=2)
    low, high = sorted(shard_ids(stream))
    # Shard low: p0..p9, an aggregate A of 5, p10..p12. Shard high: an aggregate B of 4, q0..q4.
    seq_low = [put(stream, b"p%d" % i, "0") for i in range(10)]
    put(stream, encode([UserRecord(b"A%d" % i, "k") for i in range(5)]), "0")
    for i in range(10, 13):
        put(stream, b"p%d" % i, "0")
    seq_b = put(stream, encode([UserRecord(b"B%d" % i, "k") for i in range(4)]), UPPER)
    for i in range(5):
        put(stream, b"q%d" % i, UPPER)

    table = f"kcl-{uuid.uuid4().hex[:8]}"
    create_kcl_table(dynamodb_client, table)
    # A KCL 2.x lease a stopped worker still names (it expires: nobody renews it), checkpointed at p4
    # (a plain record: sub-sequence 0) ...
    dynamodb_client.put_item(TableName=table, Item=kcl_lease(low, seq_low[4], 0, counter=17, owner="kcl-worker-1",
                                                             kcl3=False))
    # ... and a KCL 3.x lease, unowned, checkpointed inside aggregate B after its sub-record 1, with a
    # prepared checkpoint, a throughput and an attribute streamkit does not know.
    dynamodb_client.put_item(TableName=table, Item=kcl_lease(
        high, seq_b, 1, counter=5, hash_range=(2**127, 2**128 - 1), throughputKBps={"N": "12.5"},
        pendingCheckpoint={"S": seq_b}, pendingCheckpointSubSequenceNumber={"N": "3"},
        pendingCheckpointState={"B": b"state"}, someFutureAttribute={"S": "kept"}))
    before = scan(dynamodb_client, table)

    store = DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl")
    leases = {lease.shard_id: lease for lease in store.list_leases("ignored")}
    assert leases[low].owner == "kcl-worker-1" and leases[low].counter == 17
    assert (leases[low].checkpoint.sequence_number, leases[low].checkpoint.sub_sequence_number) == (seq_low[4], 0)
    assert leases[high].checkpoint.sub_sequence_number == 1 and leases[high].throughput_kbps == 12.5
    assert leases[high].pending_checkpoint is not None and leases[high].pending_checkpoint.sub_sequence_number == 3
    assert leases[high].hash_key_range == (2**127, 2**128 - 1)

    got = run_consumer(stream.name, stream.client, store)
    assert got[(stream.name, low)] == [b"p%d" % i for i in range(5, 10)] + [b"A%d" % i for i in range(5)] + [
        b"p10", b"p11", b"p12"]
    assert got[(stream.name, high)] == [b"B2", b"B3"] + [b"q%d" % i for i in range(5)]

    after = scan(dynamodb_client, table)
    assert set(after) == {low, high}  # single-stream keys: the shard id, nothing else
    for key, item in after.items():
        view = kcl_read(item)
        assert "leaseOwner" not in view  # released on stop, as the KCL's graceful shutdown leaves it
        assert view["leaseCounter"] > int(before[key]["leaseCounter"]["N"])
        assert not {"namespace", "parentShardIds", "checkpointTimestamp"} & set(item)  # no streamkit layout
        assert "shardId" not in item  # a single-stream KCL lease has none
        assert not {"pendingCheckpoint", "pendingCheckpointSubSequenceNumber", "pendingCheckpointState"} & set(item)
    assert "entityType" not in after[low]  # a KCL 2.x item stays one
    assert after[high]["entityType"] == {"S": "LEASE"} and after[high]["someFutureAttribute"] == {"S": "kept"}
    assert after[high]["startingHashKey"] == before[high]["startingHashKey"]
    last_low = stream.client.get_records(ShardIterator=stream.client.get_shard_iterator(
        StreamName=stream.name, ShardId=low, ShardIteratorType="TRIM_HORIZON")["ShardIterator"])["Records"][-1]
    assert kcl_read(after[low])["checkpoint"] == last_low["SequenceNumber"]
    assert kcl_read(after[low])["checkpointSubSequenceNumber"] == 0  # a plain record, as the KCL writes it

    # Resumed again (a KCL restarting would start at the same place): only what is new.
    put(stream, b"p13", "0")
    again = run_consumer(stream.name, stream.client, store)
    assert dict(again) == {(stream.name, low): [b"p13"]}


def test_several_streams_share_one_kcl_multi_stream_table(stream_factory: Any, dynamodb_client: Any) -> None:
    a, b = stream_factory(shards=1), stream_factory(shards=1)
    idents = {s.name: kcl_identifier(s) for s in (a, b)}
    seq_a = [put(a, b"a%d" % i, "0") for i in range(6)]
    for i in range(4):
        put(b, b"b%d" % i, "0")
    (shard_a,), (shard_b,) = shard_ids(a), shard_ids(b)
    table = f"kcl-multi-{uuid.uuid4().hex[:8]}"
    create_kcl_table(dynamodb_client, table)
    # Stream a: a KCL multi-stream lease checkpointed at a2. Stream b: no lease yet (streamkit creates it).
    dynamodb_client.put_item(TableName=table, Item=kcl_lease(
        f"{idents[a.name]}:{shard_a}", seq_a[2], 0, counter=3, stream=idents[a.name], shard=shard_a))

    store = DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl")
    got = run_consumer([a.name, b.name], a.client, store, app="multi")
    assert got == {(a.name, shard_a): [b"a3", b"a4", b"a5"], (b.name, shard_b): [b"b%d" % i for i in range(4)]}

    after = scan(dynamodb_client, table)
    assert set(after) == {f"{idents[a.name]}:{shard_a}", f"{idents[b.name]}:{shard_b}"}
    new = kcl_read(after[f"{idents[b.name]}:{shard_b}"])  # as DynamoDBMultiStreamLeaseSerializer writes one
    assert (new["streamName"], new["shardId"], new["entityType"]) == (idents[b.name], shard_b, "LEASE")
    assert "startingHashKey" in new and "endingHashKey" in new
    for item in after.values():
        view = kcl_read(item)
        assert view["checkpointSubSequenceNumber"] == 0 and view["checkpoint"].isdigit()


def test_a_kcl_table_streamkit_creates_has_the_kcl3_lease_owner_index(dynamodb_client: Any) -> None:
    table = f"kcl-new-{uuid.uuid4().hex[:8]}"
    DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl")
    desc = dynamodb_client.describe_table(TableName=table)["Table"]
    assert desc["KeySchema"] == [{"AttributeName": "leaseKey", "KeyType": "HASH"}]
    (index,) = desc["GlobalSecondaryIndexes"]
    assert index["IndexName"] == LEASE_OWNER_INDEX
    assert index["KeySchema"] == [{"AttributeName": "leaseOwner", "KeyType": "HASH"},
                                  {"AttributeName": "leaseKey", "KeyType": "RANGE"}]


class KclpyCollector:
    """A kclpy processor, written for amazon_kclpy, run by streamkit from the daemon's properties file."""

    got: ClassVar[list[bytes]] = []

    def initialize(self, initialize_input: Any) -> None: ...

    def process_records(self, process_records_input: Any) -> None:
        KclpyCollector.got.extend(r.binary_data for r in process_records_input.records)
        process_records_input.checkpointer.checkpoint()

    def lease_lost(self, lease_lost_input: Any) -> None: ...

    def shard_ended(self, shard_ended_input: Any) -> None:
        shard_ended_input.checkpointer.checkpoint()

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        shutdown_requested_input.checkpointer.checkpoint()


def test_a_multilang_properties_file_runs_a_kclpy_processor_on_its_kcl_table(
        stream_factory: Any, dynamodb_client: Any, tmp_path: Any) -> None:
    from streamkit.consumer.kclpy import consumer_from_properties

    stream = stream_factory(shards=2)
    for i in range(40):
        put(stream, b"r%d" % i, "0" if i % 2 else UPPER)
    app = f"props-{uuid.uuid4().hex[:6]}"
    props = tmp_path / "app.properties"
    props.write_text(f"""executableName = app.py
streamName = {stream.name}
applicationName = {app}
initialPositionInStream = TRIM_HORIZON
regionName = us-east-1
failoverTimeMillis = 1500
idleTimeBetweenReadsInMillis = 100
kinesisEndpoint = {stream.stack.kinesis_endpoint}
dynamoDBEndpoint = {stream.stack.dynamodb_endpoint}
""")
    KclpyCollector.got = []
    consumer_from_properties(props, KclpyCollector).run(install_signal_handlers=False, stop_after_idle=2.0)
    assert sorted(KclpyCollector.got) == sorted(b"r%d" % i for i in range(40))
    items = scan(dynamodb_client, app)  # the table is named after the application, as the daemon's
    assert sorted(items) == sorted(shard_ids(stream)) and all(kcl_read(i)["checkpoint"].isdigit() for i in items.values())


def test_one_stream_on_a_kcl_multi_stream_table_keeps_its_multi_stream_leases(
        stream_factory: Any, dynamodb_client: Any) -> None:
    stream = stream_factory(shards=1)
    ident = kcl_identifier(stream)
    seqs = [put(stream, b"m%d" % i, "0") for i in range(5)]
    (shard,) = shard_ids(stream)
    table = f"kcl-one-{uuid.uuid4().hex[:8]}"
    create_kcl_table(dynamodb_client, table)
    # A KCL multi-stream application whose tracker named just this stream.
    dynamodb_client.put_item(TableName=table, Item=kcl_lease(f"{ident}:{shard}", seqs[1], 0, counter=2, stream=ident,
                                                             shard=shard))
    store = DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl")
    got = run_consumer(stream.name, stream.client, store)
    assert got == {(stream.name, shard): [b"m2", b"m3", b"m4"]}
    assert list(scan(dynamodb_client, table)) == [f"{ident}:{shard}"]  # no second, single-stream lease


def test_a_kcl_lease_at_timestamp_takes_its_time_from_the_configuration(
        stream_factory: Any, dynamodb_client: Any) -> None:
    from streamkit.errors import ShardFailedError

    stream = stream_factory(shards=1)
    for i in range(3):
        put(stream, b"t%d" % i, "0")
    (shard,) = shard_ids(stream)
    table = f"kcl-ts-{uuid.uuid4().hex[:8]}"
    create_kcl_table(dynamodb_client, table)
    # The KCL writes the AT_TIMESTAMP sentinel and keeps the time in its own configuration.
    dynamodb_client.put_item(TableName=table, Item=kcl_lease(shard, "AT_TIMESTAMP", 0, counter=1))
    store = DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl")
    with pytest.raises(ShardFailedError, match="initial_position"):
        Consumer(stream.name, lambda r: None, application_name="ts", checkpoint_store=store, client=stream.client,
                 config=ConsumerConfig(**FAST)).run(install_signal_handlers=False, stop_after_idle=2.0)  # type: ignore[arg-type]
    got: list[bytes] = []
    Consumer(stream.name, lambda r: got.append(r.data), application_name="ts", checkpoint_store=store,
             client=stream.client, config=ConsumerConfig(initial_position=time.time() - 3600, **FAST)).run(  # type: ignore[arg-type]
        install_signal_handlers=False, stop_after_idle=2.0)
    assert got == [b"t0", b"t1", b"t2"]


def test_a_stream_named_by_its_kcl_identifier_resumes_under_that_identifier(
        stream_factory: Any, dynamodb_client: Any, caplog: pytest.LogCaptureFixture) -> None:
    a, b = stream_factory(shards=1), stream_factory(shards=1)
    ident = kcl_identifier(a).rsplit(":", 1)[0] + ":1234"  # as a tracker named it: not its creation time
    seqs = [put(a, b"k%d" % i, "0") for i in range(4)]
    put(b, b"other", "0")
    (shard,) = shard_ids(a)
    table = f"kcl-ident-{uuid.uuid4().hex[:8]}"
    create_kcl_table(dynamodb_client, table)
    dynamodb_client.put_item(TableName=table, Item=kcl_lease(f"{ident}:{shard}", seqs[1], 0, counter=1, stream=ident,
                                                             shard=shard))
    store = DynamoDBCheckpointStore(table, client=dynamodb_client, layout="kcl")
    with caplog.at_level("WARNING", logger="streamkit.consumer"):
        got = run_consumer([a.name, b.name], a.client, DynamoDBCheckpointStore(table, client=dynamodb_client,
                                                                              layout="kcl"), app="ident")
    assert got[(a.name, shard)] == [b"k0", b"k1", b"k2", b"k3"]  # by name: new leases, from TRIM_HORIZON
    assert any(ident in r.getMessage() and "name it by that identifier" in r.getMessage() for r in caplog.records)
    put(a, b"k4", "0")
    got = run_consumer([ident, b.name], a.client, store, app="ident")
    assert got == {(a.name, shard): [b"k2", b"k3", b"k4"]}  # by identifier: after the KCL's checkpoint at k1
