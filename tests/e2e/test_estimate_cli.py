"""`streamkit estimate`: JSON output, simulation and plot, measuring a handler, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import run_cli, run_json

ROOT = Path(__file__).resolve().parents[2]


def test_json_has_the_seed_figures_and_the_model() -> None:
    r = run_json("estimate", "--shards", "2", "--record-size", "2KiB", "--batch-size", "100", "--duration", "500ms",
                 "--records-per-second", "500", "--simulate", "--simulate-seconds", "30")
    assert r["seed"]["max_theoretical_bytes_per_s"] == 2 * 2 * 1024 * 1024 / 0.5  # type: ignore[index]
    assert r["seed"]["effective_bytes_per_s"] == 2 * 100 * 2048 / 0.5  # type: ignore[index]
    assert r["binding_limit"] and r["advice"] and "simulation" in r


def test_plot_writes_a_png(tmp_path: Path) -> None:
    png = tmp_path / "lag.png"
    run_json("estimate", "--shards", "1", "--records-per-second", "800", "--batch-size", "100", "--duration", "0.2",
             "--plot", str(png), "--simulate-seconds", "20")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_measure_fits_the_handlers_cost(tmp_path: Path) -> None:
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join(f'{{"sensor_id": "s{i}", "t": 1}}' for i in range(20)))
    r = run_json("estimate", "--shards", "1", "--measure", "tests.e2e.handlers:costs_two_ms", "--sample", str(sample),
                 env={"PYTHONPATH": str(ROOT)})
    assert 1.8 <= r["measured"]["per_record_ms"] <= 4.0  # type: ignore[index]


@pytest.mark.parametrize(("args", "message"), [(["--record-size", "lots"], "bad size"),
                                                (["--duration", "soon"], "bad duration"),
                                                (["--aggregation", "0.5"], "aggregation"),
                                                (["--measure", "x:y"], "needs --sample")])
def test_bad_input_is_a_usage_error(args: list[str], message: str) -> None:
    proc = run_cli("estimate", "--shards", "1", *args)
    assert proc.returncode == 2 and message in proc.stderr


def test_memory_advice_prints_the_table_for_a_measured_run(tmp_path: Path) -> None:
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join(f'{{"sensor_id": "s{i}", "t": 1}}' for i in range(20)))
    proc = run_cli("estimate", "--shards", "2", "--records-per-second", "500", "--measure",
                   "tests.e2e.handlers:costs_two_ms", "--sample", str(sample), "--lambda-memory-mb", "256",
                   "--memory-advice", env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout[proc.stdout.index("memory advice (measured at 256 MB"):].splitlines()
    assert [line.split()[0] for line in table[2:11]] == ["128", "256", "512", "1,024", "1,769", "2,048", "3,008",
                                                         "4,096", "10,240"]
    assert sum("<- recommended" in line for line in table) == 1
    assert any("looks I/O-bound" in line for line in table)  # it sleeps: its time is not on CPU
