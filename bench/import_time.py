"""Cold-import cost of what a Lambda function or a producer loads: ``python -X importtime``, median of 7.

Prints milliseconds (the sum of every module's own import time) and which heavy packages got loaded.
``--tree DIR`` measures another checkout (say, an older commit unpacked with ``git archive``) the same
way, in the same run, and prints the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

CASES = {
    "Lambda handler": "import streamkit; streamkit.kinesis_handler",
    "producer": "import producer",
    "consumer": "import streamkit.consumer",
}
HEAVY = ("boto3", "botocore", "rich", "matplotlib", "tenacity", "pytest")


def measure(tree: Path, code: str) -> tuple[float, list[str]]:
    runs = []
    loaded: set[str] = set()
    for _ in range(7):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=tree, capture_output=True,
                             text=True, check=True).stderr
        total = 0
        for line in err.splitlines():
            if line.startswith("import time:") and "self [us]" not in line:
                self_us, _cumulative, name = line[len("import time:"):].split("|")
                total += int(self_us)
                loaded.add(name.strip().split(".")[0])
        runs.append(total / 1000)
    return statistics.median(runs), [m for m in HEAVY if m in loaded]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", type=Path, default=None, help="another checkout to compare against")
    args = ap.parse_args()
    here = Path(__file__).resolve().parents[1]
    print(f"{'import':16} {'this tree ms':>12}  {'loads':30}" + ("  other ms  ratio  other loads" if args.tree else ""))
    for name, code in CASES.items():
        ms, heavy = measure(here, code)
        row = f"{name:16} {ms:12.1f}  {', '.join(heavy) or '-':30}"
        if args.tree:
            other, other_heavy = measure(args.tree, code)
            row += f"  {other:8.1f}  {other / ms:4.2f}x  {', '.join(other_heavy) or '-'}"
        print(row)


if __name__ == "__main__":
    main()
