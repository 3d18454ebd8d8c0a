"""The README's examples run as written: every ```python block and every `streamkit` command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamkit.local import stack as local_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```(python|sh)\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer((ROOT / "README.md").read_text())]


def commands(sh: str) -> list[str]:
    """The `streamkit` command lines of a shell block, continuations joined, comments dropped."""
    joined = sh.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.split("  #", 1)[0].strip()
        if ".venv/bin/streamkit" in line:
            out.append(line)
    return out


def test_readme_examples_run_as_written(tmp_path: Path) -> None:
    # The tour writes its files (dead letters, checkpoint databases) into the folder it runs in, as a
    # user's would: here a fresh one holding links to .venv and tests/, so nothing lands in the
    # repository or in /tmp, and the user's own tour after `make test` starts from nothing.
    work = tmp_path / "tour"
    work.mkdir()
    for name in (".venv", "tests"):
        (work / name).symlink_to(ROOT / name)
    before = set(os.listdir(ROOT))
    stack = local_stack.up(data_dir=tmp_path / "stack", persist=False)
    env = {**os.environ, "AWS_ENDPOINT_URL_KINESIS": stack.kinesis_endpoint,
           "AWS_ENDPOINT_URL_DYNAMODB": stack.dynamodb_endpoint, "AWS_ACCESS_KEY_ID": "local",
           "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1", "PYTHONPATH": str(ROOT),
           "STREAMKIT_LOCAL_DIR": str(tmp_path / "readme-local")}
    ran = {"python": 0, "sh": 0}
    try:
        for kind, code in blocks():
            if kind == "python":
                proc = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                                      timeout=300, check=False)
                assert proc.returncode == 0, f"README python block failed:\n{code}\n{proc.stderr[-3000:]}"
                ran["python"] += 1
                continue
            for cmd in commands(code):
                proc = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True,
                                      timeout=300, check=False)
                assert proc.returncode == 0, f"README command failed: {cmd}\n{proc.stderr[-3000:]}"
                ran["sh"] += 1
                if " tail " in cmd:  # what the README says each prints: five decoded readings, one sensor's three
                    shown = proc.stdout.splitlines()
                    assert len(shown) == (5 if "--limit 5" in cmd else 3), (cmd, proc.stdout, proc.stderr)
                    if "--json" in cmd:
                        assert all('"sensor_id"' in line and '"body_kind":"json"' in line for line in shown), shown
                    else:
                        assert all("  sensor-00007  " in line for line in shown), shown
    finally:
        subprocess.run([sys.executable, "-m", "streamkit.cli.main", "local", "down"], env=env, check=False,
                       capture_output=True)
        local_stack.down(data_dir=tmp_path / "stack")
    assert ran["python"] >= 7 and ran["sh"] >= 15, ran
    assert set(os.listdir(ROOT)) == before, "the tour wrote into the repository"
    letters = (work / "dead-letters.jsonl").read_text().splitlines()
    assert letters and all('"s-1"' in line for line in letters)  # the wrapper's poison readings, replayed after
    assert oct((work / "dead-letters.jsonl").stat().st_mode & 0o777) == "0o600"
