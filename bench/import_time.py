"""Cold-import cost of what a Lambda function, a producer or a consumer loads, beside Powertools' batch import.

Each import is the wall time of a fresh ``python -c '<import>'`` minus a bare interpreter's
(``python -c pass``), median of --runs (default 11) runs, each in its own process, the processes of
every row interleaved so that none gets a quieter machine. Every library's bytecode is cached first (as
``pip install`` leaves it), in a temporary PYTHONPYCACHEPREFIX: compiling the source each time (what
PYTHONDONTWRITEBYTECODE=1 does to an editable checkout) would be measured otherwise. Also prints which heavy packages each
import loaded. ``--tree DIR`` measures another checkout (say, an older commit unpacked with
``git archive``) the same way, in the same run, and prints the ratio.

Run: .venv/bin/python bench/import_time.py [--runs 11] [--tree DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA = "from streamkit import kinesis_handler"
POWERTOOLS = "from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response"
CASES = {
    "Lambda handler": LAMBDA,
    "producer": "import producer",
    "consumer": "from streamkit.consumer import Consumer",
}
HEAVY = ("boto3", "botocore", "tenacity", "rich", "matplotlib", "pytest", "opentelemetry", "prometheus_client",
         "sqlite3", "hashlib", "urllib", "pydantic", "msgspec", "aws_lambda_powertools")


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(code: str, cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - t0


def loaded(code: str, cwd: Path) -> list[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"], cwd=cwd,
                         check=True, capture_output=True, text=True, env=ENV).stdout.split()
    tops = {m.split(".")[0] for m in out}
    return [m for m in HEAVY if m in tops]


def measure(rows: dict[str, tuple[str, Path]], runs: int) -> dict[str, float]:
    """Median ms over `runs` of each row's import, minus the median bare interpreter; rows interleaved."""
    times: dict[str, list[float]] = {name: [] for name in rows}
    bare: list[float] = []
    for code, cwd in rows.values():  # writes the bytecode caches
        wall(code, cwd)
    for _ in range(runs):
        bare.append(wall("pass", ROOT))
        for name, (code, cwd) in rows.items():
            times[name].append(wall(code, cwd))
    base = statistics.median(bare)
    return {name: (statistics.median(t) - base) * 1000 for name, t in times.items()} | {"(bare)": base * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--tree", type=Path, default=None, help="another checkout to compare against")
    args = ap.parse_args()
    if args.runs < 7:
        raise SystemExit("import_time: --runs must be at least 7")
    rows: dict[str, tuple[str, Path]] = {f"this: {name}": (code, ROOT) for name, code in CASES.items()}
    rows["Powertools batch"] = (POWERTOOLS, ROOT)
    if args.tree:
        rows |= {f"other: {name}": (code, args.tree.resolve()) for name, code in CASES.items()}
    with tempfile.TemporaryDirectory(prefix="import-time-pycache-") as cache:
        ENV["PYTHONPYCACHEPREFIX"] = cache
        ms = measure(rows, args.runs)
        listed = {name: loaded(code, cwd) for name, (code, cwd) in rows.items()}
    print(f"cold import, wall time of a fresh `python -c` minus a bare interpreter's ({ms['(bare)']:.1f} ms), "
          f"median of {args.runs} interleaved runs")
    print()
    print(f"{'import':<26} {'ms':>7}  loads")
    for name in rows:
        print(f"{name:<26} {ms[name]:>7.1f}  {', '.join(listed[name]) or '-'}")
    print()
    pt = ms["Powertools batch"]
    print(f"`{LAMBDA}`: {ms['this: Lambda handler']:.1f} ms, {ms['this: Lambda handler'] / pt:.2f}x Powertools' "
          f"batch import ({pt:.1f} ms: `{POWERTOOLS}`)")
    if args.tree:
        for name in CASES:
            print(f"{name}: this tree {ms['this: ' + name]:.1f} ms, other {ms['other: ' + name]:.1f} ms, "
                  f"{ms['this: ' + name] / ms['other: ' + name]:.2f}x")


if __name__ == "__main__":
    main()
