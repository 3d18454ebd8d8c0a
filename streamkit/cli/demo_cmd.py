"""`streamkit demo`: registers the command; the demo application itself is `streamkit.demo.app`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run every capability against a local stack and print the figures",
                       parents=parents)
    p.add_argument("--sensors", type=int, default=300)
    p.add_argument("--rate", type=float, default=8000.0, help="readings per second the fleet publishes")
    p.add_argument("--duration", type=float, default=4.0, help="seconds the fleet publishes")
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--limit-scale", type=float, default=0.5, help="shard limits enforced by the proxy, scaled")
    p.add_argument("--output", type=Path, default=Path("demo-output"))
    p.set_defaults(func=_run)




def _run(args: argparse.Namespace) -> int:
    try:
        from streamkit.demo.app import cmd_demo
    except ImportError as exc:
        from streamkit.errors import ConfigurationError

        raise ConfigurationError(f"streamkit demo needs the CLI extras: pip install 'streamkit[cli,plot]' ({exc})") from None
    return cmd_demo(args)
