"""`streamkit dispatch`: the fan-out dispatcher under the event-source-mapping emulator, local workers.

Positions are kept as `consume` keeps them (`--checkpoint`, memory by default, said at start), under the
namespace ``esm:streamkit-dispatch:STREAM``. A record its worker keeps failing, `--max-attempts` times,
goes to `--on-failure`; with none, the run stops at it (its position kept, so a rerun starts there)
instead of redelivering the rest of its batch over and over.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from streamkit.cli.common import (
    add_metrics_options,
    checkpoint_store,
    client_for,
    emit_json,
    flag,
    import_callable,
    metrics_from_args,
    print_err,
    require_streams,
    why_it_ended,
)
from streamkit.cli.template_run import DISPATCH_OPTIONS, add_template_options, dispatch_from_template, remember_defaults
from streamkit.errors import ConfigurationError

#: The mapping's name: dispatch's positions never mix with `lambda run`'s on the same store.
FUNCTION_NAME = "streamkit-dispatch"


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("dispatch", help="spread a stream's records over local workers (fan-out dispatcher)",
                       parents=parents)
    p.add_argument("--stream", default=None, help="stream name or ARN (or --template)")
    add_metrics_options(p)
    p.add_argument("--worker", required=True, help="package.module:function, called with each StreamRecord")
    p.add_argument("--mode", choices=("unordered", "per-key"), default="unordered")
    p.add_argument("--lanes", type=int, default=8, help="parallel workers (per-key: lanes keys are hashed to)")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--max-attempts", type=int, default=3, help="deliveries of a record before it is given up on")
    p.add_argument("--on-failure", "--dead-letter", dest="on_failure", default=None, metavar="DEST",
                   help="file:PATH, sqs:URL, sns:ARN or s3:BUCKET for records that keep failing (default: stop at "
                        "the first such record, its position kept)")
    p.add_argument("--checkpoint", default=None,
                   help="sqlite:PATH, dynamodb:TABLE or kcl:TABLE: keep the position per shard there, so a restart "
                        "resumes (default: in memory only, said at start)")
    p.add_argument("--starting-position", default="trim-horizon",
                   help="trim-horizon | latest | at-timestamp:ISO (underscores and any case accepted)")
    p.add_argument("--stop-after-idle", type=float, default=None)
    add_template_options(p)
    remember_defaults(p, DISPATCH_OPTIONS)
    p.set_defaults(func=cmd_dispatch)


def cmd_dispatch(args: argparse.Namespace) -> int:
    from dispatcher import Dispatcher, LocalTarget
    from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
    from streamkit.aws_lambda.events import parse_event
    from streamkit.errors import StreamkitError
    from streamkit.positions import parse_position
    from streamkit.signals import SignalSeen, stopping_on_signals

    if args.template is not None:
        dispatch_from_template(args)  # the dispatcher function's mapping and settings, from the template
    elif args.function is not None or args.parameter_overrides:
        raise ConfigurationError("--function and --parameter-overrides go with --template FILE")
    elif not args.stream:
        raise ConfigurationError("dispatch needs --stream, or --template FILE")
    start = parse_position(args.starting_position, accept=("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"),
                           option="--starting-position")
    worker = import_callable(args.worker)
    metrics = metrics_from_args(args)
    require_streams(args, [args.stream])
    config = EsmConfig(batch_size=args.batch_size, report_batch_item_failures=True, function_name=FUNCTION_NAME,
                       starting_position=start.kind,  # type: ignore[arg-type]  # accept= excludes AT_SEQUENCE_NUMBER
                       starting_position_timestamp=start.epoch_seconds)
    store = checkpoint_store(args)
    if store is None:
        from streamkit.checkpoints import MemoryCheckpointStore

        print_err("streamkit: positions are kept in memory only: a rerun starts again from --starting-position "
                  "(--checkpoint sqlite:PATH keeps them)")
        store = MemoryCheckpointStore()
    else:
        print_err(f"streamkit: positions kept in {args.checkpoint} (as esm:{FUNCTION_NAME}:{args.stream})")
    dispatcher = Dispatcher(LocalTarget(worker, workers=args.lanes), mode=args.mode, lanes=args.lanes,
                            max_attempts=args.max_attempts, dead_letter=args.on_failure, metrics=metrics)
    totals = {"delivered": 0, "retried": 0, "dead_lettered": 0, "failed": 0}
    lock = threading.Lock()
    stopped_at: list[str] = []
    esm: Any = None

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = dispatcher.dispatch(parse_event(event))
        with lock:
            totals["delivered"] += result.delivered
            totals["retried"] += result.retried
            totals["dead_lettered"] += result.dead_lettered
            totals["failed"] += len(result.failed)
            if result.failed and not stopped_at:
                # No failure destination: the record stays where it is, and so does the run (redelivering
                # the rest of the batch until the record expires is what made 94,531 deliveries of 40,000).
                first = result.failed[0]
                stopped_at.append(f"record {first.sequence_number} of {first.shard_id} failed {args.max_attempts} "
                                  "time(s): stopped there, its position kept (a rerun starts from it; --on-failure "
                                  "DEST hands such records over)")
                esm.stop()
        return {"batchItemFailures": result.batch_item_failures()}

    esm = EventSourceMapping(args.stream, handler, client=client_for(args, retries=0), config=config,
                             checkpoint_store=store)
    seen = SignalSeen()
    try:
        with stopping_on_signals(esm.stop, hold=True) as seen:  # SIGTERM, Ctrl-C: finish the batches in flight, then the summary
            stats = esm.run(stop_after_idle=args.stop_after_idle)
    except StreamkitError as exc:  # no progress (servers gone): the summary, then why
        stopped_at.append(str(exc))
        stats = esm.stats
    finally:
        dispatcher.close()
        if metrics is not None:
            metrics.close()
    summary = {**totals, "invocations": stats.invocations, "mode": args.mode, "lanes": args.lanes,
               "stopped": stopped_at[0] if stopped_at else None,
               "ended": "error" if stopped_at else why_it_ended(seen.name, None, args.stop_after_idle)}
    if flag(args, "json"):
        emit_json(summary)
    else:
        print(f"dispatched {totals['delivered']:,} records over {args.lanes} lanes ({args.mode}) in "
              f"{stats.invocations} batches; retried {totals['retried']}, dead-lettered {totals['dead_lettered']}; "
              f"{summary['ended']}")
    if stopped_at:
        print_err(f"streamkit: error: {stopped_at[0]}")
        return 1
    return 0
