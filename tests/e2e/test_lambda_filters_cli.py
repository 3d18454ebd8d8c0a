"""`streamkit lambda run --filter` and `--starting-position at-timestamp:ISO` against the local stack (~15 s)."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from producer import Producer, ProducerConfig
from streamkit.checkpoints import SqliteCheckpointStore
from streamkit.testing import StreamHandle
from tests.e2e.helpers import run_cli, run_json

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
HOT = '{"data": {"temp_c": [{"numeric": [">", 30]}]}}'


def _env(tmp_path: Path) -> dict[str, str]:
    return {"STREAMKIT_TEST_OUT": str(tmp_path / "out.txt"), "STREAMKIT_TEST_DEAD": str(tmp_path / "dead.jsonl"),
            "PYTHONPATH": str(ROOT)}


def _put_plain(stream: StreamHandle, readings: list[dict[str, object]]) -> dict[str, str]:
    """Plain (not aggregated) records; the last sequence number per shard."""
    last: dict[str, str] = {}
    with Producer(stream.name, client=stream.client, config=ProducerConfig(aggregation=False)) as p:
        futures = [p.put_json(r, str(r["sensor_id"])) for r in readings]
    for f in futures:
        res = f.result()
        if res.shard_id not in last or int(res.sequence_number) > int(last[res.shard_id]):
            last[res.shard_id] = res.sequence_number
    return last


@pytest.mark.streamkit(shards=2)
def test_a_data_filter_delivers_exactly_the_matching_readings_and_the_position_passes_the_rest(
        kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    readings: list[dict[str, object]] = [{"sensor_id": f"s{i % 7}", "seq": i, "temp_c": (i * 37) % 61}
                                         for i in range(1000)]
    last = _put_plain(kinesis_stream, readings)
    db = tmp_path / "esm.db"
    stats = run_json("lambda", "run", "--stream", kinesis_stream.name, "--handler", "tests.e2e.handlers:lambda_handler",
                     "--batch-size", "100", "--filter", HOT, "--checkpoint", f"sqlite:{db}", "--stop-after-idle", "2",
                     "--endpoint-url", kinesis_stream.stack.kinesis_endpoint, env=_env(tmp_path))
    hot = sorted(int(r["seq"]) for r in readings if int(r["temp_c"]) > 30)  # type: ignore[call-overload]
    delivered = sorted(int(line.split()[1]) for line in (tmp_path / "out.txt").read_text().splitlines())
    assert delivered == hot and 0 < len(hot) < 1000
    assert stats["records_polled"] == 1000 and stats["records_filtered_out"] == 1000 - len(hot)
    store = SqliteCheckpointStore(db)
    for shard_id, seq in last.items():
        lease = store.get_lease(f"esm:streamkit-local-function:{kinesis_stream.name}", shard_id)
        assert lease is not None and lease.checkpoint.sequence_number == seq  # past the filtered-out tail too


@pytest.mark.streamkit(shards=1)
def test_at_timestamp_starts_at_the_first_record_written_at_or_after_it(kinesis_stream: StreamHandle,
                                                                         tmp_path: Path) -> None:
    _put_plain(kinesis_stream, [{"sensor_id": "s1", "seq": i, "temp_c": 1} for i in range(5)])
    start = time.time() + 0.05
    while time.time() < start + 0.01:  # past the first records' arrival by more than the timestamps' resolution
        time.sleep(0.01)
    _put_plain(kinesis_stream, [{"sensor_id": "s1", "seq": i, "temp_c": 1} for i in range(5, 9)])
    iso = dt.datetime.fromtimestamp(start, dt.UTC).isoformat()
    run_json("lambda", "run", "--stream", kinesis_stream.name, "--handler", "tests.e2e.handlers:lambda_handler",
             "--starting-position", f"at-timestamp:{iso}", "--stop-after-idle", "1",
             "--endpoint-url", kinesis_stream.stack.kinesis_endpoint, env=_env(tmp_path))
    delivered = [int(line.split()[1]) for line in (tmp_path / "out.txt").read_text().splitlines()]
    assert delivered == [5, 6, 7, 8]


@pytest.mark.parametrize(("args", "said"), [
    (("--filter", '{"data": {"t": [{"numeric": [">"]}]}}'), "invalid filter pattern"),
    (("--filter", '{"partitionKey": ["a"]}'), 'filters on the "data" key only'),
    (tuple(a for _ in range(6) for a in ("--filter", HOT)), "at most 5 filter patterns"),
    (("--starting-position", "at-timestamp:yesterday"), "--starting-position"),
    (("--starting-position", "at-sequence:1"), "not accepted here"),
])
def test_a_bad_filter_or_position_is_one_line_and_exit_2(args: tuple[str, ...], said: str) -> None:
    proc = run_cli("lambda", "run", "--stream", "s", "--handler", "tests.e2e.handlers:lambda_handler", *args,
                   "--endpoint-url", "http://127.0.0.1:9", env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


@pytest.mark.streamkit(shards=2)
def test_a_short_tumbling_window_gives_one_aggregate_per_shard_per_window_as_computed_directly(
        kinesis_stream: StreamHandle, tmp_path: Path) -> None:
    readings: list[dict[str, object]] = [{"sensor_id": f"s{i % 5}", "seq": i, "temp_c": i % 11} for i in range(60)]
    _put_plain(kinesis_stream, readings)
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    client = kinesis_stream.client
    for shard in client.list_shards(StreamName=kinesis_stream.name)["Shards"]:
        it = client.get_shard_iterator(StreamName=kinesis_stream.name, ShardId=shard["ShardId"],
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for r in client.get_records(ShardIterator=it, Limit=1000)["Records"]:
            ts = r["ApproximateArrivalTimestamp"].timestamp()
            start = dt.datetime.fromtimestamp(ts - ts % 2, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            n, total = expected.get((shard["ShardId"], start), (0, 0))
            expected[(shard["ShardId"], start)] = (n + 1, total + json.loads(r["Data"])["temp_c"])
    stats = run_json("lambda", "run", "--stream", kinesis_stream.name, "--handler", "tests.e2e.handlers:window_handler",
                     "--tumbling-window", "2", "--stop-after-idle", "3",
                     "--endpoint-url", kinesis_stream.stack.kinesis_endpoint, env=_env(tmp_path))
    lines = [json.loads(line) for line in (tmp_path / "out.txt").read_text().splitlines()]
    got = {(w["shard"], w["start"]): (w["n"], w["sum"]) for w in lines}
    assert len(got) == len(lines) and got == expected and stats["windows_closed"] == len(expected)
