"""What leaving kclpy saves: the real KCL 3 MultiLangDaemon + a kclpy processor vs streamkit, on the same records.

On the local stack with kinesis-local (the backend the JVM KCL can speak to) and dynalite, each contender
reads its own 4-shard stream: first a cold start (a fresh lease table) over --warmup records, reported
on its own, then, with the lease table warm (its leases exist), --records more records of 100 B
(about 10k: kinesis-local slows past ~15k records in a stream), measured:

- CPU seconds per record of the whole process tree (the JVM and its per-shard Python processors; the
  streamkit process), sampled from /proc every 0.1 s from start until the last record was counted;
- the peak RSS of the whole tree (the sum over its processes at each sample);
- the time from start to the first record, and to the last.

Contenders, all doing the same no-op work (bench/kcl_noop.py: count a batch, checkpoint after it):
the MultiLangDaemon (kclpy-ext's jars through streamkit.local.jvm_kcl, the KCL's default timings except
worker metrics off, as the runner sets) with `python bench/kcl_noop.py` per shard; `streamkit kcl run`
with the same processor class and properties; `streamkit consume` with a counting handler.

Run: .venv/bin/python bench/kcl_cost.py [--records 10000] [--warmup 1000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streamkit import kinesis as sk_kinesis
from streamkit.aws.clients import aws_client
from streamkit.local import stack as local_stack
from streamkit.local.jvm_kcl import JvmKcl, JvmKclConfig, java_executable, kcl_jars, prepare_tables, release_leader_lock

ROOT = Path(__file__).resolve().parent.parent
SHARDS = 4
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree(root: int) -> list[int]:
    """`root` and every process in its session (the KCL's processors; streamkit has none)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(entry.name) == root or int(fields[3]) == root:  # fields[3]: the session id
                out.append(int(entry.name))
    return out


def cpu_and_rss(pid: int) -> tuple[float, int]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0.0, 0
    return (int(fields[11]) + int(fields[12])) / TICK, rss


@dataclass
class Run:
    first: float | None = None
    last: float | None = None
    cpu: float = 0.0
    peak_rss: int = 0
    records: int = 0


def watch(root: int, counted: Callable[[], int], want: int, timeout: float) -> Run:
    """Sample the tree of `root` until `counted()` reaches `want` (bounded by `timeout`)."""
    t0 = time.monotonic()
    run = Run()
    cpu: dict[int, float] = {}
    while time.monotonic() - t0 < timeout:
        rss = 0
        for pid in tree(root):
            c, r = cpu_and_rss(pid)
            cpu[pid] = max(cpu.get(pid, 0.0), c)  # a processor that exits keeps what it used
            rss += r
        run.peak_rss = max(run.peak_rss, rss)
        n = counted()
        if n and run.first is None:
            run.first = time.monotonic() - t0
        if n >= want:
            run.last = time.monotonic() - t0
            break
        time.sleep(0.1)
    run.cpu, run.records = sum(cpu.values()), counted()
    return run


def put(client: Any, stream: str, n: int, start: int) -> None:
    for i in range(start, start + n, 500):
        out = client.put_records(StreamName=stream, Records=[
            {"Data": f"reading {j:08d} ".ljust(100, "x").encode(), "PartitionKey": f"sensor-{j % 1000}"}
            for j in range(i, min(start + n, i + 500))])
        assert out.get("FailedRecordCount", 0) == 0


def counter(path: Path) -> Callable[[], int]:
    return lambda: sum(int(x) for x in path.read_text().split()) if path.exists() else 0


def stop_group(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--warmup", type=int, default=1_000)
    args = ap.parse_args()
    java_executable(), kcl_jars()  # one line and exit status 1 if Java 17 or the jars are missing, before any work
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    rows: list[tuple[str, Run, Run]] = []
    with tempfile.TemporaryDirectory(prefix="bench-kcl-cost-") as tmp_s:
        tmp = Path(tmp_s)
        stack = local_stack.up(backend="kinesis-mock", data_dir=tmp / "stack", persist=False)
        try:
            client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint)
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)])}

            def config(app: str, stream: str) -> JvmKclConfig:
                return JvmKclConfig(application_name=app, stream_name=stream,
                                    processor=f"{sys.executable} {ROOT / 'bench' / 'kcl_noop.py'}",
                                    kinesis_endpoint=stack.kinesis_endpoint, dynamodb_endpoint=stack.dynamodb_endpoint,
                                    failover_time_millis=10_000, lease_assignment_interval_millis=20_000,
                                    idle_time_between_reads_millis=1_000, shard_sync_interval_millis=60_000,
                                    parent_shard_poll_interval_millis=10_000,
                                    worker_metrics_reporter_freq_millis=30_000)

            kcls: dict[int, JvmKcl] = {}

            def jvm(app: str, stream: str, out: Path, work: Path) -> subprocess.Popen[Any]:
                # No KCL of this application runs now: a leader lock one left would hold assignment back 2 min.
                release_leader_lock(application_name=app, dynamodb_endpoint=stack.dynamodb_endpoint)
                kcl = JvmKcl(config(app, stream), work_dir=work,
                             env={"NOOP_OUT": str(out), "PYTHONPATH": env["PYTHONPATH"]}).start()
                assert kcl._proc is not None
                kcls[kcl._proc.pid] = kcl
                return kcl._proc

            def properties(app: str, stream: str) -> Path:
                path = tmp / f"{app}.properties"
                path.write_text(config(app, stream).properties_text())
                return path

            def cli(args_: list[str], out: Path) -> subprocess.Popen[Any]:
                return subprocess.Popen([sys.executable, "-m", "streamkit.cli.main", *args_,
                                         "--endpoint-url", stack.kinesis_endpoint], cwd=ROOT, start_new_session=True,
                                        env={**env, "NOOP_OUT": str(out)}, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

            contenders: list[tuple[str, Callable[[str, str, Path, int], subprocess.Popen[Any]]]] = [
                ("KCL 3.1.3 MultiLangDaemon + kclpy processor",
                 lambda app, stream, out, run: jvm(app, stream, out, tmp / f"{app}-{run}")),
                ("streamkit kcl run (same processor and properties)",
                 lambda app, stream, out, run: cli(["kcl", "run", "--properties", str(properties(app, stream)),
                                                    "--processor", "kcl_noop:Noop",
                                                    "--dynamodb-endpoint-url", stack.dynamodb_endpoint], out)),
                ("streamkit consume (counting handler)",
                 lambda app, stream, out, run: cli(["consume", "--stream", stream, "--handler", "kcl_noop:count",
                                                    "--checkpoint", f"dynamodb:{app}", "--app", app,
                                                    "--dynamodb-endpoint-url", stack.dynamodb_endpoint], out)),
            ]
            for i, (name, start) in enumerate(contenders):
                app, stream = f"cost-{i}", f"cost-{i}"
                sk_kinesis.create_stream(client, stream, SHARDS)
                if i == 0:
                    prepare_tables(application_name=app, dynamodb_endpoint=stack.dynamodb_endpoint)
                runs = []
                for run, (n, offset) in enumerate(((args.warmup, 0), (args.records, args.warmup))):
                    put(client, stream, n, offset)
                    out = tmp / f"{app}-{run}.counts"
                    proc = start(app, stream, out, run)
                    try:
                        runs.append(watch(proc.pid, counter(out), n, timeout=300))
                    finally:
                        if proc.pid in kcls:
                            kcls.pop(proc.pid).stop()  # SIGTERM to the daemon: its graceful shutdown
                        else:
                            stop_group(proc)
                rows.append((name, runs[0], runs[1]))
        finally:
            local_stack.down(data_dir=tmp / "stack")
    print(f"JVM KCL vs streamkit on kinesis-local + dynalite, {SHARDS} shards, records of 100 B, one worker each")
    print()
    print(f"cold start (a new lease table), {args.warmup:,} records: seconds to the first record, to the last")
    for name, cold, _warm in rows:
        print(f"  {name:<52} {_s(cold.first):>8} {_s(cold.last):>8}")
    print()
    print(f"warm lease table (its leases exist), {args.records:,} records:")
    print(f"  {'':<52} {'CPU us/record':>14} {'peak RSS MiB':>13} {'first record s':>15} {'all s':>7}")
    for name, _cold, warm in rows:
        per = warm.cpu / max(1, warm.records) * 1e6
        print(f"  {name:<52} {per:>14,.0f} {warm.peak_rss / 2**20:>13.0f} {_s(warm.first):>15} {_s(warm.last):>7}")
    kcl_warm = rows[0][2]
    for name, _cold, warm in rows[1:]:
        print(f"  {name}: {kcl_warm.cpu / max(warm.cpu, 1e-9):.1f}x less CPU, "
              f"{kcl_warm.peak_rss / max(warm.peak_rss, 1):.1f}x less memory than the KCL")
    print("  (CPU and RSS of the whole process tree, from start until the last record was counted; the KCL's "
          "timings at its defaults except worker metrics off)")


def _s(t: float | None) -> str:
    return "-" if t is None else f"{t:.1f}"


if __name__ == "__main__":
    main()
