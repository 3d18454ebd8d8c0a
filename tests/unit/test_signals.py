"""streamkit.signals: a signal inside the block is a stop; with hold=True, one that comes after the work,
while the command writes its summary, does not kill the process before the summary is out (CI saw
`replay` end with -15 and nothing printed when SIGTERM landed just after its block)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import os, signal, sys, threading
    from streamkit.signals import stopping_on_signals

    stop = threading.Event()
    with stopping_on_signals(stop.set, hold={hold}) as seen:
        os.kill(os.getpid(), signal.SIGTERM)  # mid-run: a stop
    print("stopped:", stop.is_set(), seen.name, flush=True)
    for _ in range({late}):  # after the work: while the summary is written
        os.kill(os.getpid(), signal.{late_signal})
    print("summary", flush=True)
""")


def run(*, hold: bool, late: int, late_signal: str = "SIGTERM") -> subprocess.CompletedProcess[str]:
    code = SCRIPT.format(hold=hold, late=late, late_signal=late_signal)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT)}, check=False)


@pytest.mark.parametrize("late_signal", ["SIGTERM", "SIGINT"])
def test_held_a_late_signal_lets_the_summary_out_and_the_process_end_by_itself(late_signal: str) -> None:
    done = run(hold=True, late=1, late_signal=late_signal)
    assert done.returncode == 0, done
    assert done.stdout.splitlines() == ["stopped: True SIGTERM", "summary"]


def test_without_hold_the_previous_handler_is_back_at_once() -> None:
    done = run(hold=False, late=1)
    assert done.returncode == -15 and done.stdout.splitlines() == ["stopped: True SIGTERM"], done


def test_held_a_second_late_signal_ends_the_process_as_the_default_does() -> None:
    done = run(hold=True, late=2)
    assert done.returncode == -15 and "summary" not in done.stdout, done
