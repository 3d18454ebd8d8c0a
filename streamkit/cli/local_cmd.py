"""`streamkit local up|down|status`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streamkit.cli.common import emit_json, flag, print_err
from streamkit.local import stack as local_stack
from streamkit.local.faults import FAULT_KEYS


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("local", help="run local Kinesis and DynamoDB servers on 127.0.0.1", parents=parents)
    lsub = p.add_subparsers(dest="local_command", required=True, metavar="up|down|status|console")
    up = lsub.add_parser("up", help="install (first time) and start the servers", parents=parents)
    up.add_argument("--backend", choices=local_stack.BACKENDS, default="kinesalite")
    up.add_argument("--data-dir", type=Path, default=None, help="state folder (default: per user)")
    up.add_argument("--kinesis-port", type=int, default=None)
    up.add_argument("--dynamodb-port", type=int, default=None)
    up.add_argument("--in-memory", action="store_true", help="keep no data on disk")
    up.add_argument("--enforce-limits", action="store_true", help="put the limit-enforcing proxy in front")
    up.add_argument("--limit-scale", type=float, default=1.0, help="multiply every shard limit by X (proxy)")
    up.add_argument("--faults", default="", help="fault spec for the proxy: " + "; ".join(
        f"{k}: {v}" for k, v in FAULT_KEYS.items()))
    up.add_argument("--lambda", dest="lambda_functions", action="append", default=[], metavar="NAME=pkg.mod:handler",
                    help="also serve Lambda's Invoke API on 127.0.0.1, running these handlers (repeatable)")
    up.add_argument("--restart", action="store_true",
                    help="replace a stack already running from the data dir with different settings")
    up.set_defaults(func=cmd_up)
    down = lsub.add_parser("down", help="stop the servers `up` started", parents=parents)
    down.add_argument("--data-dir", type=Path, default=None)
    down.set_defaults(func=cmd_down)
    st = lsub.add_parser("status", help="show the running servers", parents=parents)
    st.add_argument("--data-dir", type=Path, default=None)
    st.set_defaults(func=cmd_status)
    con = lsub.add_parser("console", help="a web page on 127.0.0.1: streams, records, leases, metrics, dead letters",
                          parents=parents)
    con.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one, printed)")
    con.add_argument("--data-dir", type=Path, default=None, help="the local stack's state folder (default: per user)")
    con.add_argument("--dynamodb-endpoint-url", default=None,
                     help="DynamoDB endpoint for lease tables (default: $AWS_ENDPOINT_URL_DYNAMODB or the local stack's)")
    con.add_argument("--metrics-url", action="append", default=[], metavar="URL",
                     help="a Prometheus endpoint to show (http://127.0.0.1:PORT/metrics; repeatable)")
    con.add_argument("--dead-letters", action="append", default=[], metavar="file:PATH|sqs:URL",
                     help="a dead-letter file or queue to show, with a replay button (repeatable)")
    con.add_argument("--sqs-endpoint-url", default=None, help="SQS endpoint for sqs: dead letters "
                                                              "(default: $AWS_ENDPOINT_URL_SQS)")
    con.add_argument("--lease-stream", action="append", default=[], metavar="TABLE=STREAM",
                     help="the stream a KCL single-stream lease table reads, for its lag (repeatable)")
    con.set_defaults(func=cmd_console)


def cmd_up(args: argparse.Namespace) -> int:
    stack = local_stack.up(
        backend=args.backend,
        data_dir=args.data_dir,
        kinesis_port=args.kinesis_port,
        dynamodb_port=args.dynamodb_port,
        persist=not args.in_memory,
        enforce_limits=args.enforce_limits,
        limit_scale=args.limit_scale,
        faults=args.faults,
        lambda_functions=args.lambda_functions,
        restart=args.restart,
    )
    if flag(args, "json"):
        emit_json(stack.to_json())
    else:
        print(f"kinesis   {stack.kinesis_endpoint}   ({stack.backend}{', limits enforced' if stack.enforce_limits else ''})")
        print(f"dynamodb  {stack.dynamodb_endpoint}")
        if stack.lambda_endpoint:
            print(f"lambda    {stack.lambda_endpoint}")
        print(f"export AWS_ENDPOINT_URL_KINESIS={stack.kinesis_endpoint} AWS_ENDPOINT_URL_DYNAMODB={stack.dynamodb_endpoint}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = local_stack.down(data_dir=args.data_dir)
    if flag(args, "json"):
        emit_json({"stopped": [p.name for p in stopped]})
    else:
        print("stopped " + ", ".join(f"{p.name} (pid {p.pid})" for p in stopped) if stopped else "nothing was running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    stack = local_stack.status(data_dir=args.data_dir)
    if flag(args, "json"):
        emit_json(stack.to_json() if stack else {"running": False})
    elif stack is None:
        print("not running")
    else:
        print(f"running: kinesis {stack.kinesis_endpoint} ({stack.backend}), dynamodb {stack.dynamodb_endpoint}")
        for p in stack.processes:
            print(f"  {p.name:<12} pid {p.pid:<8} port {p.port}")
    return 0 if stack else 1


def cmd_console(args: argparse.Namespace) -> int:
    import threading

    from streamkit.local.console import ConsoleConfig, ConsoleServer, endpoints_of, require_flask
    from streamkit.signals import stopping_on_signals

    require_flask()  # Flask is imported only when the app is made: said first, in one line, if it is missing
    kinesis, dynamodb = endpoints_of(flag(args, "endpoint_url"), args.dynamodb_endpoint_url, args.data_dir)
    config = ConsoleConfig(kinesis_endpoint=kinesis, dynamodb_endpoint=dynamodb, region=flag(args, "region"),
                           metrics_urls=tuple(args.metrics_url), dead_letters=tuple(args.dead_letters), port=args.port,
                           sqs_endpoint=args.sqs_endpoint_url, lease_streams=tuple(args.lease_stream))
    server = ConsoleServer(config)
    stop = threading.Event()
    with server, stopping_on_signals(stop.set, hold=True):
        if flag(args, "json"):
            emit_json({"url": server.url, "port": server.port, "kinesis_endpoint": kinesis,
                       "dynamodb_endpoint": dynamodb})
        else:
            print(f"console on {server.url}  (Ctrl-C stops it)", flush=True)
        while not stop.wait(0.5):
            pass
    print_err("streamkit: console stopped")
    return 0
