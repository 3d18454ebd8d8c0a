"""How a consumer's cost grows with shards: one worker on the local stack, and a fleet's lease protocol simulated.

Table 1 (``--table worker``): one `Consumer` process on the local stack (kinesalite, leases in dynalite)
holding 1, 16, 64 and 256 shards, idle (no records) and busy (--rate records/s of 100 B spread over
the shards by a separate producer process): its threads, RSS, CPU per second, GetRecords calls per
second per shard, and, for busy shards, the local Kinesis server's CPU apart from the worker's.

Table 2 (``--table leases``): the lease protocol of 50 workers over 1,000 shards on the memory store with
a fake clock, for one simulated hour, then a worker joining, one leaving (stopping) and one dying (no
more renewals). Each worker is a real `Consumer` whose cycle (renewals, the lease scan, `plan_takes`,
takes, graceful handoffs) runs unchanged; only its shard readers are stand-ins that hold their lease,
read nothing, and release it when asked to stop. Counted as DynamoDB would bill it: a Scan by the
bytes of every item it reads, a consistent GetItem one read unit, each write (conditional or not,
succeeding or not) one write unit per KiB. Checked after every cycle: no lease writable by two
workers at once. Beside it, the KCL's cadence at the same lease settings from its documented defaults.

Run: .venv/bin/python bench/scale.py [--table worker|leases|both] [--shards 1,16,64,256] [--window 10]
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamkit.checkpoints import Checkpoint, Lease, MemoryCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
from streamkit.consumer.consumer import _Running
from streamkit.consumer.leases import LeaseHolder, RateMeter
from streamkit.testing import FakeClock, FakeKinesis

# DynamoDB on-demand, us-east-1 list prices after AWS's 1 November 2024 reduction (the DynamoDB pricing
# page, read December 2026): a write request unit covers a write of up to 1 KB, a read request unit a
# strongly consistent read of up to 4 KB.
PRICE_DATE = "us-east-1 on-demand list prices after the 1 Nov 2024 reduction"
WRU_PRICE = 0.625 / 1e6
RRU_PRICE = 0.125 / 1e6
# A lease item as DynamoDBCheckpointStore writes it: key, owner, counter, a 56-digit checkpoint, parents,
# hash range, throughput; measured from `_to_item` of a lease with those fields (see lease_item_bytes()).
NS = "app"


def lease_item_bytes() -> int:
    """The DynamoDB size of a typical lease item: attribute names plus values, as DynamoDB counts them."""
    from streamkit.checkpoints.dynamodb import DynamoDBCheckpointStore

    store = DynamoDBCheckpointStore.__new__(DynamoDBCheckpointStore)
    store._kcl = False  # type: ignore[attr-defined]
    lease = Lease(shard_id="shardId-000000000999", owner="worker-0042-" + "x" * 24, counter=123456,
                  checkpoint=Checkpoint("49590338271490256608559692538361571095921575989136588800", None),
                  throughput_kbps=12.5, hash_key_range=(2**127, 2**128 - 1))
    try:
        item = store._to_item(NS, lease)  # type: ignore[attr-defined]
    except AttributeError:
        return 300
    size = 0
    for name, value in item.items():
        ((_kind, v),) = value.items()
        size += len(name.encode()) + (sum(len(str(x)) for x in v) if isinstance(v, list | tuple) else len(str(v)))
    return size


class CountingStore(MemoryCheckpointStore):
    """The memory store, counting what each call would cost in DynamoDB."""

    def __init__(self, item_bytes: int) -> None:
        super().__init__()
        self.item_bytes = item_bytes
        self.rru = 0.0
        self.wru = 0.0
        self.calls: Counter[str] = Counter()

    def list_leases(self, namespace: str) -> list[Lease]:
        leases = super().list_leases(namespace)
        self.calls["Scan"] += 1
        self.rru += max(1, math.ceil(len(leases) * self.item_bytes / 4096))
        return leases

    def get_lease(self, namespace: str, key: str) -> Lease | None:
        self.calls["GetItem"] += 1
        self.rru += 1
        return super().get_lease(namespace, key)

    def create_lease(self, namespace: str, lease: Lease) -> bool:
        self.calls["PutItem"] += 1
        self.wru += math.ceil(self.item_bytes / 1024)
        return super().create_lease(namespace, lease)

    def update_lease(self, namespace: str, key: str, **kw: Any) -> Lease | None:  # type: ignore[override]
        self.calls["UpdateItem"] += 1
        self.wru += math.ceil(self.item_bytes / 1024)
        return super().update_lease(namespace, key, **kw)


class _Stats:
    bytes = 0
    records = 0
    dead_lettered = 0
    corrupt = 0


class _StandIn:
    """A shard reader that holds its lease and reads nothing; asked to stop, it releases the lease (as a
    ShardConsumer does after its last batch and checkpoint)."""

    def __init__(self, holder: LeaseHolder) -> None:
        self.holder = holder
        self.finished = threading.Event()
        self.stats = _Stats()
        self.error: BaseException | None = None


class _NoThread:
    def join(self, timeout: float | None = None) -> None:
        return None

    def is_alive(self) -> bool:
        return False


class SimWorker(Consumer):
    """A Consumer whose shard readers are stand-ins (no thread, no Kinesis reads)."""

    def _launch(self, holder: LeaseHolder) -> None:
        with self._lock:
            self._shards[holder.key] = _Running(_StandIn(holder), _NoThread(), threading.Event(),  # type: ignore[arg-type]
                                                RateMeter(self._clock.monotonic))

    def settle(self) -> None:
        """Stand-ins asked to stop (a handoff, or the worker stopping) release their leases."""
        with self._lock:
            runs = list(self._shards.values())
        for run in runs:
            if (run.stop.is_set() or self._stopping.is_set()) and not run.sc.finished.is_set():
                run.sc.holder.release()
                run.sc.finished.set()

    def held(self) -> set[str]:
        with self._lock:
            return {k for k, r in self._shards.items() if not r.sc.finished.is_set() and not r.sc.holder.lost.is_set()}


@dataclass(order=True)
class _Due:
    at: float
    n: int
    worker: SimWorker = field(compare=False)


class Fleet:
    def __init__(self, shards: int, config: ConsumerConfig, item_bytes: int) -> None:
        self.clock = FakeClock()
        self.kinesis = FakeKinesis(shards=shards, clock=self.clock)
        self.store = CountingStore(item_bytes)
        self.config = config
        self.queue: list[_Due] = []
        self.n = 0
        self.workers: dict[str, SimWorker] = {}
        self.double_owned = 0
        self.sync_due: dict[str, float] = {}
        self.shards = shards

    def add(self, name: str) -> SimWorker:
        cfg = ConsumerConfig(**{**{f: getattr(self.config, f) for f in ("lease_duration", "graceful_handoff")},
                                "worker_id": name})
        w = SimWorker("sim", lambda r: None, application_name=NS, checkpoint_store=self.store, client=self.kinesis,
                      config=cfg, clock=self.clock)
        w.namespace = NS
        assert w._start(None)
        self.workers[name] = w
        self.sync_due[name] = self.clock.monotonic() + w.config.seconds.shard_sync_interval
        self._schedule(w, 0.0)
        return w

    def _schedule(self, w: SimWorker, after: float) -> None:
        self.n += 1
        heapq.heappush(self.queue, _Due(self.clock.monotonic() + after, self.n, w))

    def remove(self, name: str, *, graceful: bool) -> None:
        w = self.workers.pop(name)
        if graceful:
            w.stop()
            w.settle()
            w._reap()
        self.queue = [d for d in self.queue if d.worker is not w]
        heapq.heapify(self.queue)

    def run_until(self, t_end: float, until: Any = None) -> float | None:
        """Cycles in time order until `t_end` (or until `until()` holds after a cycle: returns that time)."""
        while self.queue and self.queue[0].at <= t_end:
            due = heapq.heappop(self.queue)
            w = due.worker
            if w.worker_id not in self.workers:
                continue
            self.clock.advance(due.at - self.clock.monotonic())
            w._cycle()
            w.settle()
            if self.clock.monotonic() >= self.sync_due[w.worker_id]:
                w._sync_shards_safely([])
                self.sync_due[w.worker_id] = self.clock.monotonic() + w.config.seconds.shard_sync_interval
            woke = w._wake.is_set()
            w._wake.clear()
            self._schedule(w, 0.01 if woke else w._next_wait(None))
            self._check(w)
            if until is not None and until():
                return self.clock.monotonic()
        self.clock.advance(max(0.0, t_end - self.clock.monotonic()))
        return None

    def _check(self, w: SimWorker) -> None:
        """No lease writable by two workers: after `w`'s cycle, none of its leases is writable by another (a
        worker can write a lease only while it holds the store's counter as its owner)."""
        for key in w.held():
            stored = self.store.get_lease_quietly(key)  # type: ignore[attr-defined]
            writers = 0
            for other in self.workers.values():
                run = other._shards.get(key)
                if run is None or run.sc.finished.is_set() or run.sc.holder.lost.is_set():
                    continue
                if stored is not None and run.sc.holder.lease.counter == stored.counter and \
                        stored.actual_owner == other.worker_id:
                    writers += 1
            self.double_owned += writers > 1

    def balanced(self) -> bool:
        counts = [len(w.held()) for w in self.workers.values()]
        return sum(counts) == self.shards and max(counts) - min(counts) <= 1


