"""`streamkit consume`: run a per-record function over a stream with the ordered consumer."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from typing import Any

from streamkit.cli.common import (
    BODY_HELP,
    add_metrics_options,
    body_from_arg,
    checkpoint_store,
    client_for,
    emit_json,
    flag,
    has_rich,
    import_callable,
    metrics_from_args,
    print_err,
    require_streams,
    why_it_ended,
)
from streamkit.errors import ConfigurationError
from streamkit.positions import parse_position
from streamkit.signals import SignalSeen, stopping_on_signals


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("consume", help="process a stream in order per shard with a function of one StreamRecord",
                       parents=parents)
    p.add_argument("--stream", required=True, action="append",
                   help="a stream name or ARN; repeat it to read several streams as one application")
    p.add_argument("--handler", required=True, help="package.module:function, called with each StreamRecord")
    add_metrics_options(p)
    p.add_argument("--checkpoint", default=None,
                   help="sqlite:PATH, dynamodb:TABLE, or kcl:TABLE (a KCL application's lease table, kept usable "
                        "by the KCL) to keep positions across runs (default: in memory only)")
    p.add_argument("--dynamodb-endpoint-url", default=None, help="DynamoDB endpoint (default: $AWS_ENDPOINT_URL_DYNAMODB)")
    p.add_argument("--app", default="streamkit-consume", help="application name: workers sharing it share shards")
    p.add_argument("--from", dest="start", default="trim-horizon",
                   help="where shards with no checkpoint start: trim-horizon | latest | at-timestamp:ISO "
                        "(underscores and any case accepted)")
    p.add_argument("--efo", action="store_true", help="enhanced fan-out (RegisterStreamConsumer + SubscribeToShard)")
    p.add_argument("--body", default="bytes", help=BODY_HELP)
    p.add_argument("--on-failure", default="stop", help="stop | file:PATH | sqs:URL, after --max-attempts")
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--stop-after-idle", type=float, default=None, help="stop once no records came for SECONDS")
    p.add_argument("--lease-duration", type=float, default=10.0,
                   help="seconds a lease lasts unrenewed: how long a crashed worker's shards wait (default 10)")
    p.add_argument("--balance", choices=("count", "load"), default="count",
                   help="share leases between workers by count, or by bytes per second (default count)")
    p.add_argument("--worker-id", default=None, help="this worker's name in the lease table (default host-pid-random)")
    p.set_defaults(func=cmd_consume)


def _initial_position(text: str) -> Any:
    pos = parse_position(text, accept=("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"))
    return pos.timestamp if pos.kind == "AT_TIMESTAMP" else pos.kind


def cmd_consume(args: argparse.Namespace) -> int:
    from streamkit.consumer import Consumer, ConsumerConfig

    func = import_callable(args.handler)
    metrics = metrics_from_args(args)
    require_streams(args, args.stream)
    config = ConsumerConfig(initial_position=_initial_position(args.start), enhanced_fan_out=args.efo,
                            body=body_from_arg(args.body), max_attempts=args.max_attempts,
                            on_failure=args.on_failure, lease_duration=args.lease_duration, balance=args.balance,
                            **({"worker_id": args.worker_id} if args.worker_id else {}))
    store = checkpoint_store(args)
    if store is None:
        from streamkit.checkpoints import MemoryCheckpointStore

        print_err("streamkit: positions are kept in memory only: a rerun starts again from --from "
                  "(--checkpoint sqlite:PATH keeps them)")
        store = MemoryCheckpointStore()
    streams: list[str] = args.stream
    consumer = Consumer(streams if len(streams) > 1 else streams[0], func, application_name=args.app, checkpoint_store=store,
                        client=client_for(args, retries=0), config=config, metrics=metrics)
    return run_and_summarise(consumer, args, metrics)


def run_and_summarise(consumer: Any, args: argparse.Namespace, metrics: Any = None) -> int:
    """Run `consumer` (with the live view on a terminal), then print its summary (`--json`: one object)."""
    t0 = time.monotonic()
    live = not flag(args, "json") and sys.stdout.isatty() and has_rich()
    error: BaseException | None = None
    said = _ErrorsSaid()
    logging.getLogger("streamkit").addHandler(said)
    seen = SignalSeen()
    try:
        with stopping_on_signals(consumer.stop, hold=True) as seen:  # SIGTERM or Ctrl-C: a graceful stop, then the summary
            if live:
                _run_with_live_view(consumer, args.stop_after_idle)
            else:
                consumer.run(install_signal_handlers=False, stop_after_idle=args.stop_after_idle)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a shard stopped (a poison record, a processor raising): summarise, then say why
        error = exc
    finally:
        logging.getLogger("streamkit").removeHandler(said)
        if metrics is not None:
            metrics.close()
    streams: list[str] = consumer.streams
    multi = len(streams) > 1

    def shard_name(s: Any) -> str:
        return f"{s.stream_name}/{s.shard_id}" if multi else s.shard_id

    summary = {
        "stream": streams[0] if not multi else streams,
        "application": consumer.application_name,
        "worker_id": consumer.worker_id,
        "seconds": round(time.monotonic() - t0, 3),
        "records": sum(s.records for s in consumer.final_stats),
        "dead_lettered": sum(s.dead_lettered for s in consumer.final_stats),
        "invalid": sum(s.invalid for s in consumer.final_stats),
        "corrupt": sum(s.corrupt for s in consumer.final_stats),
        "shards": {shard_name(s): {"records": s.records, "millis_behind_latest": s.millis_behind_latest, "state": s.state}
                   for s in consumer.final_stats},
    }
    summary["ended"] = why_it_ended(seen.name, error, args.stop_after_idle)
    if error is not None:
        summary["error"] = str(error)
    if flag(args, "json"):
        emit_json(summary)
    else:
        print(f"processed {summary['records']:,} records from {len(summary['shards'])} shard(s) in "
              f"{summary['seconds']:.1f} s; dead-lettered {summary['dead_lettered']} (invalid {summary['invalid']}), "
              f"corrupt {summary['corrupt']}; {summary['ended']}")
    if error is None:
        return 0
    if not any(str(error) in line for line in said.lines):  # once: a failed shard's error is already said
        print_err(f"streamkit: error: {error}")
    return 2 if isinstance(error, ConfigurationError) else 1


class _ErrorsSaid(logging.Handler):
    """Remembers the ERROR lines logged during a run, so the closing line does not say one again."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _run_with_live_view(consumer: Any, stop_after_idle: float | None) -> None:
    from rich.live import Live
    from rich.table import Table

    def table() -> Table:
        t = Table(title=f"{', '.join(consumer.streams)}  ({consumer.worker_id})")
        for col in ("shard", "state", "records", "behind (ms)"):
            t.add_column(col, justify="right" if col != "shard" else "left")
        multi = len(consumer.streams) > 1
        for s in sorted(consumer.shard_stats(), key=lambda s: (s.stream_name, s.shard_id)):
            name = f"{s.stream_name}/{s.shard_id}" if multi else s.shard_id
            t.add_row(name, s.state, f"{s.records:,}", "-" if s.millis_behind_latest is None else
                      f"{s.millis_behind_latest:,}")
        return t

    errors: list[BaseException] = []

    def run() -> None:
        try:
            consumer.run(install_signal_handlers=False, stop_after_idle=stop_after_idle)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        with Live(table(), refresh_per_second=4, transient=False) as live:
            while worker.is_alive():
                worker.join(0.25)
                live.update(table())
    except KeyboardInterrupt:
        consumer.stop()
        worker.join()
    if errors:
        raise errors[0]
