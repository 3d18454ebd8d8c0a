"""Ctrl-C during `streamkit demo` stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def local_servers() -> set[int]:
    """Pids of kinesalite, kinesis-local, dynalite and proxy processes on this machine."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if any(m in cmd for m in (b"kinesalite/cli.js", b"dynalite/cli.js", b"kinesis-local/main.js",
                                  b"streamkit.local.proxy")):
            pids.add(int(proc.name))
    return pids


def test_sigint_during_the_demo_leaves_no_server_running(tmp_path: Path) -> None:
    before = local_servers()
    stderr = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "streamkit.cli.main", "demo", "--duration", "30", "--output",
                             str(tmp_path)], stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(local_servers() - before) < 3:
        time.sleep(0.1)
    started = local_servers() - before
    assert len(started) == 3  # kinesalite, dynalite and the proxy
    time.sleep(1.0)  # into the publishing stage
    proc.send_signal(signal.SIGINT)
    # It ends (its own watchdog acts 8 s after Ctrl-C, said below); 60 s is a hang guard on a loaded machine.
    proc.wait(60)
    stderr.close()
    said = (tmp_path / "stderr.txt").read_text()
    stacks = tmp_path / "interrupt-stacks.txt"
    if stacks.exists():
        # The contract held (it stopped, and stopped its servers), but only by the demo's watchdog,
        # 8 s after Ctrl-C: a stage that did not let go. Said in the run's output, with every stack.
        warnings.warn(f"the demo needed its Ctrl-C watchdog:\n{said}\n{stacks.read_text()}", stacklevel=1)
    assert proc.returncode != 0
    deadline = time.monotonic() + 60  # a hang guard only
    while time.monotonic() < deadline and started & local_servers():
        time.sleep(0.1)
    assert not started & local_servers()