def _quiet_get(self: CountingStore, key: str) -> Lease | None:
    return MemoryCheckpointStore.get_lease(self, NS, key)


CountingStore.get_lease_quietly = _quiet_get  # type: ignore[attr-defined]


def simulate(shards: int, workers: int, hours: float) -> None:
    import logging

    logging.getLogger("streamkit").setLevel(logging.ERROR)  # takes, handoffs and waits: thousands of lines
    config = ConsumerConfig()
    item = lease_item_bytes()
    fleet = Fleet(shards, config, item)
    t0 = time.perf_counter()
    for i in range(workers):
        fleet.add(f"worker-{i:03d}")
    start = fleet.clock.monotonic()
    first = fleet.run_until(start + 3600 * hours, until=fleet.balanced)
    balanced_at = None if first is None else first - start
    fleet.run_until(start + 3600 * hours)
    hour_rru, hour_wru, hour_calls = fleet.store.rru, fleet.store.wru, Counter(fleet.store.calls)
    events = []
    for what in ("a worker joins", "a worker leaves (stops)", "a worker dies (no more renewals)"):
        now = fleet.clock.monotonic()
        if what.startswith("a worker joins"):
            fleet.add(f"worker-{workers:03d}")
        elif "leaves" in what:
            fleet.remove("worker-000", graceful=True)
        else:
            fleet.remove("worker-001", graceful=False)
        done = fleet.run_until(now + 900, until=fleet.balanced)
        events.append((what, None if done is None else done - now))
        fleet.run_until(fleet.clock.monotonic() + 60)
    wall = time.perf_counter() - t0
    shard_hours = shards * hours
    d = config.seconds
    print(f"lease protocol, {workers} workers over {shards:,} shards, {hours:g} simulated hour(s) on the memory store "
          f"with a fake clock ({wall:.0f} s of real time); lease_duration {d.lease_duration:g} s, renewals every "
          f"{d.renew_interval:.2f} s, a lease item of ~{item} B")
    print()
    print(f"{'':<44} {'streamkit':>12} {'KCL (computed)':>16}")
    kcl_renew = d.lease_duration * 1000 / 3 - 25  # ms: renewer every failoverTime/3 - epsilon (25 ms)
    kcl_taker = (d.lease_duration * 1000 + 25) * 2  # ms: taker every (failoverTime + epsilon) * 2, a full Scan
    kcl_wru = 3600_000 / kcl_renew * math.ceil(item / 1024)
    scan_rru = max(1, math.ceil(shards * item / 4096))
    kcl_rru = workers * 3600_000 / kcl_taker * scan_rru / shards
    sk_wru = hour_wru / shard_hours
    sk_rru = hour_rru / shard_hours
    print(f"{'writes per shard-hour (write units)':<44} {sk_wru:>12,.0f} {kcl_wru:>16,.0f}")
    print(f"{'reads per shard-hour (read units)':<44} {sk_rru:>12,.0f} {kcl_rru:>16,.0f}")
    sk_cost = sk_wru * WRU_PRICE + sk_rru * RRU_PRICE
    kcl_cost = kcl_wru * WRU_PRICE + kcl_rru * RRU_PRICE
    print(f"{'$ per shard-hour, DynamoDB on-demand':<44} {sk_cost:>12.6f} {kcl_cost:>16.6f}")
    print(f"{'$ per month for these shards (730 h)':<44} {sk_cost * shards * 730:>12,.2f} "
          f"{kcl_cost * shards * 730:>16,.2f}")
    print(f"  ({PRICE_DATE}: ${WRU_PRICE * 1e6:.3f} per million write units, ${RRU_PRICE * 1e6:.3f} per million "
          f"read units; the KCL column: renewals every failoverTime/3 - 25 ms, one full Scan per worker every "
          f"(failoverTime + 25 ms) x 2 ({kcl_taker / 1000:.1f} s), KCL 2.x's defaults; KCL 3's leader scans "
          f"once for all workers and adds its worker-metrics table)")
    print(f"  calls in the hour: {', '.join(f'{k} {v:,}' for k, v in sorted(hour_calls.items()))}")
    print()
    print(f"time until balanced (every shard held, counts within 1): start {_secs(balanced_at)}; "
          + "; ".join(f"{what} {_secs(t)}" for what, t in events))
    print(f"double ownership (a lease writable by two workers at once), checked after every cycle: "
          f"{fleet.double_owned}")


