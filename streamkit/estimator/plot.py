"""Iterator age and backlog over time, as a PNG (matplotlib is an optional extra)."""

from __future__ import annotations

from pathlib import Path

from streamkit.errors import ConfigurationError
from streamkit.estimator.simulate import SimulationResult

__all__ = ["plot_simulation"]


def plot_simulation(result: SimulationResult, path: Path, *, title: str = "") -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigurationError("--plot needs matplotlib: pip install 'streamkit[plot]'") from None
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    ax1.plot(result.times, result.iterator_age, color="tab:red")
    ax1.set_ylabel("iterator age (s)")
    ax1.set_title(title or "simulated stream")
    ax2.plot(result.times, result.backlog, color="tab:blue")
    ax2.set_ylabel("backlog (user records)")
    ax2.set_xlabel("time (s)")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
