"""The demo's report: what it prints as it goes, and summary.md with its plots (matplotlib, optional)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Report", "write_report"]


class Report:
    def __init__(self, out: Path, quiet: bool) -> None:
        self.out = out
        self.quiet = quiet
        self.sections: list[tuple[str, list[str]]] = []
        self.figures: dict[str, Any] = {}
        self.series: dict[str, list[tuple[float, ...]]] = {}
        from rich.console import Console

        self.console = Console(quiet=quiet)

    def stage(self, title: str) -> None:
        self.console.rule(f"[bold]{title}")

    def say(self, text: str) -> None:
        self.console.print(text)

    def section(self, title: str, lines: list[str]) -> None:
        self.sections.append((title, lines))
        for line in lines:
            self.say(f"  {line}")


def write_report(report: Report, args: argparse.Namespace) -> Path:
    out: Path = args.output
    pngs = _plots(report, out)
    lines = ["# streamkit demo", "", f"Run with `make demo` (`streamkit demo`), {report.figures.get('total_seconds')} s.", ""]
    for title, body in report.sections:
        lines += [f"## {title}", "", *[f"- {line}" for line in body], ""]
    for png in pngs:
        lines += [f"![{png.stem}]({png.name})", ""]
    lines += ["## figures (JSON)", "", "```json", orjson.dumps(report.figures, option=orjson.OPT_INDENT_2).decode(),
              "```", ""]
    path = out / "summary.md"
    path.write_text("\n".join(lines))
    return path


def _plots(report: Report, out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report.say("(matplotlib is not installed: no plots; pip install 'streamkit[plot]')")
        return []
    paths = []

    def rates(series: list[tuple[float, ...]], window: float = 0.5) -> tuple[list[float], list[float]]:
        """Readings per second over successive windows (smooths the sampling jitter)."""
        ts: list[float] = []
        rs: list[float] = []
        if not series:
            return ts, rs
        start_t, start_n = series[0][0], series[0][1]
        for t, n, *_rest in series[1:]:
            if t - start_t >= window:
                ts.append(t)
                rs.append((n - start_n) / (t - start_t))
                start_t, start_n = t, n
        return ts, rs

    fig, ax = plt.subplots(figsize=(8, 4))
    for name in ("producer", "consumer"):
        ts, rs = rates(report.series.get(name, []))
        ax.plot(ts, rs, label=f"{name} (readings/s)")
    ax.set_xlabel("seconds since the fleet started")
    ax.set_ylabel("readings per second")
    ax.set_title("throughput over time")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out / "throughput.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
    cons = report.series.get("consumer", [])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot([c[0] for c in cons], [c[2] for c in cons], color="tab:red")
    ax.set_xlabel("seconds since the fleet started")
    ax.set_ylabel("MillisBehindLatest, most behind shard (s)")
    ax.set_title("consumer lag over time")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "lag.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
    return paths
