"""`streamkit dispatch`: the dispatcher under the emulator with local workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from producer import Producer
from streamkit.testing import StreamHandle
from tests.e2e.helpers import run_json

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.streamkit(shards=1)
def test_dispatch_delivers_every_record_once_in_key_order(kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    with Producer(kinesis_stream.name, client=kinesis_stream.client) as p:
        for i in range(300):
            p.put(b"%d" % i, f"k{i % 9}")
    out = tmp_path / "out.txt"
    summary = run_json("dispatch", "--stream", kinesis_stream.name, "--worker", "tests.e2e.handlers:collect",
                       "--mode", "per-key", "--lanes", "4", "--stop-after-idle", "1.5",
                       "--endpoint-url", kinesis_stream.stack.kinesis_endpoint,
                       env={"STREAMKIT_TEST_OUT": str(out), "PYTHONPATH": str(ROOT)})
    assert summary["delivered"] == 300 and summary["failed"] == 0
    per_key: dict[str, list[int]] = {}
    for line in out.read_text().splitlines():
        *_x, key, data = line.split()
        per_key.setdefault(key, []).append(int(data))
    assert sum(map(len, per_key.values())) == 300
    assert all(v == sorted(v) for v in per_key.values())
