"""`streamkit stream create|describe|update|delete`, with the 2025-26 settings (record size, distribution, mode)."""

from __future__ import annotations

import argparse
from typing import Any

from streamkit import kinesis
from streamkit.cli.common import client_for, emit_json, flag
from streamkit.errors import ConfigurationError, KinesisError
from streamkit.transport import as_kinesis

#: botocore retries for the admin calls: a throttled call is retried; a dead endpoint is said in ~2 s.
ADMIN_RETRIES = 2


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("stream", help="create, describe, update or delete a stream", parents=parents)
    ssub = p.add_subparsers(dest="stream_command", required=True, metavar="create|describe|update|delete")
    c = ssub.add_parser("create", help="create a stream and wait until it is ACTIVE", parents=parents)
    c.add_argument("name", help="stream name (or ARN)")
    mode = c.add_mutually_exclusive_group()
    mode.add_argument("--shards", type=int, default=None, help="provisioned, with N shards (default 1)")
    mode.add_argument("--on-demand", action="store_true", help="on-demand capacity (starts with 4 shards)")
    c.add_argument("--max-record-size", default=None, help="1MiB..10MiB (MaxRecordSizeInKiB; default 1 MiB)")
    c.add_argument("--distribution", choices=("auto", "user-partition-key"), default=None,
                   help="auto: the service places records and ignores keys (on-demand streams only)")
    c.set_defaults(func=cmd_create)
    u = ssub.add_parser("update", help="change a stream's record size, distribution or capacity mode", parents=parents)
    u.add_argument("name", help="stream name (or ARN)")
    u.add_argument("--max-record-size", default=None, help="1MiB..10MiB")
    u.add_argument("--distribution", choices=("auto", "user-partition-key"), default=None)
    u.add_argument("--mode", choices=("on-demand", "provisioned"), default=None)
    u.add_argument("--warm-throughput", type=int, default=None, metavar="MIBPS",
                   help="warm throughput in MiB/s (on-demand Advantage)")
    u.set_defaults(func=cmd_update)
    d = ssub.add_parser("describe", help="show a stream's summary and shards", parents=parents)
    d.add_argument("name")
    d.set_defaults(func=cmd_describe)
    x = ssub.add_parser("delete", help="delete a stream", parents=parents)
    x.add_argument("name")
    x.set_defaults(func=cmd_delete)


def _describe(client: Any, name: str) -> dict[str, Any]:
    summary = kinesis.describe_stream(client, name)
    shards = kinesis.list_shards(client, name)
    return {
        "stream_name": summary.name,
        "stream_arn": summary.arn,
        "status": summary.status,
        "stream_mode": summary.stream_mode,
        "max_record_size_kib": summary.max_record_size_kib,
        "record_distribution": summary.record_distribution,
        "warm_throughput_mibps": summary.warm_throughput_mibps,
        "retention_hours": summary.retention_hours,
        "open_shards": summary.open_shards,
        "shards": [
            {
                "shard_id": s.shard_id,
                "starting_hash_key": str(s.starting_hash_key),
                "ending_hash_key": str(s.ending_hash_key),
                "parent_shard_id": s.parent_shard_id,
                "adjacent_parent_shard_id": s.adjacent_parent_shard_id,
                "open": s.is_open,
            }
            for s in shards
        ],
    }


def _print(desc: dict[str, Any]) -> None:
    print(f"{desc['stream_name']}  {desc['status']}  {desc['stream_mode']}  {desc['open_shards']} open shards  "
          f"retention {desc['retention_hours']} h  max record {desc['max_record_size_kib']} KiB  "
          f"distribution {desc['record_distribution']}"
          + (f"  warm {desc['warm_throughput_mibps']} MiB/s" if desc["warm_throughput_mibps"] else ""))
    for s in desc["shards"]:
        state = "open" if s["open"] else "closed"
        parents = ",".join(p for p in (s["parent_shard_id"], s["adjacent_parent_shard_id"]) if p)
        print(f"  {s['shard_id']}  {state:<6}  [{s['starting_hash_key']}, {s['ending_hash_key']}]"
              + (f"  parents {parents}" if parents else ""))


def _kib(text: str | None) -> int | None:
    if text is None:
        return None
    from streamkit.cli.estimate_cmd import parse_size

    size = parse_size(text)
    if not 1024 * 1024 <= size <= 10 * 1024 * 1024:
        raise ConfigurationError(f"--max-record-size {text}: must be 1MiB to 10MiB")
    return int(size // 1024)


def _strategy(text: str | None) -> str | None:
    return None if text is None else text.upper().replace("-", "_")


def cmd_create(args: argparse.Namespace) -> int:
    client = client_for(args, retries=ADMIN_RETRIES)
    if args.distribution == "auto" and not args.on_demand:
        raise ConfigurationError("--distribution auto needs --on-demand (AWS allows it on on-demand streams only)")
    shards = 1 if args.shards is None and not args.on_demand else args.shards
    if shards is not None and shards < 1:
        raise ConfigurationError(f"--shards must be a whole number of at least 1, got {shards}")
    transport = as_kinesis(client)
    try:
        transport.create_stream(args.name, shards, on_demand=args.on_demand,
                                max_record_size_kib=_kib(args.max_record_size), distribution=_strategy(args.distribution))
    except KinesisError as exc:
        if args.on_demand and "shardCount" in str(exc):  # kinesalite knows no stream modes
            raise ConfigurationError(
                "--on-demand: this Kinesis server knows no on-demand streams (plain kinesalite); start the local "
                "stack with `streamkit local up --enforce-limits` (its proxy adds stream modes), or create the "
                "stream with --shards N") from None
        raise
    kinesis.wait_for_stream(transport, args.name)
    desc = _describe(client, args.name)
    emit_json(desc) if flag(args, "json") else _print(desc)
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    if args.max_record_size is None and args.distribution is None and args.mode is None:
        raise ConfigurationError("nothing to update: give --max-record-size, --distribution or --mode")
    transport = as_kinesis(client_for(args, retries=ADMIN_RETRIES))
    if args.mode is not None:
        transport.update_stream_mode(args.name, args.mode.upper().replace("-", "_"),
                                     warm_throughput_mibps=args.warm_throughput)
    if args.max_record_size is not None:
        transport.update_max_record_size(args.name, _kib(args.max_record_size) or 1024)
    if args.distribution is not None:
        transport.update_record_distribution(args.name, _strategy(args.distribution) or "USER_PARTITION_KEY")
    desc = _describe(transport, args.name)
    emit_json(desc) if flag(args, "json") else _print(desc)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    desc = _describe(client_for(args, retries=ADMIN_RETRIES), args.name)
    emit_json(desc) if flag(args, "json") else _print(desc)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    kinesis.delete_stream(client_for(args, retries=ADMIN_RETRIES), args.name)
    if flag(args, "json"):
        emit_json({"deleted": args.name})
    else:
        print(f"deleted {args.name}")
    return 0
