"""`streamkit kcl run`: what the MultiLangDaemon did for a kclpy application, without the JVM.

``streamkit kcl run --properties app.properties --processor sample_kclpy_app:RecordProcessor`` reads
the daemon's properties file and runs the processor class (a kclpy one, unchanged, or a streamkit
`RecordProcessor`) on the application's KCL lease table.
"""

from __future__ import annotations

import argparse
from typing import Any

from streamkit.cli.common import add_metrics_options, client_for, flag, import_callable, metrics_from_args
from streamkit.errors import ConfigurationError, StreamNotFoundError


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("kcl", help="run a kclpy application from its MultiLangDaemon properties, without a JVM",
                       parents=parents)
    kcl = p.add_subparsers(dest="kcl_command", required=True, metavar="ACTION")
    run = kcl.add_parser("run", help="run the processor class on the application's KCL lease table",
                         parents=parents)
    run.add_argument("--properties", required=True, help="the MultiLangDaemon properties file (streamName, "
                                                         "applicationName, failoverTimeMillis, ...)")
    run.add_argument("--processor", required=True,
                     help="package.module:Class, the record processor (kclpy's or a streamkit RecordProcessor)")
    run.add_argument("--dynamodb-endpoint-url", default=None,
                     help="DynamoDB endpoint (default: the file's dynamoDBEndpoint, then $AWS_ENDPOINT_URL_DYNAMODB)")
    run.add_argument("--stop-after-idle", type=float, default=None, help="stop once no records came for SECONDS")
    add_metrics_options(run)
    run.set_defaults(func=cmd_kcl_run)


def cmd_kcl_run(args: argparse.Namespace) -> int:
    from streamkit.cli.consume_cmd import run_and_summarise
    from streamkit.consumer.kclpy import consumer_from_properties
    from streamkit.consumer.processor import RecordProcessor

    processor = import_callable(args.processor)
    if not isinstance(processor, type):
        raise ConfigurationError(f"--processor {args.processor!r}: name a class (one instance is made per shard)")
    # --endpoint-url / --dynamodb-endpoint-url win over the file's kinesisEndpoint / dynamoDBEndpoint.
    client = client_for(args, retries=0) if flag(args, "endpoint_url") else None
    dynamodb = client_for(args, "dynamodb") if flag(args, "dynamodb_endpoint_url") else None
    metrics = metrics_from_args(args)
    try:
        consumer = consumer_from_properties(args.properties, processor, client=client, dynamodb_client=dynamodb,
                                            metrics=metrics, streamkit_processor=issubclass(processor, RecordProcessor))
    except StreamNotFoundError as exc:  # checked before the lease table is created: nothing is left behind
        raise ConfigurationError(f"{exc} (nothing was created)") from None
    return run_and_summarise(consumer, args, metrics)
