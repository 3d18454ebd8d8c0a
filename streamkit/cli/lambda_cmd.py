"""`streamkit lambda run`: a Lambda handler under the local event-source-mapping emulator."""

from __future__ import annotations

import argparse
from typing import Any

from streamkit.cli.common import (
    add_metrics_options,
    checkpoint_store,
    client_for,
    emit_json,
    flag,
    metrics_from_args,
    print_err,
    require_streams,
    why_it_ended,
)
from streamkit.cli.lambda_reports import (
    add_environment_options,
    environments,
    handler_spec,
    import_timed,
    memory_of,
    report_printer,
    report_summary,
    summary_line,
)
from streamkit.cli.template_run import add_template_options, remember_defaults, run_template
from streamkit.errors import ConfigurationError, StreamkitError


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lambda", help="run a Kinesis-triggered Lambda handler locally", parents=parents)
    lsub = p.add_subparsers(dest="lambda_command", required=True, metavar="run")
    r = lsub.add_parser("run", help="poll a stream and invoke HANDLER(event, context) as AWS would", parents=parents)
    r.add_argument("--stream", default=None, help="stream name or ARN (or --template)")
    add_metrics_options(r)
    r.add_argument("--handler", default=None,
                   help="package.module:handler, a Lambda handler (event, context) (or --template)")
    r.add_argument("--batch-size", type=int, default=100)
    r.add_argument("--batching-window", type=float, default=0.0, help="seconds (MaximumBatchingWindowInSeconds)")
    r.add_argument("--starting-position", default="trim-horizon",
                   help="trim-horizon | latest | at-timestamp:ISO (StartingPosition, StartingPositionTimestamp)")
    r.add_argument("--parallelization-factor", type=int, default=1)
    r.add_argument("--bisect-on-error", action="store_true")
    r.add_argument("--max-retry-attempts", type=int, default=-1, help="-1 (default): until the records expire")
    r.add_argument("--max-record-age", type=float, default=-1, help="seconds, 60..604800; -1: until retention")
    r.add_argument("--report-batch-item-failures", action="store_true")
    r.add_argument("--on-failure", default=None,
                   help="file:PATH, sqs:QUEUE_URL, sns:TOPIC_ARN, s3:BUCKET[/PREFIX] or an SQS/SNS/S3 ARN: "
                        "where OnFailure records go (S3 objects carry the payload, as AWS's do)")
    r.add_argument("--filter", action="append", default=[], metavar="PATTERN", dest="filters",
                   help="a FilterCriteria pattern on the record's data, e.g. '{\"data\": {\"temp_c\": "
                        "[{\"numeric\": [\">\", 30]}]}}'; repeatable (at most 5, ORed)")
    r.add_argument("--tumbling-window", type=float, default=0.0, help="seconds, 0..900")
    r.add_argument("--function-name", default="streamkit-local-function")
    r.add_argument("--checkpoint", default=None,
                   help="sqlite:PATH or dynamodb:TABLE: keep the position per shard there, so a restart resumes")
    r.add_argument("--stop-after-idle", type=float, default=None, help="stop once idle for SECONDS")
    add_template_options(r)
    add_environment_options(r)
    remember_defaults(r)
    r.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    if args.template is not None:
        return run_template(args)
    if args.function is not None or args.parameter_overrides:
        raise ConfigurationError("--function and --parameter-overrides go with --template FILE")
    if not args.stream or not args.handler:
        raise ConfigurationError("lambda run needs --stream and --handler, or --template FILE")
    from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
    from streamkit.positions import parse_position

    start = parse_position(args.starting_position, accept=("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"),
                           option="--starting-position")
    handler, init_ms = import_timed(args.handler)
    memory = memory_of(args)
    envs = environments(args, handler, init_ms=init_ms, memory_mb=memory, template=False,
                        spec=handler_spec(args.handler))
    metrics = metrics_from_args(args)
    require_streams(args, [args.stream])
    config = EsmConfig(batch_size=args.batch_size, batching_window=args.batching_window,
                       starting_position=start.kind,  # type: ignore[arg-type]  # accept= excludes AT_SEQUENCE_NUMBER
                       starting_position_timestamp=start.epoch_seconds, filter_criteria=tuple(args.filters),
                       parallelization_factor=args.parallelization_factor, bisect_on_error=args.bisect_on_error,
                       max_retry_attempts=args.max_retry_attempts, max_record_age=args.max_record_age,
                       report_batch_item_failures=args.report_batch_item_failures, on_failure=args.on_failure,
                       tumbling_window=args.tumbling_window, function_name=args.function_name,
                       region=flag(args, "region") or "us-east-1", memory_size=memory)
    esm = EventSourceMapping(args.stream, handler, client=client_for(args, retries=0), config=config,
                             checkpoint_store=checkpoint_store(args), metrics=metrics, environments=envs,
                             on_report=report_printer(args))
    from streamkit.signals import SignalSeen, stopping_on_signals

    error: StreamkitError | None = None
    seen = SignalSeen()
    try:
        with stopping_on_signals(esm.stop, hold=True) as seen:  # SIGTERM, Ctrl-C: finish the batches in flight, then the summary
            stats = esm.run(stop_after_idle=args.stop_after_idle)
    except StreamkitError as exc:  # no progress (a poison batch under the defaults): the summary, then why
        error, stats = exc, esm.stats
    finally:
        envs.close()
        if metrics is not None:
            metrics.close()
    s = stats.to_json()
    s["ended"] = why_it_ended(seen.name, error, args.stop_after_idle)
    if error is not None:
        s["error"] = str(error)
    reports = report_summary(esm.invoker.reports)
    if flag(args, "json"):
        emit_json({**s, "invocation_reports": reports})
    else:
        print(f"{s['invocations']} invocations, {s['records_succeeded']} records succeeded, "
              f"{s['function_errors']} function errors, {s['partial_failures']} partial failures, "
              f"{s['records_discarded']} records discarded; {s['ended']}"
              + (f", {s['records_filtered_out']} of {s['records_polled']} records filtered out" if args.filters else ""))
        if reports["duration_ms"]:
            print(summary_line(reports))
    if error is not None:
        print_err(f"streamkit: error: {error}")
        return 1
    return 0
