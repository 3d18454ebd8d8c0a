"""`streamkit tail --follow`: how soon a record put shows, against a hand-written polling loop.

One run, one kinesalite of the local stack, one 1-shard stream. Two readers follow the shard at once:
the anchor, a boto3 loop doing what a script (or Lambda's event source mapping, "each shard polled
about once per second") does: GetRecords, print, sleep 1 s; and `streamkit tail STREAM --follow --json`
as a child process. N records are put 0.37 s apart, each carrying its put time; each reader's
put-to-printed delay is measured where its line is read. Prints the percentiles and the ratios
(the anchor's / tail's: above 1, tail is quicker).

Run: .venv/bin/python bench/tail_follow.py [--records 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamkit import kinesis as sk_kinesis
from streamkit.aws.clients import aws_client
from streamkit.local import stack as local_stack

STREAM = "tail-follow-bench"


def anchor(client: object, delays: list[float], stop: threading.Event) -> None:
    c: Any = client
    shard = c.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
    it = c.get_shard_iterator(StreamName=STREAM, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    while not stop.is_set():
        out = c.get_records(ShardIterator=it, Limit=1000)
        now = time.time()
        delays.extend(now - json.loads(r["Data"])["put_at"] for r in out["Records"])
        it = out["NextShardIterator"]
        stop.wait(1.0)


def follower(endpoint: str, delays: list[float], ready: threading.Event) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "streamkit.cli.main", "tail", STREAM, "--follow", "--json",
                             "--endpoint-url", endpoint], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            rec = json.loads(line)
            if rec["body"].get("warmup"):
                ready.set()
                continue
            delays.append(time.time() - rec["body"]["put_at"])

    threading.Thread(target=read, daemon=True).start()
    return proc


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tail-bench-") as tmp:
        stack = local_stack.up(data_dir=Path(tmp), persist=False)
        try:
            c = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint)
            c.create_stream(StreamName=STREAM, ShardCount=1)
            sk_kinesis.wait_for_stream(c, STREAM)
            ours: list[float] = []
            theirs: list[float] = []
            ready = threading.Event()
            stop = threading.Event()
            proc = follower(stack.kinesis_endpoint, ours, ready)
            while not ready.is_set():  # tail is reading once a warm-up record shows
                c.put_record(StreamName=STREAM, Data=json.dumps({"warmup": True}).encode(), PartitionKey="w")
                ready.wait(0.5)
            loop = threading.Thread(target=anchor, args=(c, theirs, stop), daemon=True)
            loop.start()
            time.sleep(1.0)
            for i in range(args.records):
                c.put_record(StreamName=STREAM, Data=json.dumps({"i": i, "put_at": time.time()}).encode(),
                             PartitionKey=f"k{i}")
                time.sleep(0.37)
            deadline = time.time() + 10
            while (len(ours) < args.records or len(theirs) < args.records) and time.time() < deadline:
                time.sleep(0.1)
            stop.set()
            proc.terminate()
            proc.wait(20)
        finally:
            local_stack.down(data_dir=Path(tmp))
    if len(ours) < args.records or len(theirs) < args.records:
        print(f"incomplete: tail saw {len(ours)}, the loop {len(theirs)} of {args.records}")
        return 1
    print(f"{args.records} records put 0.37 s apart; put -> printed, seconds")
    print(f"{'':26}{'p50':>8}{'p95':>8}{'max':>8}")
    for name, d in (("boto3 loop, 1 poll/s", theirs), ("streamkit tail --follow", ours)):
        print(f"{name:26}{statistics.median(d):8.3f}{pct(d, 0.95):8.3f}{max(d):8.3f}")
    print(f"ratio (loop / tail): p50 {statistics.median(theirs) / statistics.median(ours):.2f}x, "
          f"p95 {pct(theirs, 0.95) / pct(ours, 0.95):.2f}x; tail max {max(ours):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
