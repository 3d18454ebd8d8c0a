"""kclpy processors unchanged under a streamkit Consumer, and MultiLangDaemon properties as its settings."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any, ClassVar

import pytest

from streamkit.aggregation import UserRecord, encode
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.checkpoints.lease_table import LeaseTableOptions
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.consumer.kclpy import KclProperties, kclpy_factory, read_properties
from streamkit.errors import ConfigurationError
from streamkit.testing import FakeKinesis

PROPERTIES = """
# The MultiLangDaemon's settings, as a kclpy application ships them
executableName = sample_kclpy_app.py
streamName = orders
applicationName = OrdersApp
AwsCredentialsProvider = DefaultCredentialsProvider
processingLanguage = python/3.11
initialPositionInStream = TRIM_HORIZON
regionName = eu-west-1
failoverTimeMillis = 15000
workerId = "host-1"
shardSyncIntervalMillis : 30000
maxRecords = 2500
idleTimeBetweenReadsInMillis = 500
taskBackoffTimeMillis = 250
maxLeasesForWorker = 6
gracefulLeaseHandoffTimeoutMillis = 20000
isGracefulLeaseHandoffEnabled = false
callProcessRecordsEvenForEmptyRecordList = false
metricsLevel = summary
someTypoedSetting = 1
! another comment style
kinesisEndpoint = http://127.0.0.1:4567/\\
kinesis
"""


def test_properties_map_onto_consumer_config() -> None:
    props = KclProperties.parse(read_properties(PROPERTIES))
    c = props.config
    assert (props.stream, props.application_name, props.table, props.region) == ("orders", "OrdersApp", "OrdersApp",
                                                                                 "eu-west-1")
    assert (c.lease_duration, c.shard_sync_interval, c.idle_poll_interval, c.backoff_base) == (15.0, 30.0, 0.5, 0.25)
    assert (c.max_records, c.max_leases_per_worker, c.handoff_timeout, c.worker_id) == (2500, 6, 20.0, "host-1")
    assert c.initial_position == "TRIM_HORIZON" and props.metrics_level == "SUMMARY" and c.graceful_handoff is False
    assert props.kinesis_endpoint == "http://127.0.0.1:4567/kinesis"  # a continued line
    assert props.ignored == ("someTypoedSetting",)  # named, not silently dropped


def test_properties_choose_the_arn_a_timestamp_and_the_table_name() -> None:
    props = KclProperties.parse({"streamName": "orders", "streamArn": "arn:aws:kinesis:eu-west-1:123456789012:stream/o2",
                                 "applicationName": "A", "tableName": "A-leases",
                                 "initialPositionInStream": "AT_TIMESTAMP",
                                 "initialPositionInStreamExtended": "1700000000"}, max_records=10)
    assert props.stream.endswith("stream/o2") and props.table == "A-leases"
    assert props.config.initial_position == 1_700_000_000.0 and props.config.max_records == 10


def test_lease_table_properties_harden_the_table_streamkit_creates_with_the_kcl_defaults() -> None:
    base = {"streamName": "s", "applicationName": "A"}
    assert KclProperties.parse(base).table_options == LeaseTableOptions()
    props = KclProperties.parse({**base, "leaseTableDeletionProtectionEnabled": "true", "leaseTablePitrEnabled": "TRUE",
                                 "initialLeaseTableReadCapacity": "20", "initialLeaseTableWriteCapacity": "15"})
    assert props.table_options == LeaseTableOptions(deletion_protection=True, point_in_time_recovery=True,
                                                    read_capacity=20, write_capacity=15)
    assert props.ignored == ()


@pytest.mark.parametrize(("props", "message"), [
    ({"streamName": "s", "applicationName": "A", "leaseTablePitrEnabled": "yes"},
     "leaseTablePitrEnabled='yes': must be true or false"),
    ({"applicationName": "A"}, "streamName"),
    ({"streamName": "s", "applicationName": "A", "failoverTimeMillis": "ten"}, "failoverTimeMillis"),
    ({"streamName": "s", "applicationName": "A", "initialPositionInStream": "AT_TIMESTAMP"}, "epoch seconds"),
    ({"streamName": "s", "applicationName": "A", "initialPositionInStream": "OLDEST"}, "TRIM_HORIZON"),
    ({"streamName": "s", "applicationName": "A", "retrievalMode": "POLLINGG"}, "retrievalMode='POLLINGG': use FANOUT or"),
    ({"streamName": "s", "applicationName": "A", "maxLeasesForWorker": "0"}, "maxLeasesForWorker=0: must be at least 1"),
    ({"streamName": "s", "applicationName": "A", "failoverTimeMillis": "0"}, "lease_duration must be positive"),
])
def test_bad_properties_are_one_clear_error(props: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        KclProperties.parse(props)


@pytest.mark.parametrize(("fields", "message"), [
    ({"lease_duration": 0}, "ConsumerConfig.lease_duration must be positive, got 0"),  # not blamed on renew_interval
    ({"max_leases_per_worker": 0}, "ConsumerConfig.max_leases_per_worker must be at least 1"),
])
def test_a_consumer_config_that_could_read_nothing_is_refused_naming_the_field(fields: dict[str, Any],
                                                                              message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        ConsumerConfig(**fields)


class Sample:
    """A kclpy v3 processor as kclpy's sample writes one: checkpoints by (sequence, sub-sequence)."""

    seen: ClassVar[list[tuple[str, bytes, int, str]]] = []
    inits: ClassVar[list[tuple[str, str | None]]] = []
    ended: ClassVar[list[str]] = []

    def initialize(self, initialize_input: Any) -> None:
        self.shard = initialize_input.shard_id
        Sample.inits.append((initialize_input.shard_id, initialize_input.sequence_number))

    def process_records(self, process_records_input: Any) -> None:
        largest = None
        for record in process_records_input.records:
            assert isinstance(record.approximate_arrival_timestamp, datetime)
            assert base64.b64decode(record.data) == record.binary_data
            Sample.seen.append((self.shard, record.binary_data, record.sub_sequence_number, record.partition_key))
            largest = (record.sequence_number, record.sub_sequence_number)
        if largest is not None:
            process_records_input.checkpointer.checkpoint(largest[0], largest[1])

    def lease_lost(self, lease_lost_input: Any) -> None:
        pass

    def shard_ended(self, shard_ended_input: Any) -> None:
        Sample.ended.append(self.shard)
        shard_ended_input.checkpointer.checkpoint()

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        shutdown_requested_input.checkpointer.checkpoint()


