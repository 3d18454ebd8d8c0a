"""The producer's aggregated throughput now against an earlier commit, alternating runs on one machine.

A change to the producer must not slow its aggregated rows down. This checks out --base into a
temporary folder (git archive), then runs bench/producer.py's streamkit rows (`send()` and `put()`,
100k readings of 100 B, 4 fresh shards on local kinesalite, every reading read back) from each tree in
turn, each tree in its own process, --rounds times, alternating so that neither gets a quieter
machine. Prints each tree's best and median rates and the ratio of this tree to the base.

Run: .venv/bin/python bench/producer_regression.py --base COMMIT [--rounds 3] [--readings 100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Run inside each tree: that tree's bench/producer.py functions and that tree's packages.
CHILD = r"""
import importlib.util, json, os, sys, tempfile
from pathlib import Path
tree, readings, runs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, str(tree))
os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
spec = importlib.util.spec_from_file_location("tree_bench", tree / "bench" / "producer.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
import producer
assert Path(producer.__file__).resolve().is_relative_to(tree.resolve()), producer.__file__
from streamkit import kinesis as sk_kinesis
from streamkit.local import stack as local_stack
try:
    from streamkit.aws.clients import aws_client
except ImportError:  # older trees
    from streamkit.clients import aws_client
data = bench.readings(readings)
out = {"send": [], "put": []}
with tempfile.TemporaryDirectory() as tmp:
    stack = local_stack.up(data_dir=Path(tmp), persist=False)
    try:
        client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=0, max_pool_connections=32)
        n = 0
        for _ in range(runs):
            for method in ("send", "put"):
                stream = f"regress-{n}"
                n += 1
                sk_kinesis.create_stream(client, stream, bench.SHARDS)
                r = bench.run_streamkit(client, stream, data, bench.STREAMKIT_CONFIG, method)
                _kin, users = bench.count_stream(client, stream)
                assert users == len(data), (method, users)
                out[method].append(len(data) / r["seconds"])
    finally:
        local_stack.down(data_dir=Path(tmp))
print(json.dumps(out))
"""


def run_tree(tree: Path, readings: int, runs: int) -> dict[str, list[float]]:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(readings), str(runs)], cwd=tree,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench in {tree} failed:\n{proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the commit to compare with")
    ap.add_argument("--rounds", type=int, default=3, help="processes per tree, alternating")
    ap.add_argument("--runs", type=int, default=2, help="runs of each row per process")
    ap.add_argument("--readings", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-regression-") as tmp:
        base = Path(tmp) / "base"
        base.mkdir()
        archive = subprocess.run(["git", "archive", args.base], cwd=ROOT, capture_output=True, check=True).stdout
        archive_path = Path(tmp) / "base.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(base, filter="data")
        rates: dict[str, dict[str, list[float]]] = {"base": {"send": [], "put": []}, "this": {"send": [], "put": []}}
        for _ in range(args.rounds):
            for name, tree in (("base", base), ("this", ROOT)):
                for method, got in run_tree(tree, args.readings, args.runs).items():
                    rates[name][method].extend(got)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False).stdout.strip()
    print(f"producer, aggregated, {args.readings:,} readings of 100 B, 4 shards, local kinesalite; "
          f"{args.rounds} alternating processes per tree x {args.runs} runs of each row")
    print(f"{'row':<8} {'base ' + args.base:>22} {'this tree ' + head:>22} {'best ratio':>11} {'median ratio':>13}")
    for method in ("send", "put"):
        b, t = rates["base"][method], rates["this"][method]
        print(f"{method + '()':<8} {max(b):>14,.0f} best {max(t):>14,.0f} best {max(t) / max(b):>10.2f}x "
              f"{statistics.median(t) / statistics.median(b):>12.2f}x")
        print(f"{'':<8} {statistics.median(b):>12,.0f} median {statistics.median(t):>12,.0f} median")


if __name__ == "__main__":
    main()
