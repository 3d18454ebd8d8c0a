"""Entry point of the `streamkit` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import import_module

from streamkit.cli.common import CliArgumentParser, common_options, print_err
from streamkit.errors import ConfigurationError, StreamkitError

# Command modules, imported when the parser is built; each has register(subparsers, parents).
COMMANDS = ("local_cmd", "stream_cmd", "produce_cmd", "consume_cmd", "kcl_cmd", "lambda_cmd", "replay_cmd",
            "dispatch_cmd", "estimate_cmd", "demo_cmd", "tail_cmd")


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = CliArgumentParser(
        prog="streamkit",
        description="Amazon Kinesis Data Streams toolkit: local stack, producer, consumer, Lambda, estimator.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CliArgumentParser)
    for name in COMMANDS:
        import_module(f"streamkit.cli.{name}").register(sub, [common])
    return parser


class _Lines(logging.Formatter):
    """``streamkit: warning: ...``: one line per event, like the CLI's own errors."""

    def format(self, record: logging.LogRecord) -> str:
        return f"streamkit: {record.levelname.lower()}: {record.getMessage()}"


def _log_to_stderr() -> None:
    logger = logging.getLogger("streamkit")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Lines())
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    _log_to_stderr()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigurationError as exc:
        print_err(f"streamkit: error: {exc}")
        return 2
    except StreamkitError as exc:
        print_err(f"streamkit: error: {exc}")
        return 1
    except KeyboardInterrupt:
        print_err("streamkit: interrupted")
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