def test_a_kclpy_processor_runs_unchanged_and_checkpoints_like_kclpy() -> None:
    kinesis = FakeKinesis(shards=1, auto_create=False)
    kinesis.create_stream("s", 1)
    kinesis.put("s", b"plain-0", "k0")
    kinesis.put("s", encode([UserRecord(b"agg-%d" % i, f"a{i}") for i in range(3)]), "k1")
    kinesis.put("s", b"plain-1", "k2")
    store = MemoryCheckpointStore()
    Sample.seen, Sample.inits = [], []

    def run() -> None:
        Consumer("s", kclpy_factory(Sample), application_name="app", checkpoint_store=store, client=kinesis,
                 config=ConsumerConfig(idle_poll_interval=0.01, min_poll_interval=0.0)).run(
            install_signal_handlers=False, stop_after_idle=0.3)

    run()
    assert [(d, sub, k) for _s, d, sub, k in Sample.seen] == [
        (b"plain-0", 0, "k0"), (b"agg-0", 0, "a0"), (b"agg-1", 1, "a1"), (b"agg-2", 2, "a2"), (b"plain-1", 0, "k2")]
    (lease,) = store.list_leases("app/s")
    last = kinesis.records_of("s", lease.shard_id)[-1]["SequenceNumber"]
    assert lease.checkpoint.sequence_number == last  # by process_records' (sequence, 0), then shutdown_requested
    kinesis.put("s", b"plain-2", "k3")
    run()
    assert [d for _s, d, _sub, _k in Sample.seen][-1:] == [b"plain-2"] and len(Sample.seen) == 6
    assert Sample.inits[-1] == (lease.shard_id, last)  # resumed after the checkpoint


