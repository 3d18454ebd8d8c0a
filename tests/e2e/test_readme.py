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
    # The examples write to fixed /tmp paths; a checkpoint left by an earlier run would point into a
    # stream that no longer exists, so start from nothing.
    for leftover in re.findall(r"/tmp/[\w.-]+", (ROOT / "README.md").read_text()):
        Path(leftover).unlink(missing_ok=True)
    stack = local_stack.up(data_dir=tmp_path / "stack", persist=False)
    env = {**os.environ, "AWS_ENDPOINT_URL_KINESIS": stack.kinesis_endpoint,
           "AWS_ENDPOINT_URL_DYNAMODB": stack.dynamodb_endpoint, "AWS_ACCESS_KEY_ID": "local",
           "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1", "PYTHONPATH": str(ROOT),
           "STREAMKIT_LOCAL_DIR": str(tmp_path / "readme-local"), "STREAMKIT_TEST_OUT": str(tmp_path / "out.txt")}
    ran = {"python": 0, "sh": 0}
    try:
        for kind, code in blocks():
            if kind == "python":
                proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                                      timeout=300, check=False)
                assert proc.returncode == 0, f"README python block failed:\n{code}\n{proc.stderr[-3000:]}"
                ran["python"] += 1
                continue
            for cmd in commands(code):
                proc = subprocess.run(["bash", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True,
                                      timeout=300, check=False)
                assert proc.returncode == 0, f"README command failed: {cmd}\n{proc.stderr[-3000:]}"
                ran["sh"] += 1
    finally:
        subprocess.run([sys.executable, "-m", "streamkit.cli.main", "local", "down"], env=env, check=False,
                       capture_output=True)
        local_stack.down(data_dir=tmp_path / "stack")
    assert ran["python"] >= 7 and ran["sh"] >= 15, ran