def _secs(t: float | None) -> str:
    return "not within 15 min" if t is None else f"{t:.1f} s"


# ----- table 1: one worker on the local stack -----

WORKER = r"""
import os, sys, threading, time, json
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from streamkit.aws.clients import aws_client
from streamkit.checkpoints.dynamodb import DynamoDBCheckpointStore
from streamkit.consumer import Consumer, ConsumerConfig
stream, kinesis_url, dynamo_url, table = sys.argv[2:6]
client = aws_client("kinesis", endpoint_url=kinesis_url)
calls = [0]
client.meta.events.register("before-call.kinesis.GetRecords", lambda **kw: calls.__setitem__(0, calls[0] + 1))
store = DynamoDBCheckpointStore(table, client=aws_client("dynamodb", endpoint_url=dynamo_url))
seen = [0]
consumer = Consumer(stream, lambda r: seen.__setitem__(0, seen[0] + 1), application_name="scale",
                    checkpoint_store=store, client=client, config=ConsumerConfig(initial_position="LATEST"))
runner = threading.Thread(target=consumer.run, kwargs={"install_signal_handlers": False}, daemon=True)
runner.start()
for line in sys.stdin:  # the parent asks for a sample; "stop" ends
    if line.strip() == "stop":
        break
    status = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines() if ":" in l)
    print(json.dumps({"cpu": time.process_time(), "t": time.monotonic(), "calls": calls[0], "records": seen[0],
                      "threads": int(status["Threads"]), "rss_kib": int(status["VmRSS"].split()[0]),
                      "leases": sum(1 for s in consumer.shard_stats())}), flush=True)
consumer.stop()
runner.join(60)  # leases released, connections closed: a process leaving mid-request resets dynalite's socket
"""

