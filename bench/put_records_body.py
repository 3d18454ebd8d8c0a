"""CPU to serialise one PutRecords request: botocore's serializer vs the producer's body writer.

Both run in this process on the same parameters (one 1 MiB aggregate, and 500 plain 100-byte
records), through a botocore client's `_serializer.serialize_to_request`, parameter validation
included; nothing is sent. Prints milliseconds per request and the ratio.

Run: .venv/bin/python bench/put_records_body.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from producer import wire


def client() -> Any:
    return boto3.session.Session().client("kinesis", region_name="us-east-1", endpoint_url="http://127.0.0.1:1",
                                          aws_access_key_id="x", aws_secret_access_key="x")


def best_ms(fn: Any, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()
    stock, fast = client(), client()
    assert wire.install(fast)
    op = stock.meta.service_model.operation_model("PutRecords")
    cases = {
        "one 1 MiB aggregate": {"StreamName": "s", "Records": [
            {"Data": os.urandom(1024 * 1024 - 100), "PartitionKey": "sensor-0001", "ExplicitHashKey": str(2**127)}]},
        "500 records of 100 B": {"StreamName": "s", "Records": [
            {"Data": os.urandom(100), "PartitionKey": f"sensor-{i:04d}"} for i in range(500)]},
    }
    print(f"{'request':<24} {'botocore ms':>12} {'streamkit ms':>13} {'ratio':>7}")
    for name, params in cases.items():
        theirs = best_ms(lambda p=params: stock._serializer.serialize_to_request(p, op), args.repeat)
        ours = best_ms(lambda p=params: fast._serializer.serialize_to_request(p, op), args.repeat)
        print(f"{name:<24} {theirs:>12.3f} {ours:>13.3f} {theirs / ours:>6.1f}x")
    print("(best of", args.repeat, "each; the bodies are checked equal as JSON by tests/unit/test_wire.py)")


if __name__ == "__main__":
    main()
