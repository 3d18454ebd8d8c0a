"""Concurrent installs of the local servers into one cache: one `npm ci` runs, the others wait for it, and
the cache holds a complete install or none (issue 24: two `make servers` at once corrupted it).

A fake `npm` on PATH stands in for the registry (it writes the three entry points slowly and logs each
run). About 2 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FAKE_NPM = """#!/bin/sh
echo run >> "$NPM_LOG"
[ -n "$NPM_FAIL" ] && { echo "npm ERR! simulated" >&2; exit 1; }
for p in kinesalite/cli.js kinesis-local/main.js dynalite/cli.js; do
  mkdir -p "node_modules/$(dirname $p)"; sleep 0.3; echo "// fake" > "node_modules/$p"
done
"""
INSTALL = "from streamkit.local.npm import ensure_installed; print(ensure_installed().root)"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM)
    npm.chmod(0o755)
    node = bin_dir / "node"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STREAMKIT_CACHE_DIR": str(tmp_path / "cache"),
            "NPM_LOG": str(tmp_path / "npm.log"), **extra}


def test_three_concurrent_installs_run_npm_once_and_all_find_it_complete(tmp_path: Path) -> None:
    env = _env(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", INSTALL], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    roots = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert (tmp_path / "npm.log").read_text().count("run") == 1
    (root,) = roots
    assert (Path(root) / ".installed").exists() and (Path(root) / "node_modules/dynalite/cli.js").exists()
    assert not list((tmp_path / "cache").glob("*.partial-*"))


def test_a_failed_install_leaves_nothing_and_the_next_one_installs(tmp_path: Path) -> None:
    failed = subprocess.run([sys.executable, "-c", INSTALL], env=_env(tmp_path, NPM_FAIL="1"),
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1 and "npm ci` failed" in failed.stderr
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []
    ok = subprocess.run([sys.executable, "-c", INSTALL], env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
