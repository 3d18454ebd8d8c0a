"""An event source mapping whose source is an enhanced fan-out consumer (SubscribeToShard), on kinesis-local
(the kinesis-mock engine): every record delivered once per run, in order per key (~15 s)."""

from __future__ import annotations

import base64
import threading
from collections import defaultdict
from typing import Any

import pytest

from producer import Producer, ProducerConfig
from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
from streamkit.testing import StreamHandle
from tests.integration.helpers import active_consumer

pytestmark = pytest.mark.integration


@pytest.mark.streamkit(backend="kinesis-mock", shards=2)
def test_an_efo_sourced_mapping_delivers_every_record_once_in_order_per_key(kinesis_stream: StreamHandle) -> None:
    sent: dict[str, list[bytes]] = defaultdict(list)
    with Producer(kinesis_stream.name, client=kinesis_stream.client, config=ProducerConfig(aggregation=False)) as p:
        for i in range(300):
            sent[f"k{i % 7}"].append(b"%d" % i)
            p.put(b"%d" % i, f"k{i % 7}")
    got: dict[str, list[bytes]] = defaultdict(list)
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> None:
        with lock:
            for r in event["Records"]:
                got[r["kinesis"]["partitionKey"]].append(base64.b64decode(r["kinesis"]["data"]))

    consumer = active_consumer(kinesis_stream, "esm-efo")
    stats = EventSourceMapping(consumer, handler, client=kinesis_stream.client,
                               config=EsmConfig(starting_position="TRIM_HORIZON", batch_size=50)).run(stop_after_idle=3)
    assert got == sent and stats.records_succeeded == 300
