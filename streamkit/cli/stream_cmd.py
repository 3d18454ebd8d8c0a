"""`streamkit stream create|describe|delete`."""

from __future__ import annotations

import argparse
from typing import Any

from streamkit import kinesis
from streamkit.cli.common import client_for, emit_json, flag


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("stream", help="create, describe or delete a stream", parents=parents)
    ssub = p.add_subparsers(dest="stream_command", required=True, metavar="create|describe|delete")
    c = ssub.add_parser("create", help="create a stream and wait until it is ACTIVE", parents=parents)
    c.add_argument("name")
    c.add_argument("--shards", type=int, default=1)
    c.set_defaults(func=cmd_create)
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
    print(f"{desc['stream_name']}  {desc['status']}  {desc['open_shards']} open shards  retention {desc['retention_hours']} h")
    for s in desc["shards"]:
        state = "open" if s["open"] else "closed"
        parents = ",".join(p for p in (s["parent_shard_id"], s["adjacent_parent_shard_id"]) if p)
        print(f"  {s['shard_id']}  {state:<6}  [{s['starting_hash_key']}, {s['ending_hash_key']}]"
              + (f"  parents {parents}" if parents else ""))


def cmd_create(args: argparse.Namespace) -> int:
    client = client_for(args)
    kinesis.create_stream(client, args.name, args.shards)
    desc = _describe(client, args.name)
    emit_json(desc) if flag(args, "json") else _print(desc)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    desc = _describe(client_for(args), args.name)
    emit_json(desc) if flag(args, "json") else _print(desc)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    kinesis.delete_stream(client_for(args), args.name)
    if flag(args, "json"):
        emit_json({"deleted": args.name})
    else:
        print(f"deleted {args.name}")
    return 0
