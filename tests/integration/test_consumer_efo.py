"""Enhanced fan-out against kinesis-local, which omits the initial-response event botocore expects."""

from __future__ import annotations

from collections import defaultdict

import pytest

from producer import Producer, ProducerConfig
from streamkit.checkpoints import MemoryCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.records import StreamRecord
from streamkit.testing import StreamHandle

pytestmark = pytest.mark.integration


@pytest.mark.streamkit(backend="kinesis-mock", shards=2)
def test_enhanced_fan_out_reads_every_record_in_order(kinesis_stream: StreamHandle) -> None:
    sent: dict[str, list[bytes]] = defaultdict(list)
    with Producer(kinesis_stream.name, client=kinesis_stream.client, config=ProducerConfig(aggregation_max_size=2048)) as p:
        for i in range(500):
            sent[f"k{i % 7}"].append(b"%d" % i)
            p.put(b"%d" % i, f"k{i % 7}")
    got: dict[str, list[bytes]] = defaultdict(list)
    records: list[StreamRecord] = []

    def handle(r: StreamRecord) -> None:
        got[r.partition_key].append(r.data)
        records.append(r)

    Consumer(kinesis_stream.name, handle, application_name="efo-test", checkpoint_store=MemoryCheckpointStore(),
             client=kinesis_stream.client,
             config=ConsumerConfig(enhanced_fan_out=True, lease_duration=1.5)).run(
        install_signal_handlers=False, stop_after_idle=3.0)
    assert got == sent
    assert all(r.sub_sequence_number is not None for r in records)
    consumers = kinesis_stream.client.list_stream_consumers(StreamARN=kinesis_stream.arn)["Consumers"]
    assert [c["ConsumerName"] for c in consumers] == ["efo-test"]
