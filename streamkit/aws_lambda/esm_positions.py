"""The mapping's position per shard: where each shard starts, and the stored position as records finish.

With a checkpoint store, the position of a shard is the last record before the first unfinished one
(`esm_core.ShardProgress`), kept under the mapping's namespace so a restart resumes where the last
run stopped. One writer per shard: this mapping.
"""

from __future__ import annotations

import logging
import threading
from typing import Literal

from streamkit.aws_lambda.esm_core import PendingRecord, ShardProgress
from streamkit.checkpoints.base import CheckpointStore, write_position
from streamkit.checkpoints.model import AT_TIMESTAMP, LATEST, TRIM_HORIZON, Checkpoint, Lease
from streamkit.errors import StreamkitError

__all__ = ["Positions", "initial_position"]

log = logging.getLogger("streamkit.esm")


def initial_position(starting_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"],
                     timestamp: float | None = None, created_at: float | None = None) -> Checkpoint:
    """Where a shard of the mapping's first listing starts when nothing is stored.

    A time before the stream was created means the same as its creation time (no record is older); it
    is asked as that: kinesalite 3.3.3 leaves some AT_TIMESTAMP requests unanswered (seen: 2020-01-01 on
    a 4-shard stream of 500 records; and GetShardIterator for any time on a shard holding no record).
    """
    if starting_position == "AT_TIMESTAMP":
        assert timestamp is not None  # EsmConfig checks it
        return AT_TIMESTAMP(timestamp if created_at is None else max(timestamp, created_at))
    return LATEST if starting_position == "LATEST" else TRIM_HORIZON


class Positions:
    """Leases and progress per shard in `store` (a bare lease per shard without one).

    `lock` is the mapping's shard lock: positions move under it, as shards are discovered and finished.
    """

    def __init__(self, store: CheckpointStore | None, namespace: str, lock: threading.Lock) -> None:
        self.store = store
        self.namespace = namespace
        self.lock = lock
        self._progress: dict[str, ShardProgress] = {}
        self._leases: dict[str, Lease] = {}

    def load(self, shard_id: str) -> Lease:
        """The shard's lease in the store (created at TRIM_HORIZON if new); a bare one without a store."""
        store = self.store
        if store is None:
            return Lease(shard_id=shard_id)
        lease = store.get_lease(self.namespace, shard_id)
        if lease is None:
            store.create_lease(self.namespace, Lease(shard_id=shard_id))
            lease = store.get_lease(self.namespace, shard_id)
        assert lease is not None
        self._leases[shard_id] = lease
        self._progress.setdefault(shard_id, ShardProgress())
        return lease

    def save(self, shard_id: str, checkpoint: Checkpoint) -> None:
        store = self.store
        if store is None:
            return
        lease = self._leases[shard_id]
        new = write_position(store, self.namespace, shard_id, checkpoint, known=lease, attempts=1)
        if new is None:  # another writer changed it (a second mapping on the same store): theirs stands
            log.warning("position of %s changed under the mapping; reloading it", shard_id)
            new = store.get_lease(self.namespace, shard_id) or lease
        self._leases[shard_id] = new

    def read(self, shard_id: str, records: list[PendingRecord]) -> None:
        """Records fetched from the shard, in stream order."""
        if self.store is not None:
            with self.lock:
                self._progress[shard_id].read(records)

    def finished(self, shard_id: str, records: list[PendingRecord]) -> None:
        """Records succeeded or were discarded: move the stored position past those now all finished."""
        if self.store is None or not records:
            return
        with self.lock:
            seq = self._progress[shard_id].finish(records)
            if seq is None:
                return
            try:
                self.save(shard_id, Checkpoint(seq))
            except StreamkitError as exc:
                if not exc.retryable:
                    raise
                # The store does not answer (restarting?): the next finished batch stores a later position,
                # which covers this one; a crash meanwhile redelivers from the last one stored.
                log.warning("could not store the position of %s (%s); storing a later one next time", shard_id, exc)

    def start(self, shard_id: str, *, initial: Checkpoint | None) -> Checkpoint:
        """Where to read `shard_id` from: the stored position, else `initial` (a shard of the first
        listing), else TRIM_HORIZON (a child shard: from its first record)."""
        stored = self._leases.get(shard_id)
        if stored is not None and not stored.checkpoint.is_sentinel:
            return Checkpoint(stored.checkpoint.sequence_number)  # where an earlier run stopped
        return initial if initial is not None else TRIM_HORIZON
