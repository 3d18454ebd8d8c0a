"""`streamkit tail STREAM`: print a stream's user records, deaggregated and decoded, one line each."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import orjson

from streamkit.cli.common import body_from_arg, client_for, flag, print_err
from streamkit.errors import ConfigurationError, StreamkitError, ThrottledError
from streamkit.positions import POSITION_HELP, parse_position

#: Seconds between two notices of failed reads (throttled or not) for one shard.
THROTTLE_NOTICE_INTERVAL = 5.0
_CONTROL = {c: f"\\x{c:02x}" for c in range(32)} | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tail", help="print a stream's records, deaggregated and decoded", parents=parents,
                       description="Print a stream's user records (KPL aggregates unpacked), one line each, from "
                                   "every shard (or --shard), until caught up or, with --follow, until stopped. "
                                   "--json prints one JSON object per line (JSON lines).")
    p.add_argument("stream", help="stream name or ARN")
    p.add_argument("--from", dest="start", default="latest", help=f"{POSITION_HELP} (default latest)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new records until Ctrl-C or SIGTERM")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="stop after N records")
    p.add_argument("--shard", action="append", default=[], metavar="SHARD_ID",
                   help="read only this shard (repeatable), and its children once it ends")
    p.add_argument("--body", default="auto",
                   help="decode bodies as JSON, UTF-8 text or bytes (base64); auto tries them in that order; "
                        "package.module:Model validates each into the model (a Pydantic model, msgspec Struct, "
                        "dataclass or TypedDict) and shows a record that does not validate with its errors")
    p.add_argument("--key", action="append", default=[], metavar="PARTITION_KEY",
                   help="only records with this partition key (repeatable)")
    p.add_argument("--where", action="append", default=[], metavar="PATTERN",
                   help="only records a filter pattern matches (`lambda run --filter`'s rules, on the data key: "
                        "'{\"data\": {\"temp_c\": [{\"numeric\": [\">\", 30]}]}}'); repeated: any of them")
    p.add_argument("--max-body", type=int, default=1000, metavar="CHARS",
                   help="characters of a body on a text line, the rest elided (0: all; --json prints it whole)")
    p.set_defaults(func=cmd_tail)


def record_line(fields: dict[str, Any], max_body: int) -> str:
    """One text line from `record_json`'s fields: shard, sequence[/sub-sequence], key, arrival, body."""
    kind, body = fields["body_kind"], fields["body"]
    shown = orjson.dumps(body).decode() if kind == "json" else (
        body.translate(_CONTROL) if kind == "text" else f"base64:{body}")
    if max_body and len(shown) > max_body:
        shown = f"{shown[:max_body]}... ({fields['size']:,} bytes)"
    sub = fields["sub_sequence_number"]
    seq = fields["sequence_number"] if sub is None else f"{fields['sequence_number']}/{sub}"
    key = "-" if fields["partition_key"] is None else fields["partition_key"]
    invalid = fields.get("validation_errors")
    if invalid:
        shown += "  INVALID: " + "; ".join(f"{e['field'] or '(body)'}: {e['message']}" for e in invalid)
    return f"{fields['shard_id']}  {seq}  {key}  {fields['arrival'] or '-'}  {shown}"


def cmd_tail(args: argparse.Namespace) -> int:
    from streamkit.aws_lambda.esm_filters import RecordFilter, compile_criteria
    from streamkit.clock import SYSTEM_CLOCK
    from streamkit.signals import stopping_on_signals
    from streamkit.tail import Tail, TailConfig, record_json

    if args.max_body < 0:
        raise ConfigurationError(f"--max-body {args.max_body}: give 0 (all) or more")
    body: Any = body_from_arg(args.body, ("auto", "json", "text", "bytes"))  # a model: imported and checked now
    keys = set(args.key)
    # --limit counts the records printed: with --key or --where the engine cannot count them, so the loop does.
    filtered = bool(keys or args.where)
    config = TailConfig(position=parse_position(args.start), follow=args.follow, shards=tuple(args.shard),
                        limit=None if filtered else args.limit)
    as_json = bool(flag(args, "json"))
    where = RecordFilter(compile_criteria(args.where))  # the mapping's own rules: on the data key, at most 5
    last_notice: dict[str, float] = {}
    mismatched = invalid = 0

    def read_failed(shard_id: str, err: StreamkitError, count: int) -> None:
        now = SYSTEM_CLOCK.monotonic()
        if now - last_notice.get(shard_id, -THROTTLE_NOTICE_INTERVAL) >= THROTTLE_NOTICE_INTERVAL:
            last_notice[shard_id] = now
            if isinstance(err, ThrottledError):
                print_err(f"streamkit: {shard_id} is throttled ({count} time(s) so far): reading more slowly")
            else:
                print_err(f"streamkit: reading {shard_id} failed {count} time(s) in a row ({err}); retrying")

    tail = Tail(args.stream, client=client_for(args, retries=0), config=config, on_read_error=read_failed)
    tail.check()  # the stream and the shards named exist, before anything is printed
    out = sys.stdout
    printed = 0
    limited = False
    try:
        with stopping_on_signals(tail.stop, hold=True):
            for rec in tail.records():
                if keys and rec.partition_key not in keys:
                    continue
                if where and not where.keep(rec.data):
                    continue
                fields = record_json(rec, body)
                if fields["body_kind"] == "base64" and body in ("json", "text"):
                    mismatched += 1
                if "validation_errors" in fields:
                    invalid += 1
                line = orjson.dumps(fields).decode() if as_json else record_line(fields, args.max_body)
                out.write(line + "\n")
                printed += 1
                if args.follow:
                    out.flush()
                if filtered and args.limit is not None and printed >= args.limit:
                    limited = True
                    break
        tail.stop()
        out.flush()
    except BrokenPipeError:  # `streamkit tail ... | head`: the reader has seen enough
        tail.stop()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    stats = tail.stats
    why = f"--limit {args.limit} reached" if limited else \
        {"caught up": "caught up", "limit": f"--limit {args.limit} reached", "stopped": "stopped"}[stats.ended_by]
    note = f"; {mismatched} not {args.body}, shown as base64" if mismatched else ""
    if not isinstance(body, str):
        note += f"; {invalid} did not validate as {args.body}"
    throttles = f"; throttled {stats.throttled} time(s)" if stats.throttled else ""
    print_err(f"streamkit: {printed:,} record(s) from {len(stats.shards_read)} shard(s); {why}{note}{throttles}")
    return 0
