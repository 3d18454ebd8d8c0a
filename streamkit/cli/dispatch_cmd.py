"""`streamkit dispatch`: the fan-out dispatcher under the event-source-mapping emulator, local workers."""

from __future__ import annotations

import argparse
from typing import Any

from streamkit.cli.common import add_metrics_options, client_for, emit_json, flag, import_callable, metrics_from_args


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dispatch", help="spread a stream's records over local workers (fan-out dispatcher)",
                       parents=parents)
    p.add_argument("--stream", required=True)
    add_metrics_options(p)
    p.add_argument("--worker", required=True, help="package.module:function, called with each StreamRecord")
    p.add_argument("--mode", choices=("unordered", "per-key"), default="unordered")
    p.add_argument("--lanes", type=int, default=8, help="parallel workers (per-key: lanes keys are hashed to)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--dead-letter", default=None, help="file:PATH or sqs:URL for records that keep failing")
    p.add_argument("--starting-position", choices=("trim_horizon", "latest"), default="trim_horizon")
    p.add_argument("--stop-after-idle", type=float, default=None)
    p.set_defaults(func=cmd_dispatch)


def cmd_dispatch(args: argparse.Namespace) -> int:
    from dispatcher import Dispatcher, LocalTarget
    from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
    from streamkit.aws_lambda.events import parse_event

    worker = import_callable(args.worker)
    metrics = metrics_from_args(args)
    dispatcher = Dispatcher(LocalTarget(worker, workers=args.lanes), mode=args.mode, lanes=args.lanes,
                            max_attempts=args.max_attempts, dead_letter=args.dead_letter, metrics=metrics)
    totals = {"delivered": 0, "retried": 0, "dead_lettered": 0, "failed": 0}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = dispatcher.dispatch(parse_event(event))
        totals["delivered"] += result.delivered
        totals["retried"] += result.retried
        totals["dead_lettered"] += result.dead_lettered
        totals["failed"] += len(result.failed)
        return {"batchItemFailures": result.batch_item_failures()}

    esm = EventSourceMapping(args.stream, handler, client=client_for(args, retries=0),
                             config=EsmConfig(batch_size=args.batch_size, report_batch_item_failures=True,
                                              starting_position=args.starting_position.upper()))
    try:
        stats = esm.run(stop_after_idle=args.stop_after_idle)
    finally:
        dispatcher.close()
        if metrics is not None:
            metrics.close()
    summary = {**totals, "invocations": stats.invocations, "mode": args.mode, "lanes": args.lanes}
    if flag(args, "json"):
        emit_json(summary)
    else:
        print(f"dispatched {totals['delivered']:,} records over {args.lanes} lanes ({args.mode}) in "
              f"{stats.invocations} batches; retried {totals['retried']}, dead-lettered {totals['dead_lettered']}")
    return 0
