"""`streamkit dispatch`: the dispatcher under the emulator with local workers."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import orjson
import pytest

from producer import Producer, ProducerConfig
from streamkit.testing import StreamHandle
from tests.e2e.helpers import run_cli, run_json

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.streamkit(shards=1)
def test_dispatch_delivers_every_record_once_in_key_order(kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    with Producer(kinesis_stream.name, client=kinesis_stream.client) as p:
        for i in range(300):
            p.put(b"%d" % i, f"k{i % 9}")
    out = tmp_path / "out.txt"
    summary = run_json("dispatch", "--stream", kinesis_stream.name, "--worker", "tests.e2e.handlers:collect",
                       "--mode", "per-key", "--lanes", "4", "--stop-after-idle", "1.5", "--starting-position", "TRIM-horizon",
                       "--endpoint-url", kinesis_stream.stack.kinesis_endpoint,
                       env={"STREAMKIT_TEST_OUT": str(out), "PYTHONPATH": str(ROOT)})
    assert summary["delivered"] == 300 and summary["failed"] == 0
    per_key: dict[str, list[int]] = {}
    for line in out.read_text().splitlines():
        *_x, key, data = line.split()
        per_key.setdefault(key, []).append(int(data))
    assert sum(map(len, per_key.values())) == 300
    assert all(v == sorted(v) for v in per_key.values())


def _fill(stream: StreamHandle, n: int) -> None:
    with Producer(stream.name, client=stream.client, config=ProducerConfig(aggregation=False)) as p:
        for i in range(n):
            p.put(b"%d" % i, f"k{i % 9}")


def _dispatch(stream: StreamHandle, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("dispatch", "--stream", stream.name, "--worker", "tests.e2e.handlers:poison_tried",
                   "--mode", "per-key", "--lanes", "4", "--batch-size", "100", "--max-attempts", "2",
                   "--stop-after-idle", "1.5", "--json", *extra, "--endpoint-url", stream.stack.kinesis_endpoint,
                   env={"STREAMKIT_TEST_OUT": str(out), "PYTHONPATH": str(ROOT)})


def _delivered(out: Path) -> list[int]:
    return [int(line.split()[-1]) for line in out.read_text().splitlines() if not line.startswith("tried")]


@pytest.mark.streamkit(shards=1)
def test_a_poison_record_stops_dispatch_at_it_and_a_rerun_with_on_failure_delivers_the_rest(
        kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    """Issue 24: per-key with one poison record made 94,531 deliveries of 40,000 and left 387 undelivered."""
    _fill(kinesis_stream, 300)
    out, dead, cp = tmp_path / "out.txt", tmp_path / "dead.jsonl", f"sqlite:{tmp_path / 'cp.db'}"
    first = _dispatch(kinesis_stream, out, "--checkpoint", cp)
    assert first.returncode == 1, first.stderr
    errors = [line for line in first.stderr.splitlines() if line.startswith("streamkit: error:")]
    assert len(errors) == 1 and "failed 2 time(s): stopped there" in errors[0] and "Traceback" not in first.stderr
    assert f"positions kept in {cp}" in first.stderr
    assert orjson.loads(first.stdout)["stopped"]
    tries = [line for line in out.read_text().splitlines() if line.startswith("tried")]
    assert len(tries) <= 100 + 1  # one batch, the poison record tried twice: no redelivery loop
    assert "tried 7" in tries and 7 not in _delivered(out)

    again = _dispatch(kinesis_stream, out, "--checkpoint", cp, "--on-failure", f"file:{dead}")
    assert again.returncode == 0, again.stderr
    poisoned = {i for i in range(300) if i % 10 == 7}
    letters = {int(base64.b64decode(orjson.loads(line)["data"])) for line in dead.read_text().splitlines()}
    assert letters == poisoned
    assert set(_delivered(out)) == set(range(300)) - poisoned  # every record delivered or handed over


@pytest.mark.streamkit(shards=1)
def test_dispatch_keeps_positions_so_a_rerun_delivers_only_what_is_new(kinesis_stream: StreamHandle,
                                                                       tmp_path: Path) -> None:
    _fill(kinesis_stream, 50)
    out, cp = tmp_path / "out.txt", f"sqlite:{tmp_path / 'cp.db'}"
    args = ("--checkpoint", cp, "--dead-letter", f"file:{tmp_path / 'dead.jsonl'}")  # the old name still works
    assert orjson.loads(_dispatch(kinesis_stream, out, *args).stdout)["delivered"] == 45
    _fill(kinesis_stream, 3)
    assert orjson.loads(_dispatch(kinesis_stream, out, *args).stdout)["delivered"] == 3


def test_dispatch_without_checkpoint_says_positions_are_in_memory() -> None:
    proc = run_cli("dispatch", "--stream", "nowhere", "--worker", "tests.e2e.handlers:collect",
                   "--stop-after-idle", "1", "--endpoint-url", "http://127.0.0.1:9", env={"PYTHONPATH": str(ROOT)})
    assert "positions are kept in memory only" in proc.stderr


def test_dispatch_refuses_a_starting_position_it_cannot_take_in_one_line() -> None:
    proc = run_cli("dispatch", "--stream", "nowhere", "--worker", "tests.e2e.handlers:collect",
                   "--starting-position", "at-sequence:1", "--endpoint-url", "http://127.0.0.1:9",
                   env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "streamkit: error: --starting-position 'at-sequence:1': at-sequence is not accepted here; "
        "use trim-horizon | latest | at-timestamp:ISO"]
