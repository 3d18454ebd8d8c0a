"""SqliteCheckpointStore: leases and checkpoints in one SQLite file; the embedded, crash-safe default.

Every write is its own transaction in WAL mode with ``synchronous=FULL``: once `update_lease`
returns, the checkpoint survives a SIGKILL of the process (and a power cut, as far as the disk
honours fsync). Several processes on one machine may share the file.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import orjson

from streamkit.checkpoints.base import KEEP_OWNER, NO_OWNER_CHECK
from streamkit.checkpoints.model import Checkpoint, Lease, split_lease_key
from streamkit.errors import CheckpointError
from streamkit.files import private_file

__all__ = ["SqliteCheckpointStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    namespace TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    owner TEXT,
    counter INTEGER NOT NULL,
    checkpoint TEXT NOT NULL,
    sub_sequence INTEGER,
    checkpoint_timestamp REAL,
    parent_shard_ids TEXT NOT NULL,
    owner_switches INTEGER NOT NULL DEFAULT 0,
    checkpoint_owner TEXT,
    throughput_kbps REAL,
    PRIMARY KEY (namespace, shard_id)
)
"""
#: Columns added since the first schema: added to an older file when it is opened.
_ADDED = {"checkpoint_owner": "TEXT", "throughput_kbps": "REAL"}
# `shard_id` holds the lease's key (the shard id, or stream:shard for several streams).
_COLUMNS = ("shard_id, owner, counter, checkpoint, sub_sequence, checkpoint_timestamp, parent_shard_ids, owner_switches, "
            "checkpoint_owner, throughput_kbps")


def _row_to_lease(row: tuple[object, ...]) -> Lease:
    key, owner, counter, cp, sub, ts, parents, switches, cp_owner, kbps = row
    stream, shard_id = split_lease_key(str(key))
    return Lease(shard_id=shard_id, stream=stream, owner=None if owner is None else str(owner),
                 counter=int(counter),  # type: ignore[call-overload]
                 checkpoint=Checkpoint(str(cp), None if sub is None else int(sub),  # type: ignore[call-overload]
                                       None if ts is None else float(ts)),  # type: ignore[arg-type]
                 parent_shard_ids=tuple(orjson.loads(str(parents))), owner_switches=int(switches),  # type: ignore[call-overload]
                 checkpoint_owner=None if cp_owner is None else str(cp_owner),
                 throughput_kbps=None if kbps is None else float(kbps))  # type: ignore[arg-type]


class SqliteCheckpointStore:
    def __init__(self, path: str | Path) -> None:
        self.path = private_file(path, what="checkpoint database")
        try:
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
            have = {row[1] for row in self._db.execute("PRAGMA table_info(leases)")}
            for column, kind in _ADDED.items():
                if column not in have:
                    self._db.execute(f"ALTER TABLE leases ADD COLUMN {column} {kind}")
        except sqlite3.Error as exc:
            raise CheckpointError(f"cannot open checkpoint database {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple[object, ...]) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise CheckpointError(f"checkpoint database {self.path}: {exc}") from exc

    def create_lease(self, namespace: str, lease: Lease) -> bool:
        cp = lease.checkpoint
        cur = self._exec(
            f"INSERT OR IGNORE INTO leases (namespace, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (namespace, lease.key, lease.owner, lease.counter, cp.sequence_number, cp.sub_sequence_number,
             cp.timestamp, orjson.dumps(list(lease.parent_shard_ids)).decode(), lease.owner_switches,
             lease.checkpoint_owner, lease.throughput_kbps))
        return cur.rowcount == 1

    def get_lease(self, namespace: str, key: str) -> Lease | None:
        row = self._exec(f"SELECT {_COLUMNS} FROM leases WHERE namespace = ? AND shard_id = ?",
                         (namespace, key)).fetchone()
        return None if row is None else _row_to_lease(row)

    def list_leases(self, namespace: str) -> list[Lease]:
        rows = self._exec(f"SELECT {_COLUMNS} FROM leases WHERE namespace = ? ORDER BY shard_id", (namespace,)).fetchall()
        return [_row_to_lease(r) for r in rows]

    def update_lease(self, namespace: str, key: str, *, expected_counter: int, expected_owner: str | None,
                     owner: str | None = KEEP_OWNER, checkpoint: Checkpoint | None = None,
                     owner_switches: int | None = None, checkpoint_owner: str | None = KEEP_OWNER,
                     throughput_kbps: float | None = None) -> Lease | None:
        sets = ["counter = counter + 1"]
        args: list[object] = []
        if owner is not KEEP_OWNER:
            sets.append("owner = ?")
            args.append(owner)
        if checkpoint is not None:
            sets += ["checkpoint = ?", "sub_sequence = ?", "checkpoint_timestamp = ?"]
            args += [checkpoint.sequence_number, checkpoint.sub_sequence_number, checkpoint.timestamp]
        if owner_switches is not None:
            sets.append("owner_switches = ?")
            args.append(owner_switches)
        if checkpoint_owner is not KEEP_OWNER:
            sets.append("checkpoint_owner = ?")
            args.append(checkpoint_owner)
        if throughput_kbps is not None:
            sets.append("throughput_kbps = ?")
            args.append(throughput_kbps)
        where = "namespace = ? AND shard_id = ? AND counter = ?"
        args += [namespace, key, expected_counter]
        if expected_owner != NO_OWNER_CHECK:
            where += " AND COALESCE(checkpoint_owner, owner) IS ?"  # the actual owner
            args.append(expected_owner)
        # RETURNING reads the row as this statement left it, even with other processes writing.
        row = self._exec(f"UPDATE leases SET {', '.join(sets)} WHERE {where} RETURNING {_COLUMNS}",
                         tuple(args)).fetchone()
        return None if row is None else _row_to_lease(row)

    def delete_lease(self, namespace: str, key: str) -> None:
        self._exec("DELETE FROM leases WHERE namespace = ? AND shard_id = ?", (namespace, key))
