"""The 2025-26 stream settings end to end, through the limit proxy (which emulates them, with AWS's request
and error shapes, in front of kinesalite): large records, AUTO distribution with keyless records, ARNs."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from producer import FailedRecord, Producer, ProducerConfig
from streamkit import kinesis
from streamkit.aggregation import is_aggregated
from streamkit.aws_lambda import kinesis_handler
from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.errors import ValidationError
from streamkit.records import StreamRecord
from streamkit.testing import ProxyHandle

pytestmark = pytest.mark.integration
FAST = dict(record_max_buffered_time=0.01, backoff_base=0.01, backoff_max=0.1)


def create(client: Any, name: str, **params: Any) -> str:
    client.create_stream(StreamName=name, **params)
    return kinesis.wait_for_stream(client, name).arn


def consume(client: Any, stream: str) -> list[StreamRecord]:
    got: list[StreamRecord] = []
    Consumer(stream, got.append, application_name="t", checkpoint_store=MemoryCheckpointStore(), client=client,
             config=ConsumerConfig(initial_position="TRIM_HORIZON")).run(install_signal_handlers=False,
                                                                           stop_after_idle=1.5)
    return got


@pytest.fixture
def proxy(kinesis_proxy: Callable[..., ProxyHandle]) -> ProxyHandle:
    return kinesis_proxy(limit_scale=10.0)  # limits on, generous: these tests are about the settings


def test_create_describe_and_update_speak_aws_shapes(proxy: ProxyHandle) -> None:
    c = proxy.client()
    arn = create(c, "today-shapes", StreamModeDetails={"StreamMode": "ON_DEMAND"}, MaxRecordSizeInKiB=10240,
                 RecordDistributionStrategy="AUTO")
    s = c.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"]["StreamMode"] == "ON_DEMAND" and s["OpenShardCount"] == 4
    assert s["MaxRecordSizeInKiB"] == 10240 and s["RecordDistributionStrategy"] == "AUTO"
    c.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=2048)
    c.update_stream_record_distribution_strategy(StreamARN=arn, RecordDistributionStrategy="USER_PARTITION_KEY")
    c.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"}, WarmThroughputMiBps=100)
    s = c.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]
    assert (s["MaxRecordSizeInKiB"], s["RecordDistributionStrategy"], s["WarmThroughput"]["CurrentMiBps"]) == \
        (2048, "USER_PARTITION_KEY", 100)
    with pytest.raises(ClientError, match="InvalidArgumentException"):
        c.create_stream(StreamName="today-auto-provisioned", ShardCount=1, RecordDistributionStrategy="AUTO")
    with pytest.raises(ClientError, match="ValidationException"):
        c.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=20000)


def test_a_5_mib_record_on_a_10_mib_stream_is_read_back_intact_and_2_mib_is_refused_on_a_1_mib_stream(
        proxy: ProxyHandle) -> None:
    c = proxy.client()
    create(c, "today-large", ShardCount=1, MaxRecordSizeInKiB=10240)
    create(c, "today-small", ShardCount=1)
    big = bytes(range(256)) * (5 * 1024 * 4)
    with Producer("today-large", client=c, config=ProducerConfig(**FAST)) as p:  # type: ignore[arg-type]
        p.put(big, "k").result(timeout=30)
    assert [r.data for r in consume(c, "today-large")] == [big]
    with Producer("today-small", client=c, config=ProducerConfig(**FAST)) as p:  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="1048576-byte record limit"):
            p.put(b"x" * (2 * 1024 * 1024), "k")
        assert p.metrics()["put_calls"] == 0  # refused before the network
    with pytest.raises(ClientError, match="ValidationException"):  # and the proxy refuses it as AWS does
        c.put_record(StreamName="today-small", Data=b"x" * (1024 * 1024 + 10), PartitionKey="k")


def test_on_an_auto_stream_one_key_spreads_nothing_is_aggregated_and_keyless_records_round_trip(
        proxy: ProxyHandle) -> None:
    c = proxy.client()
    create(c, "today-auto", StreamModeDetails={"StreamMode": "ON_DEMAND"}, RecordDistributionStrategy="AUTO")
    with Producer("today-auto", client=c, config=ProducerConfig(**FAST)) as p:  # type: ignore[arg-type]
        results = [p.put(b"%d" % i, "one-key") for i in range(2000)]
        keyless = p.put(b"keyless", None)
    assert len({f.result(timeout=30).shard_id for f in results}) >= 2
    got = consume(c, "today-auto")
    assert len(got) == 2001 and not any(is_aggregated(r.data) for r in got)
    (k,) = [r for r in got if r.data == b"keyless"]
    assert k.partition_key is None and keyless.result().sequence_number == k.sequence_number
    # The Lambda wrapper under the emulator: the event has no partitionKey for it, the record None.
    seen: list[StreamRecord] = []
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        events.append(event)
        return kinesis_handler(lambda r: seen.append(r) if r.data == b"keyless" else None)(event, context)

    EventSourceMapping("today-auto", handler, client=c, config=EsmConfig(
        starting_position="TRIM_HORIZON", batch_size=1000, parallelization_factor=2)).run(stop_after_idle=1.5)
    assert len(seen) == 1 and seen[0].partition_key is None
    (raw,) = [r for e in events for r in e["Records"] if base64.b64decode(r["kinesis"]["data"]) == b"keyless"]
    assert "partitionKey" not in raw["kinesis"]


def test_a_switch_from_auto_to_user_partition_key_mid_run_loses_nothing(proxy: ProxyHandle) -> None:
    c = proxy.client()
    arn = create(c, "today-switch", StreamModeDetails={"StreamMode": "ON_DEMAND"}, RecordDistributionStrategy="AUTO")
    failed: list[FailedRecord] = []
    with Producer("today-switch", client=c, config=ProducerConfig(**FAST, on_failure=failed.append)) as p:  # type: ignore[arg-type]
        first = [p.put(b"a%d" % i, f"k{i % 5}") for i in range(300)]
        p.flush()
        c.update_stream_record_distribution_strategy(StreamARN=arn, RecordDistributionStrategy="USER_PARTITION_KEY")
        second = [p.put(b"b%d" % i, f"k{i % 5}") for i in range(300)] + [p.put(b"no key", None)]
    ok = [f for f in first + second if f.exception() is None]
    assert len(ok) == 600 and [r.data for r in failed] == [b"no key"]
    got = {r.data for r in consume(c, "today-switch")}
    assert got >= {b"a%d" % i for i in range(300)} | {b"b%d" % i for i in range(300)}


def test_producer_and_consumer_given_an_arn_work(proxy: ProxyHandle) -> None:
    c = proxy.client()
    arn = create(c, "today-arn", ShardCount=2)
    with Producer(arn, client=c, config=ProducerConfig(**FAST)) as p:  # type: ignore[arg-type]
        for i in range(100):
            p.put(b"%d" % i, f"k{i}")
    got = consume(c, arn)
    assert sorted(int(r.data) for r in got) == list(range(100))
