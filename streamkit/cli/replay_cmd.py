"""`streamkit replay`: put dead-lettered records back on a stream."""

from __future__ import annotations

import argparse
from typing import Any

from streamkit.cli.common import client_for, emit_json, flag, why_it_ended


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", help="re-publish dead-lettered records (file:, sqs: or s3:) to a stream",
                       parents=parents)
    p.add_argument("--from", dest="source", required=True,
                   help="file:PATH, sqs:QUEUE_URL (also a queue subscribed to an SNS destination) or s3:BUCKET[/PREFIX]")
    p.add_argument("--stream", required=True, help="stream to publish to")
    p.add_argument("--source-stream", default=None,
                   help="stream to read payloads from for OnFailure records that carry only metadata "
                        "(default: the stream named in each record's ARN)")
    p.add_argument("--delete", action="store_true", help="delete an SQS message once every record of its letter is acknowledged")
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    import threading

    from producer.replay import replay
    from streamkit.signals import stopping_on_signals

    stop = threading.Event()
    with stopping_on_signals(stop.set, hold=True) as seen:  # SIGTERM or Ctrl-C: read no more letters, write those read, summarise
        result = replay(args.source, args.stream, client=client_for(args, retries=0),
                        sqs_client=client_for(args, "sqs") if args.source.startswith("sqs:") else None,
                        s3_client=client_for(args, "s3") if args.source.startswith("s3:") else None,
                        source_stream=args.source_stream, delete=args.delete, stop=stop)
    summary: dict[str, Any] = {**result, "ended": why_it_ended(seen.name, None, None, otherwise="end of the source")}
    if flag(args, "json"):
        emit_json(summary)
    else:
        print(f"re-published {result['records']} record(s) from {result['letters']} dead letter(s) to {args.stream}; "
              f"{result['failed']} failed" + (f"; {summary['ended']} before the end of the source"
                                              if result["stopped"] else ""))
    return 1 if result["failed"] else 0
