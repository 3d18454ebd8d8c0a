"""Which layout a DynamoDB lease item is in (streamkit's or the KCL's), and whether it is well formed.

Pure: items are DynamoDB's typed attribute maps. A store reads a few items before its first use and
refuses a table of the other layout, so nothing of one layout is ever written into the other (the
KCL fails every shard with a ValidationException on a streamkit item in its table, and streamkit
would ignore the KCL's checkpoints and re-read the stream).

- streamkit: ``namespace`` (S) and ``shardId`` (S) beside ``leaseKey`` = ``namespace|shardId``.
- KCL (2.x and 3.x): no ``namespace``; any ``entityType`` marks a KCL 3 item (leases are ``LEASE``;
  items of other types are the KCL's own and are never read as leases).
"""

from __future__ import annotations

from typing import Any, Literal

from streamkit.errors import CheckpointError

__all__ = ["Layout", "check_table_layout", "item_layout", "lease_item_problem"]

Layout = Literal["streamkit", "kcl"]
_SEP = "|"
_ENTITY_LEASE = "LEASE"


def _kind(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return next(iter(value)) if isinstance(value, dict) and len(value) == 1 else None


def _key_of(item: dict[str, Any]) -> str:
    value = item.get("leaseKey")
    return str(value.get("S", value)) if isinstance(value, dict) else repr(value)


def item_layout(item: dict[str, Any]) -> Layout:
    """The layout an item was written in: streamkit's items carry their namespace, the KCL's never do."""
    if "entityType" in item:
        return "kcl"
    return "streamkit" if "namespace" in item else "kcl"


def lease_item_problem(item: dict[str, Any], layout: Layout) -> str | None:
    """What is wrong with a lease item of `layout` (None when it can be read as a lease).

    A KCL 3 item whose ``entityType`` is not ``LEASE`` is not a lease and has no problem here."""
    if _kind(item, "leaseKey") != "S":
        return "leaseKey is not a string"
    if layout == "kcl" and _kind(item, "entityType") not in (None, "S"):
        return "entityType is not a string"
    if layout == "kcl" and "entityType" in item and item["entityType"]["S"] != _ENTITY_LEASE:
        return None
    if _kind(item, "leaseCounter") != "N":
        return "leaseCounter is missing or not a number"
    try:
        int(item["leaseCounter"]["N"])
    except ValueError:
        return f"leaseCounter {item['leaseCounter']['N']!r} is not an integer"
    if _kind(item, "checkpoint") != "S":
        kind = _kind(item, "checkpoint")
        return "checkpoint is missing" if kind is None else f"checkpoint is of type {kind}, not a string (S)"
    for name in ("checkpointSubSequenceNumber", "ownerSwitchesSinceCheckpoint"):
        if name in item and _kind(item, name) != "N":
            return f"{name} is not a number"
    if layout == "streamkit":
        if _kind(item, "shardId") != "S" or _kind(item, "namespace") != "S":
            return "namespace or shardId is missing"
        expected = item["namespace"]["S"] + _SEP + item["shardId"]["S"]
        if item["leaseKey"]["S"] != expected:
            return f"leaseKey is not namespace|shardId ({expected!r})"
    return None


def _form(layout: Layout, table: str) -> str:
    if layout == "kcl":
        return f"--checkpoint kcl:{table} (DynamoDBCheckpointStore({table!r}, layout='kcl'))"
    return f"--checkpoint dynamodb:{table} (DynamoDBCheckpointStore({table!r}))"


def check_table_layout(table: str, layout: Layout, items: list[dict[str, Any]]) -> None:
    """Refuse a table whose items are of the other layout, or malformed, in one line naming the fix."""
    for item in items:
        found = item_layout(item)
        if found != layout:
            name = "a KCL lease table" if found == "kcl" else "a streamkit checkpoint table"
            raise CheckpointError(
                f"DynamoDB table {table!r} is {name} (item {_key_of(item)!r}); use {_form(found, table)}, "
                "or another table: streamkit never writes one layout into the other")
        problem = lease_item_problem(item, layout)
        if problem is not None:
            raise CheckpointError(f"DynamoDB table {table!r}: malformed lease item {_key_of(item)!r}: {problem}")