PRODUCER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from producer import Producer, ProducerConfig
from streamkit.aws.clients import aws_client
stream, url, rate, seconds = sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
client = aws_client("kinesis", endpoint_url=url)
body = b"x" * 100
with Producer(stream, client=client, config=ProducerConfig(aggregation=False)) as p:
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:  # bounded: --window plus warm-up
        p.send(body, f"key-{i}")
        i += 1
        time.sleep(max(0.0, t0 + i / rate - time.monotonic()))
"""


def _proc_cpu(pid: int | None) -> float:
    """CPU seconds a local server has used (its process, all threads); NaN when it is not known."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_table(shard_counts: list[int], window: float, rate: float) -> None:
    import json

    from streamkit import kinesis as sk_kinesis
    from streamkit.aws.clients import aws_client
    from streamkit.local import stack as local_stack

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    root = str(Path(__file__).resolve().parent.parent)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        stack = local_stack.up(data_dir=Path(tmp), persist=False)
        try:
            server = next((p.pid for p in stack.processes if p.name == stack.backend), None)
            dynalite = next((p.pid for p in stack.processes if p.name == "dynalite"), None)
            client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint)
            for n in shard_counts:
                for busy in (False, True):
                    stream = f"scale-{n}-{'busy' if busy else 'idle'}"
                    sk_kinesis.create_stream(client, stream, n)
                    worker = subprocess.Popen([sys.executable, "-c", WORKER, root, stream, stack.kinesis_endpoint,
                                               stack.dynamodb_endpoint, "scale-leases"],
                                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                    assert worker.stdin is not None and worker.stdout is not None

                    def sample(worker: subprocess.Popen[str] = worker) -> dict[str, Any]:
                        assert worker.stdin is not None and worker.stdout is not None
                        worker.stdin.write("x\n")
                        worker.stdin.flush()
                        return dict(json.loads(worker.stdout.readline()))

                    for _ in range(240):  # bounded: until it holds every lease (up to 2 min)
                        if sample()["leases"] >= n:
                            break
                        time.sleep(0.5)
                    prod = None
                    if busy:
                        prod = subprocess.Popen([sys.executable, "-c", PRODUCER, root, stream,
                                                 stack.kinesis_endpoint, str(rate), str(window + 30)])
                        for _ in range(120):  # bounded: until the worker receives records (up to 1 min)
                            if sample()["records"] > 0:
                                break
                            time.sleep(0.5)
                    time.sleep(3)  # settle
                    a, sa, da = sample(), _proc_cpu(server), _proc_cpu(dynalite)
                    time.sleep(window)
                    b, sb, db = sample(), _proc_cpu(server), _proc_cpu(dynalite)
                    dt = b["t"] - a["t"]
                    rows.append((n, "busy" if busy else "idle", b["threads"], b["rss_kib"] / 1024,
                                 (b["cpu"] - a["cpu"]) / dt, (b["calls"] - a["calls"]) / dt / n,
                                 (b["records"] - a["records"]) / dt, (sb - sa) / dt, (db - da) / dt))
                    if prod is not None:
                        prod.terminate()
                        prod.wait(60)
                    worker.stdin.write("stop\n")
                    worker.stdin.flush()
                    worker.wait(60)
        except BaseException:
            for log in sorted((Path(tmp) / "logs").glob("*")):  # what a server said before it went away
                print(f"--- {log.name}:", *log.read_text(errors="replace").splitlines()[-25:], sep="\n", file=sys.stderr)
            raise
        finally:
            local_stack.down(data_dir=Path(tmp))
    print(f"one consumer worker (DynamoDB leases on dynalite, kinesalite, default ConsumerConfig), {window:g} s "
          f"windows; busy: {rate:,.0f} records/s of 100 B over all shards")
    print()
    print(f"{'shards':>6} {'state':<5} {'threads':>8} {'RSS MiB':>8} {'worker CPU':>11} {'GetRecords/s/shard':>19} "
          f"{'records/s':>10} {'kinesalite CPU':>15} {'dynalite CPU':>13}")
    for n, state, threads, rss, cpu, calls, recs, server_cpu, dyn_cpu in rows:
        print(f"{n:>6} {state:<5} {threads:>8} {rss:>8.1f} {cpu:>10.1%} {calls:>19.2f} {recs:>10,.0f} "
              f"{server_cpu:>14.1%} {dyn_cpu:>12.1%}")
    idle = [r for r in rows if r[1] == "idle"]
    if len(idle) >= 2:
        (n0, _, t0, m0, c0, *_), (n1, _, t1, m1, c1, g1, *_) = idle[0], idle[-1]
        per = n1 - n0
        print()
        print(f"each idle shard added ({n0} -> {n1} shards): {(t1 - t0) / per:.2f} threads, "
              f"{(m1 - m0) / per * 1024:.0f} KiB RSS (bound 1 MiB), {(c1 - c0) / per:.2%} of a core (bound 0.5%), "
              f"{g1:.2f} GetRecords/s (AWS allows 5)")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--table", choices=("worker", "leases", "both"), default="both")
    ap.add_argument("--shards", default="1,16,64,256")
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="busy: records/s over all shards")
    ap.add_argument("--fleet-shards", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=50)
    ap.add_argument("--hours", type=float, default=1.0)
    args = ap.parse_args()
    if args.table in ("leases", "both"):
        simulate(args.fleet_shards, args.workers, args.hours)
        print()
    if args.table in ("worker", "both"):
        worker_table([int(x) for x in args.shards.split(",")], args.window, args.rate)


if __name__ == "__main__":
    main()
