"""`streamkit lambda run --stream CONSUMER_ARN`: an enhanced fan-out source from the CLI, on kinesis-local
(the kinesis-mock engine), with the producer's default KPL aggregates: every user record delivered once, in
order per key (~20 s)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from producer import Producer
from streamkit.testing import StreamHandle
from tests.e2e.helpers import run_json
from tests.integration.helpers import active_consumer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EVERY_READING = '{"data": {"seq": [{"exists": true}]}}'


@pytest.mark.streamkit(backend="kinesis-mock", shards=2)
def test_lambda_run_from_a_consumer_arn_delivers_every_record_once_in_order_per_key(
        kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    sent: dict[str, list[str]] = defaultdict(list)
    with Producer(kinesis_stream.name, client=kinesis_stream.client) as p:  # aggregates, the default
        for i in range(300):
            key = f"s{i % 7}"
            sent[key].append(str(i))
            p.put_json({"sensor_id": key, "seq": i}, key)
    consumer = active_consumer(kinesis_stream, "lambda-cli")
    out = tmp_path / "out.txt"
    env = {"STREAMKIT_TEST_OUT": str(out), "STREAMKIT_TEST_DEAD": str(tmp_path / "dead.jsonl"),
           "PYTHONPATH": str(ROOT)}
    # A filter every reading matches: from an enhanced fan-out source AWS filters inside KPL aggregates and
    # delivers them; a polled source would filter every aggregate out. So all 300 back means SubscribeToShard.
    stats = run_json("lambda", "run", "--stream", consumer, "--handler", "tests.e2e.handlers:lambda_handler",
                     "--filter", EVERY_READING, "--starting-position", "trim-horizon", "--batch-size", "20",
                     "--stop-after-idle", "3", "--endpoint-url", kinesis_stream.stack.kinesis_endpoint, env=env)
    got: dict[str, list[str]] = defaultdict(list)
    for line in out.read_text().splitlines():
        key, seq, _temp = line.split()
        got[key].append(seq)
    assert sum(map(len, got.values())) == 300, "a record lost or delivered twice"
    assert got == sent  # once each, in the order written per key
    assert stats["records_filtered_out"] == 0 and stats["records_discarded"] == 0 and stats["function_errors"] == 0
