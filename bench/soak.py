"""Soak: a long run of producer -> limit-enforcing local stack -> consumer, with periodic server faults.

A producer process offers `--rate` readings/s (100 B, 1,000 keys) to a 4-shard stream through the
proxy (AWS's shard limits; a few throttles, internal errors and connection resets injected
throughout), for `--duration` seconds, with `send()` and the default configuration. A consumer
process reads the stream with its leases in DynamoDB (dynalite). Every `--fault-every` seconds the
parent SIGKILLs kinesalite or dynalite (in turn) and starts it again `--outage` seconds later, on
its port with its data.

Every 30 s a line: readings sent and read per second, each process's RSS, the consumer's lag (the age
of the last reading it processed, from its arrival timestamp: the producer never stops, so this is
how far behind the consumer is), and the faults so far. At the end: readings acknowledged, read,
lost (acknowledged and never read), duplicates (read twice: at-least-once after a fault) by cause
(the same position read again: the consumer; another position: the producer wrote it twice; each put
beside the server killed before it), failed
(reported to on_failure). A PNG of RSS and lag over time goes to `--plot` (default
soak-output/soak.png; needs the `plot` extra).

Run: .venv/bin/python bench/soak.py [--duration 180] [--rate 10000] [--fault-every 60] [--outage 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from array import array
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STREAM = "soak"
SHARDS = 4
PROXY_FAULTS = "throttle=0.01,internal=0.005,reset=0.002,seed=7"
REPORT_EVERY = 5.0


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


# -- the two processes -------------------------------------------------------------------------------
def producer(endpoint: str, rate: float, duration: float) -> None:
    from producer import Producer, ProducerConfig
    from streamkit.aws.clients import aws_client

    failed: list[int] = []
    client = aws_client("kinesis", endpoint_url=endpoint, retries=0, max_pool_connections=16)

    def on_failure(rec: Any) -> None:
        failed.append(int(rec.data[:10]))

    sent = 0
    with Producer(STREAM, client=client, config=ProducerConfig(on_failure=on_failure)) as p:
        start = time.monotonic()
        next_report = start + REPORT_EVERY
        while True:
            now = time.monotonic()
            if now - start >= duration:
                break
            due = int((now - start) * rate)
            while sent < due:
                p.send(b"%010d " % sent + b"x" * 89, f"sensor-{sent % 1000:04d}")
                sent += 1
            if now >= next_report:
                m = p.metrics()
                say(role="producer", t=now - start, sent=sent, written=m["user_records_written"], rss=rss_mib(),
                    held=m["admission_wait_s"], throttles=m["throttles"])
                next_report += REPORT_EVERY
            time.sleep(0.002)
        p.flush()
        m = p.metrics()
    say(role="producer", done=True, sent=sent, written=m["user_records_written"], failed=sorted(failed), rss=rss_mib())


def consumer(endpoint: str, dynamodb: str, expect_file: str) -> None:
    from streamkit.checkpoints import DynamoDBCheckpointStore
    from streamkit.consumer import Consumer, ConsumerConfig
    from streamkit.records import StreamRecord

    # Per reading number (16M), a 32-bit digest of the position it was first read at (0: unread): a
    # reading read again at the same position was re-read by the consumer; at another position it was
    # written twice by the producer. Preallocated, so memory does not grow with the run.
    first_at = array("I", bytes(4 << 24))
    counts = {"read": 0, "duplicates": 0, "lag": 0.0}
    by_cause: dict[str, dict[int, int]] = {"read_again": {}, "written_twice": {}}  # cause -> wall second -> n
    lock = threading.Lock()

    def handle(record: StreamRecord) -> None:
        n = int(record.data[:10])
        at = zlib.crc32(f"{record.sequence_number}/{record.sub_sequence_number}".encode()) or 1
        with lock:
            if first_at[n]:
                counts["duplicates"] += 1
                cause = by_cause["read_again" if first_at[n] == at else "written_twice"]
                second = int(time.time())
                cause[second] = cause.get(second, 0) + 1
            else:
                first_at[n] = at
                counts["read"] += 1
            if record.approximate_arrival_timestamp is not None:
                counts["lag"] = max(0.0, time.time() - record.approximate_arrival_timestamp)

    store = DynamoDBCheckpointStore("soak-leases", endpoint_url=dynamodb)
    from streamkit.aws.clients import aws_client

    c = Consumer(STREAM, handle, application_name="soak", checkpoint_store=store,
                 client=aws_client("kinesis", endpoint_url=endpoint, retries=0, max_pool_connections=8),
                 config=ConsumerConfig(lease_duration=10.0))
    runner = threading.Thread(target=c.run, kwargs={"install_signal_handlers": False}, daemon=True)
    start = time.monotonic()
    runner.start()
    expected: int | None = None
    while True:
        time.sleep(REPORT_EVERY)
        with lock:
            read, dups, lag = counts["read"], counts["duplicates"], counts["lag"]
        say(role="consumer", t=time.monotonic() - start, read=read, duplicates=dups, lag=lag, rss=rss_mib())
        if expected is None and os.path.exists(expect_file):
            expected = int(Path(expect_file).read_text())
        if expected is not None and read >= expected:
            break
        if not runner.is_alive():
            break
    c.stop()
    runner.join(60)
    say(role="consumer", done=True, read=counts["read"], duplicates=counts["duplicates"], rss=rss_mib(),
        duplicates_by_cause=by_cause, missing=[n for n in range(expected or 0) if not first_at[n]][:1000])


# -- the parent ----------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=180.0, help="seconds of producing (default 180)")
    ap.add_argument("--rate", type=float, default=10_000.0, help="readings per second offered (default 10,000)")
    ap.add_argument("--fault-every", type=float, default=60.0, help="seconds between server kills (default 60)")
    ap.add_argument("--outage", type=float, default=3.0, help="seconds a killed server stays down (default 3)")
    ap.add_argument("--plot", type=Path, default=Path("soak-output/soak.png"))
    ap.add_argument("--role", choices=("producer", "consumer"), help=argparse.SUPPRESS)
    ap.add_argument("--endpoint", help=argparse.SUPPRESS)
    ap.add_argument("--dynamodb", help=argparse.SUPPRESS)
    ap.add_argument("--expect-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    if args.role == "producer":
        producer(args.endpoint, args.rate, args.duration)
        return
    if args.role == "consumer":
        consumer(args.endpoint, args.dynamodb, args.expect_file)
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    from streamkit import kinesis as sk_kinesis
    from streamkit.aws.clients import aws_client
    from streamkit.local import stack as local_stack
    from streamkit.local.proxy import configure_proxy

    samples: list[dict[str, Any]] = []
    faults: list[tuple[float, str]] = []
    fault_walls: list[tuple[float, str]] = []  # (wall time, server): duplicates are put beside the fault before them
    finals: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        data = Path(tmp) / "stack"
        stack = local_stack.up(data_dir=data, enforce_limits=True)
        expect = Path(tmp) / "expect"
        procs: list[subprocess.Popen[str]] = []
        try:
            sk_kinesis.create_stream(aws_client("kinesis", endpoint_url=stack.kinesis_endpoint), STREAM, SHARDS)
            configure_proxy(stack.kinesis_endpoint, faults=PROXY_FAULTS)
            base = [sys.executable, __file__, "--endpoint", stack.kinesis_endpoint]
            args.plot.parent.mkdir(parents=True, exist_ok=True)
            logs = {role: open(args.plot.parent / f"soak-{role}.log", "w") for role in ("consumer", "producer")}  # noqa: SIM115
            procs.append(subprocess.Popen([*base, "--role", "consumer", "--dynamodb", stack.dynamodb_endpoint,
                                           "--expect-file", str(expect)], stdout=subprocess.PIPE, stderr=logs["consumer"],
                                          text=True))
            procs.append(subprocess.Popen([*base, "--role", "producer", "--rate", str(args.rate),
                                           "--duration", str(args.duration)], stdout=subprocess.PIPE,
                                          stderr=logs["producer"], text=True))
            t0 = time.monotonic()

            def collect(proc: subprocess.Popen[str]) -> None:
                assert proc.stdout is not None
                for line in proc.stdout:
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        continue
                    msg["at"] = time.monotonic() - t0
                    if msg.get("done"):
                        finals[msg["role"]] = msg
                    else:
                        samples.append(msg)

            readers = [threading.Thread(target=collect, args=(p,), daemon=True) for p in procs]
            for r in readers:
                r.start()
            print(f"soak: {args.rate:,.0f} readings/s offered for {args.duration:.0f} s to {SHARDS} shards through the "
                  f"limit proxy (faults {PROXY_FAULTS}); kinesalite or dynalite SIGKILLed every "
                  f"{args.fault_every:.0f} s for {args.outage:.0f} s")
            print()
            print(f"{'t s':>6} {'sent/s':>8} {'read/s':>8} {'producer RSS':>13} {'consumer RSS':>13} {'lag s':>7} {'faults':>7}")
            next_fault, next_line, victim = t0 + args.fault_every, t0 + 30, 0
            last = {"sent": 0, "read": 0, "at": 0.0}
            while procs[1].poll() is None or (procs[0].poll() is None and "producer" not in finals):
                now = time.monotonic()
                if now >= next_fault and procs[1].poll() is None:
                    name = ("kinesalite", "dynalite")[victim % 2]
                    local_stack.kill_server(name, data_dir=data)
                    faults.append((now - t0, name))
                    fault_walls.append((time.time(), name))
                    time.sleep(args.outage)
                    local_stack.restart_server(name, data_dir=data)
                    victim += 1
                    next_fault = now + args.fault_every
                if now >= next_line:
                    last = _line(samples, faults, last)
                    next_line += 30
                time.sleep(0.2)
            producer_final = finals.get("producer") or {}
            acked = producer_final.get("sent", 0) - len(producer_final.get("failed", []))
            expect.write_text(str(producer_final.get("sent", 0) - len(producer_final.get("failed", []))))
            deadline = time.monotonic() + 180
            while procs[0].poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            _line(samples, faults, last)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            local_stack.down(data_dir=data)
    consumer_final = finals.get("consumer") or {}
    failed = set(producer_final.get("failed", []))
    missing = [n for n in consumer_final.get("missing", []) if n not in failed]
    print()
    print(f"sent {producer_final.get('sent', 0):,}, acknowledged {acked:,}, failed (to on_failure) {len(failed):,}, "
          f"read {consumer_final.get('read', 0):,}, lost {len(missing):,}, duplicates {consumer_final.get('duplicates', 0):,}")
    print(f"faults: {', '.join(f'{name} at {t:.0f} s' for t, name in faults) or 'none'}")
    _duplicates_by_cause(consumer_final.get("duplicates_by_cause") or {}, fault_walls)
    for role in ("producer", "consumer"):
        log_path = args.plot.parent / f"soak-{role}.log"
        lines = log_path.read_text().splitlines() if log_path.exists() else []
        tracebacks = sum(1 for line in lines if line.startswith("Traceback"))
        print(f"{role} stderr: {len(lines)} lines (retries said as they happen), {tracebacks} tracebacks ({log_path})")
    rss = {role: [s["rss"] for s in samples if s["role"] == role] for role in ("producer", "consumer")}
    for role, values in rss.items():
        if values:
            print(f"{role} RSS: {values[0]:.0f} MiB at the first report, {max(values):.0f} MiB at most, "
                  f"{values[-1]:.0f} MiB at the last")
    _plot(samples, faults, args.plot)
    if missing or not consumer_final:
        sys.exit(1)


#: What each (duplicate kind, fault) means, and whether the duplicate is necessary.
_CAUSES = {
    ("written_twice", "kinesalite"): "a PutRecords kinesalite applied, then died before answering: the producer "
                                     "cannot know it was written and sends it again (necessary: at-least-once)",
    ("written_twice", "dynalite"): "written twice while DynamoDB was down (not expected: the producer does not use it)",
    ("written_twice", "none"): "written twice with no server killed (not expected: the proxy's faults fail a "
                               "request before forwarding it, so nothing was written)",
    ("read_again", "kinesalite"): "re-read after kinesalite restarted (not expected: the reader keeps its position)",
    ("read_again", "dynalite"): "re-read after dynalite restarted: a checkpoint or lease write applied but not "
                                "answered failed the batch or gave the lease up (fixed: tests/unit/test_lost_answers.py)",
    ("read_again", "none"): "re-read with no server killed: a lease moved between workers",
}


def _duplicates_by_cause(by_cause: dict[str, dict[str, int]], fault_walls: list[tuple[float, str]]) -> None:
    """Each duplicate beside the last server killed before it (within 60 s), by kind."""
    totals: dict[tuple[str, str], int] = {}
    for kind, seconds in by_cause.items():
        for second, n in seconds.items():
            before = [name for wall, name in fault_walls if wall <= int(second) + 1 and int(second) - wall <= 60]
            key = (kind, before[-1] if before else "none")
            totals[key] = totals.get(key, 0) + n
    if not totals:
        print("duplicates by cause: none")
        return
    print("duplicates by cause:")
    for (kind, fault), n in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {n:>8,}  {kind.replace('_', ' ')}, after {fault if fault != 'none' else 'no server kill'}: "
              f"{_CAUSES[(kind, fault)]}")


def _line(samples: list[dict[str, Any]], faults: list[tuple[float, str]], last: dict[str, Any]) -> dict[str, Any]:
    prod = [s for s in samples if s["role"] == "producer"]
    cons = [s for s in samples if s["role"] == "consumer"]
    if not prod and not cons:
        return last
    at = max(s["at"] for s in samples)
    sent = prod[-1]["sent"] if prod else last["sent"]
    read = cons[-1]["read"] if cons else last["read"]
    span = max(1e-9, at - last["at"])
    print(f"{at:>6.0f} {(sent - last['sent']) / span:>8,.0f} {(read - last['read']) / span:>8,.0f} "
          f"{(prod[-1]['rss'] if prod else 0):>10.0f} MiB {(cons[-1]['rss'] if cons else 0):>10.0f} MiB "
          f"{(cons[-1]['lag'] if cons else 0):>7.1f} {len(faults):>7}", flush=True)
    return {"sent": sent, "read": read, "at": at}


def _plot(samples: list[dict[str, Any]], faults: list[tuple[float, str]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no PNG: install the plot extra for matplotlib)")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for role in ("producer", "consumer"):
        pts = [(s["at"], s["rss"]) for s in samples if s["role"] == role]
        if pts:
            top.plot(*zip(*pts, strict=True), label=f"{role} RSS")
    producing_until = max((s["at"] for s in samples if s["role"] == "producer"), default=0.0)
    # Lag as the age of the last record read means "behind" only while records keep coming.
    pts = [(s["at"], s["lag"]) for s in samples if s["role"] == "consumer" and s["at"] <= producing_until + 1]
    if pts:
        bottom.plot(*zip(*pts, strict=True), color="tab:red", label="consumer lag (age of last record read)")
    for ax in (top, bottom):
        for t, _name in faults:
            ax.axvline(t, color="grey", linestyle=":", linewidth=1)
        ax.legend(loc="upper left")
    top.set_ylabel("MiB")
    bottom.set_ylabel("seconds")
    bottom.set_xlabel(f"seconds (dotted: a server killed; {', '.join(sorted({n for _t, n in faults}))})")
    fig.suptitle("streamkit soak: RSS and lag over time")
    fig.tight_layout()
    fig.savefig(path)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
