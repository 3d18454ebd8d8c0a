"""`streamkit produce`: the sensor publisher (thin layer over producer.publisher)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streamkit.cli.common import (
    add_metrics_options,
    client_for,
    emit_json,
    flag,
    has_rich,
    metrics_from_args,
    print_err,
    require_streams,
)
from streamkit.errors import ConfigurationError
from streamkit.signals import hold_late_signals


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("produce", help="publish sensor readings (a JSON-lines file or a simulated fleet)",
                       parents=parents,
                       epilog="exit status: 0 when every reading read was acknowledged by Kinesis; 1 when any went to "
                              "--on-failure or could not be handed over (the summary says how many); 2 on a usage error")
    p.add_argument("--stream", required=True)
    add_metrics_options(p)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", type=Path, help="JSON lines, one reading per line")
    src.add_argument("--sensors", type=int, help="simulate this many sensors (with --rate and --duration)")
    p.add_argument("--rate", type=float, default=1000.0, help="simulated readings per second, all sensors together")
    p.add_argument("--duration", type=float, default=10.0, help="simulated seconds")
    p.add_argument("--key-field", default="sensor_id", help="field of a reading used as its partition key")
    p.add_argument("--no-aggregate", action="store_true", help="one Kinesis record per reading")
    p.add_argument("--on-bad-line", choices=("skip", "fail"), default="skip",
                   help="a line that is not a JSON object with the key field: report and skip, or stop")
    p.add_argument("--record-ttl", type=float, default=30.0, metavar="SECONDS",
                   help="give up on a reading not written this long after it was read (default 30); the publisher "
                        "is held back when a shard holds half of that of what it accepts")
    p.add_argument("--on-failure", metavar="DEST",
                   help="file:PATH or sqs:QUEUE_URL: where readings that could not be written go, payload included")
    p.add_argument("--shutdown-grace", type=float, default=5.0, metavar="SECONDS",
                   help="on SIGTERM, SIGINT or SIGHUP: stop reading, flush for at most this long (default 5), then "
                        "hand what is unwritten to --on-failure; a second signal hands it over at once, a third "
                        "ends the process")
    p.add_argument("--position-file", type=Path, metavar="PATH",
                   help="--file: where the position (the last line acknowledged) is kept; default: per user, under "
                        "$XDG_STATE_HOME/streamkit/produce/ (or ~/.local/state/...)")
    p.add_argument("--from-start", action="store_true",
                   help="--file: ignore the kept position and read from line 1 (the position is then rewritten)")
    p.set_defaults(func=cmd_produce)


def cmd_produce(args: argparse.Namespace) -> int:
    from producer import ProducerConfig
    from producer.position import FilePosition, default_position_file, load_position
    from producer.publisher import BadLine, PositionKeeper, StopRequest, file_lines, publish, simulated_readings
    from streamkit.errors import BadLineError

    bad: list[BadLine] = []

    def on_bad(b: BadLine) -> None:
        action = "skipped" if args.on_bad_line == "skip" else "stopping"
        print_err(f"streamkit: {args.file}:{b.line_number}: {b.reason} ({action})")
        bad.append(b)
        if args.on_bad_line == "fail":
            raise BadLineError(f"{args.file}:{b.line_number}: {b.reason}")

    if args.shutdown_grace < 0:
        raise ConfigurationError(f"--shutdown-grace must be 0 or more seconds, got {args.shutdown_grace}")
    readings: Any
    positions = None
    if args.file is not None:
        if not args.file.is_file():
            raise ConfigurationError(f"--file {args.file}: no such file")
        position_file = args.position_file or default_position_file(args.file, args.stream)
        start, said = (FilePosition(), "") if args.from_start else load_position(position_file, args.file, args.stream)
        if said and not flag(args, "json"):
            print_err(f"streamkit: {said}")
        positions = PositionKeeper(position_file=position_file, input_path=args.file, stream=args.stream, start=start)
        readings = file_lines(args.file, args.key_field, on_bad, start=start)
        total = None
    else:
        readings = simulated_readings(args.sensors, args.rate, args.duration)
        total = int(args.rate * args.duration)
    # From here on a signal is a stop, said in the summary: the stream check below may wait on a server.
    stop = StopRequest()
    with _stop_on_signals(stop):
        metrics = metrics_from_args(args)
        require_streams(args, [args.stream])  # a typo is said before the --on-failure file is created
        config = ProducerConfig(aggregation=not args.no_aggregate, on_failure=args.on_failure, record_ttl=args.record_ttl,
                                metrics=metrics)
        client = client_for(args, retries=0)
        show_progress = not flag(args, "json") and sys.stderr.isatty() and has_rich()
        said_held = False

        def held_line(seconds: float) -> None:  # without the live view: said once, when it starts
            nonlocal said_held
            if not said_held and not flag(args, "json"):
                said_held = True
                print_err(f"streamkit: held back: {args.stream}'s shards accept less than offered; publishing at "
                          "their rate so that no reading expires unsent")

        if show_progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          transient=True) as bar:
                task = bar.add_task("publishing", total=total)
                summary = publish(args.stream, readings, client=client, config=config,
                                  progress=lambda n: bar.advance(task, n), bad_lines=bad, stop=stop,
                                  shutdown_grace=args.shutdown_grace, positions=positions,
                                  held=lambda s: bar.update(task, description=f"publishing, held back {s:.1f} s "
                                                                              "(the shards are full)"))
        else:
            summary = publish(args.stream, readings, client=client, config=config, bad_lines=bad, held=held_line,
                              stop=stop, shutdown_grace=args.shutdown_grace, positions=positions)
    if metrics is not None:
        metrics.close()
    if flag(args, "json"):
        emit_json(summary.to_json())
    else:
        print(_summary_line(summary, args))
    # 0: every reading read was acknowledged by Kinesis; 1: some went to --on-failure or were lost.
    return 0 if summary.user_records == summary.read else 1


def _summary_line(summary: Any, args: argparse.Namespace) -> str:
    why = f"stopped by {summary.stopped_by}: " if summary.stopped_by else ""
    line = (f"{why}read {summary.read:,}; published {summary.user_records:,} readings as {summary.kinesis_records:,} "
            f"Kinesis records in {summary.put_calls:,} PutRecords calls ({summary.bytes:,} bytes) in "
            f"{summary.seconds:.2f} s; failed {summary.failed}, retried {summary.retried}, bad lines {summary.bad_lines}")
    if summary.unacknowledged:
        line += f"; accepted but not acknowledged: {summary.unacknowledged:,}"
    if summary.failed:
        line += (f"; handed over {summary.handed_over:,} to {args.on_failure}" if args.on_failure
                 else "; no --on-failure given")
        if summary.not_handed_over:
            line += f"; NOT handed over: {summary.not_handed_over:,}"
    if summary.held_back_s:
        line += f"; held back {summary.held_back_s:.1f} s by the shards' rate"
    if summary.position_line is not None:
        line += f"; position: after line {summary.position_line:,}"
    return line


@contextmanager
def _stop_on_signals(stop: Any) -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP ask the publisher to stop (it flushes within --shutdown-grace); a second
    one ends the grace at once; a third takes the signal's default action."""
    names = ("SIGTERM", "SIGINT", "SIGHUP")
    sigs = [getattr(signal, n) for n in names if hasattr(signal, n)]

    def handler(signum: int, _frame: Any) -> None:
        if stop.urgent:  # a third signal: the default action (a call to a hung server cannot hold it)
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        stop.request(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in sigs}
    try:
        yield
    finally:
        hold_late_signals(previous)  # one more while the summary is written; then the default