def test_a_kclpy_v2_processor_gets_shutdown_terminate_at_a_shard_end() -> None:
    calls: list[str] = []

    class V2:
        def initialize(self, initialize_input: Any) -> None: ...

        def process_records(self, process_records_input: Any) -> None:
            process_records_input.checkpointer.checkpoint()

        def shutdown(self, shutdown_input: Any) -> None:
            calls.append(shutdown_input.reason)
            if shutdown_input.reason == "TERMINATE":
                shutdown_input.checkpointer.checkpoint()

    kinesis = FakeKinesis(shards=1, auto_create=False)
    kinesis.create_stream("s", 1)
    kinesis.put("s", b"x", "k")
    (shard,) = kinesis.list_shards("s")
    kinesis.split_shard("s", shard.shard_id)
    store = MemoryCheckpointStore()
    Consumer("s", kclpy_factory(V2), application_name="app", checkpoint_store=store, client=kinesis,
             config=ConsumerConfig(idle_poll_interval=0.01, min_poll_interval=0.0)).run(
        install_signal_handlers=False, stop_after_idle=0.3)
    assert calls == ["TERMINATE"]
    assert store.get_lease("app/s", shard.shard_id).checkpoint.is_shard_end  # type: ignore[union-attr]


def test_a_checkpoint_by_sequence_number_alone_is_sub_sequence_0_as_in_the_kcl() -> None:
    """Naming only an aggregate's sequence number must not checkpoint past its later sub-records."""
    kinesis = FakeKinesis(shards=1, auto_create=False)
    kinesis.create_stream("s", 1)
    kinesis.put("s", encode([UserRecord(b"sub-%d" % i, "k") for i in range(3)]), "k")
    kinesis.put("s", b"after", "k")
    store = MemoryCheckpointStore()
    seen: list[bytes] = []

    class SequenceOnly:
        def initialize(self, initialize_input: Any) -> None: ...

        def process_records(self, process_records_input: Any) -> None:
            first = process_records_input.records[0]
            seen.append(first.binary_data)
            process_records_input.checkpointer.checkpoint(first.sequence_number)  # no sub-sequence
            raise Crash  # dies here: sub-records 1 and 2 were never processed

        def lease_lost(self, lease_lost_input: Any) -> None: ...

        def shard_ended(self, shard_ended_input: Any) -> None: ...

        def shutdown_requested(self, shutdown_requested_input: Any) -> None: ...

    consumer = Consumer("s", kclpy_factory(SequenceOnly), application_name="app", checkpoint_store=store,
                        client=kinesis, config=ConsumerConfig(idle_poll_interval=0.01, min_poll_interval=0.0))
    with pytest.raises(Crash):
        consumer.run(install_signal_handlers=False, stop_after_idle=0.3)
    (lease,) = store.list_leases("app/s")
    assert (lease.checkpoint.sub_sequence_number, seen) == (0, [b"sub-0"])
    got: list[bytes] = []
    Consumer("s", lambda r: got.append(r.data), application_name="app", checkpoint_store=store, client=kinesis,
             config=ConsumerConfig(idle_poll_interval=0.01, min_poll_interval=0.0)).run(
        install_signal_handlers=False, stop_after_idle=0.3)
    assert got == [b"sub-1", b"sub-2", b"after"]  # nothing after the checkpoint skipped


class Crash(BaseException):
    """The process dies: not an Exception, so the consumer's retries do not catch it."""
