"""`streamkit demo` runs every stage against its own local stack and writes the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import run_json

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_runs_every_stage_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "report"
    figures = run_json("demo", "--duration", "1", "--rate", "3000", "--output", str(out))
    assert figures["producer"]["failed"] == 0  # type: ignore[index]
    assert figures["consumer"]["records"] == figures["producer"]["readings"]  # type: ignore[index]
    assert figures["consumer"]["out_of_order"] == 0  # type: ignore[index]
    assert figures["lambda"]["dead_letters"] == 1 and figures["lambda"]["processed_after_replay"] == 1  # type: ignore[index]
    assert figures["lambda"]["windows"] >= 1 and (out / "windows.jsonl").read_text().count("readings, mean") >= 1  # type: ignore[index]
    assert figures["dispatcher"]["speedup"] > 4  # type: ignore[index]
    summary = (out / "summary.md").read_text()
    assert "## producer" in summary and "throughput.png" in summary
    assert (out / "throughput.png").read_bytes()[:4] == b"\x89PNG" and (out / "lag.png").exists()
    # A second run needs no cleanup.
    again = run_json("demo", "--duration", "0.5", "--rate", "2000", "--output", str(out))
    assert again["consumer"]["records"] == again["producer"]["readings"]  # type: ignore[index]
