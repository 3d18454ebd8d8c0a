"""`streamkit estimate`: size a stream and its Lambda consumer."""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path
from typing import Any

from streamkit.cli.common import emit_json, flag, has_rich, import_callable, print_err
from streamkit.errors import ConfigurationError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000 * 1000, "mib": 1024 * 1024}


def parse_size(text: str) -> float:
    m = _SIZE.match(text)
    if not m:
        raise ConfigurationError(f"bad size {text!r}: use e.g. 512, 1KiB, 1.5MiB")
    return float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()]


def parse_seconds(text: str) -> float:
    t = text.strip().lower()
    try:
        if t.endswith("ms"):
            return float(t[:-2]) / 1000
        return float(t[:-1]) if t.endswith("s") else float(t)
    except ValueError:
        raise ConfigurationError(f"bad duration {text!r}: use e.g. 250ms or 1.5") from None


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("estimate", help="throughput, limits, lag and cost of a stream and its Lambda consumer",
                       parents=parents)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--shards", type=int, default=None)
    g.add_argument("--target-rate", type=float, default=None, help="user records/s to size the stream for")
    p.add_argument("--record-size", default="1KiB", help="payload bytes per user record (KiB/MiB suffixes)")
    p.add_argument("--max-record-size", default="1MiB",
                   help="the stream's maximum record size, 1MiB..10MiB (MaxRecordSizeInKiB)")
    p.add_argument("--key-bytes", type=float, default=16.0)
    p.add_argument("--records-per-second", type=float, default=None, help="ingest rate (default: --target-rate or 100)")
    p.add_argument("--burst-rate", type=float, default=None)
    p.add_argument("--burst-seconds", type=float, default=0.0)
    p.add_argument("--aggregation", default="1", help="user records per Kinesis record, or auto")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--duration", default=None, help="seconds per batch (ms suffix accepted)")
    p.add_argument("--per-record-ms", type=float, default=0.0)
    p.add_argument("--per-batch-ms", type=float, default=0.0)
    p.add_argument("--invoke-overhead-ms", type=float, default=20.0)
    p.add_argument("--parallelization-factor", type=int, default=1)
    p.add_argument("--consumers", type=int, default=1, help="polling consumers (the Lambda counts as one)")
    p.add_argument("--efo-consumers", type=int, default=0)
    p.add_argument("--partition-keys", type=int, default=1000)
    p.add_argument("--key-skew", type=float, default=0.0, help="Zipf exponent of key popularity (0: uniform)")
    p.add_argument("--keys-file", type=Path, default=None, help="one key per line (as often as it occurs)")
    p.add_argument("--retention-hours", type=float, default=24.0)
    p.add_argument("--max-record-age", type=float, default=None)
    p.add_argument("--failure-rate", type=float, default=0.0)
    p.add_argument("--mode", choices=("provisioned", "on-demand", "on-demand-advantage"), default="provisioned")
    p.add_argument("--warm-throughput", type=float, default=None, metavar="MIBPS",
                   help="on-demand: the write MiB/s the stream is kept warm for (WarmThroughputMiBps)")
    p.add_argument("--distribution", choices=("user-partition-key", "auto"), default="user-partition-key",
                   help="auto: the service places records (no hot key, no aggregation, no order)")
    p.add_argument("--lambda-memory-mb", type=int, default=128,
                   help="the function's memory, MB (the size --duration or --measure was measured at)")
    p.add_argument("--memory-advice", action="store_true",
                   help="predict duration, throughput per shard and cost per million records for a range of memory "
                        "sizes from the measured duration, and recommend one")
    p.add_argument("--arm64", action="store_true", help="price Lambda on arm64 (Graviton)")
    p.add_argument("--account-concurrency", type=int, default=1000,
                   help="the account's Lambda concurrency quota in the region (AWS's default: 1,000)")
    p.add_argument("--dispatcher-lanes", type=int, default=0,
                   help="a dispatcher fanning out to a Lambda target: its lanes per invocation (concurrency it adds)")
    p.add_argument("--reshard-to", type=int, default=None, metavar="SHARDS",
                   help="shards after a reshard or a burst: how long Lambda's scaling (1,000 environments per 10 s) "
                        "takes to follow, and its cold starts")
    p.add_argument("--init-duration", default=None, help="a measured Init Duration (ms suffix accepted)")
    p.add_argument("--from-run", type=Path, default=None, metavar="FILE",
                   help="the --json output of `lambda run` (its REPORT figures): median batch duration, memory size, "
                        "median Init Duration and records per invocation, for what was not given")
    p.add_argument("--limit-scale", type=float, default=1.0, help="scale the shard limits (local validation)")
    p.add_argument("--simulate", action="store_true", help="check the formulas with a discrete-time simulation")
    p.add_argument("--simulate-seconds", type=float, default=120.0)
    p.add_argument("--plot", type=Path, default=None, help="PNG of iterator age and backlog (implies --simulate)")
    p.add_argument("--measure", default=None, help="pkg.mod:func to time on --sample records")
    p.add_argument("--sample", type=Path, default=None, help="JSON lines of sample records for --measure")
    p.set_defaults(func=cmd_estimate)


def build_inputs(args: argparse.Namespace) -> Any:
    from streamkit.estimator.model import Inputs, Limits

    per_record_ms, per_batch_ms = args.per_record_ms, args.per_batch_ms
    measured = None
    if args.measure:
        if args.sample is None:
            raise ConfigurationError("--measure needs --sample FILE.jsonl")
        from streamkit.estimator.measure import measure_handler

        measured = measure_handler(import_callable(args.measure), args.sample)
        per_record_ms, per_batch_ms = measured["per_record_ms"], measured["per_batch_ms"]
    shares: tuple[float, ...] = ()
    keys = args.partition_keys
    if args.keys_file is not None:
        try:
            text = args.keys_file.read_text()
        except OSError as exc:
            raise ConfigurationError(f"--keys-file {args.keys_file}: {(exc.strerror or str(exc)).lower()}") from None
        counts = Counter(line.strip() for line in text.splitlines() if line.strip())
        if not counts:
            raise ConfigurationError(f"--keys-file {args.keys_file}: no keys in it")
        total = sum(counts.values())
        shares = tuple(sorted((c / total for c in counts.values()), reverse=True))
        keys = len(counts)
    rate = args.records_per_second if args.records_per_second is not None else (args.target_rate or 100.0)
    inp = Inputs(
        shards=args.shards if args.shards is not None or args.target_rate is not None else 1,
        target_rate=args.target_rate, record_size=parse_size(args.record_size), key_bytes=args.key_bytes,
        max_record_size=parse_size(args.max_record_size),
        records_per_second=rate, burst_rate=args.burst_rate, burst_seconds=args.burst_seconds,
        aggregation="auto" if args.aggregation == "auto" else float(args.aggregation), batch_size=args.batch_size,
        duration=parse_seconds(args.duration) if args.duration else None, per_record_ms=per_record_ms,
        per_batch_ms=per_batch_ms, invoke_overhead_ms=args.invoke_overhead_ms,
        parallelization_factor=args.parallelization_factor, consumers=args.consumers,
        efo_consumers=args.efo_consumers, partition_keys=keys, key_skew=args.key_skew, key_shares=shares,
        retention_hours=args.retention_hours, max_record_age=args.max_record_age, failure_rate=args.failure_rate,
        mode=args.mode, lambda_memory_mb=args.lambda_memory_mb, limits=Limits(scale=args.limit_scale),
        arm64=args.arm64, account_concurrency=args.account_concurrency, dispatcher_lanes=args.dispatcher_lanes,
        reshard_to=args.reshard_to, init_duration=parse_seconds(args.init_duration) if args.init_duration else None,
        warm_throughput_mibps=args.warm_throughput, distribution=args.distribution.upper().replace("-", "_"))
    return inp, measured


def cmd_estimate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from streamkit.estimator.model import estimate
    from streamkit.estimator.simulate import simulate

    try:
        aggregation_ok = args.aggregation == "auto" or float(args.aggregation) >= 1
    except ValueError:
        aggregation_ok = False
    if not aggregation_ok:
        raise ConfigurationError(f"--aggregation {args.aggregation!r}: a number >= 1 or auto")
    if args.plot is not None and not args.plot.expanduser().resolve().parent.is_dir():
        raise ConfigurationError(f"--plot {args.plot}: the directory {args.plot.parent} does not exist")
    from_run = _apply_run(args) if args.from_run is not None else None
    inp, measured = build_inputs(args)
    result = estimate(inp)
    if measured is not None:
        result["measured"] = measured
    if from_run is not None:
        result["from_run"] = from_run
    if args.memory_advice:
        from streamkit.estimator.memory import memory_advice

        result["memory_advice"] = memory_advice(
            batch_seconds=result["batch_seconds"], overhead_seconds=min(inp.invoke_overhead_ms / 1000,
                                                                        result["batch_seconds"]),
            measured_at_mb=inp.lambda_memory_mb, records_per_batch=result["lambda_batch_user_records"],
            parallelization_factor=inp.parallelization_factor,
            demand_per_shard=inp.records_per_second * result["hot_shard_share"],
            cpu_fraction=None if measured is None else measured["cpu_fraction"],
            architecture="arm64" if inp.arm64 else "x86_64")
    if args.simulate or args.plot:
        sim = simulate(replace(inp, shards=result["shards"]), seconds=args.simulate_seconds)
        result["simulation"] = sim.to_json()
        if args.plot:
            from streamkit.estimator.plot import plot_simulation

            plot_simulation(sim, args.plot, title=f"{result['shards']} shards, {inp.records_per_second:g} rec/s")
            result["plot"] = str(args.plot.expanduser().resolve())
    for warning in result["warnings"]:
        print_err(f"streamkit: warning: {warning}")
    if flag(args, "json"):
        emit_json(result)
    else:
        _print(result)
        if "memory_advice" in result:
            _print_memory(result["memory_advice"])
        if "plot" in result:
            print(f"plot written to {result['plot']}")
    return 0


def _fmt(x: Any) -> str:
    if x is None:
        return "never"
    if isinstance(x, float):
        if x == float("inf"):
            return "unlimited"
        return f"{x:,.2f}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def _print(r: dict[str, Any]) -> None:
    if not has_rich():
        _print_plain(r)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title=f"streamkit estimate: {r['shards']} shard(s)", show_header=True)
    t.add_column("figure")
    t.add_column("value", justify="right")
    for name, value in _rows(r):
        t.add_row(name, _fmt(value))
    console.print(t)
    limits = Table(title="limits (user records/s the stream can sustain under each)")
    limits.add_column("limit")
    limits.add_column("rate", justify="right")
    for name, value in sorted(r["limits"].items(), key=lambda kv: kv[1]):
        limits.add_row(name, _fmt(value))
    console.print(limits)
    if r["advice"]:
        console.print("advice, by effect:")
        for a in r["advice"]:
            console.print(f"  - {a['advice']}: {_fmt(a['sustainable_rate'])} rec/s ({a['gain']:.2f}x)")
    console.print(f"[dim]{r['prices_note']}[/dim]")


def _print_plain(r: dict[str, Any]) -> None:
    print(f"streamkit estimate: {r['shards']} shard(s)")
    for name, value in _rows(r):
        print(f"  {name}: {_fmt(value)}")
    print("limits (user records/s the stream can sustain under each):")
    for name, value in sorted(r["limits"].items(), key=lambda kv: kv[1]):
        print(f"  {name}: {_fmt(value)}")
    for a in r["advice"]:
        print(f"  advice: {a['advice']}: {_fmt(a['sustainable_rate'])} rec/s ({a['gain']:.2f}x)")
    print(r["prices_note"])


def _apply_run(args: argparse.Namespace) -> dict[str, Any]:
    """`--from-run FILE`: a `lambda run --json` summary's REPORT figures, for the options left at their defaults."""
    import orjson

    try:
        doc = orjson.loads(args.from_run.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"--from-run {args.from_run}: {(exc.strerror or str(exc)).lower()}") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigurationError(f"--from-run {args.from_run}: not JSON ({exc})") from None
    runs = list(doc["mappings"].values()) if isinstance(doc, dict) and "mappings" in doc else [doc]
    run = next((r for r in runs if isinstance(r, dict) and (r.get("invocation_reports") or {}).get("duration_ms")), None)
    if run is None:
        raise ConfigurationError(f"--from-run {args.from_run}: no invocation reports in it (the --json output of "
                                 "`streamkit lambda run` that invoked the function at least once)")
    reports = run["invocation_reports"]
    taken: dict[str, Any] = {"duration_ms_p50": reports["duration_ms"]["p50"]}
    if args.duration is None:  # the handler's Duration, plus the poll/invoke overhead the estimator adds per batch
        args.duration = f"{reports['duration_ms']['p50'] + args.invoke_overhead_ms}ms"
    memory = {r["memory_size_mb"] for r in reports["reports"]}
    if len(memory) == 1 and args.lambda_memory_mb == 128:
        args.lambda_memory_mb = taken["memory_size_mb"] = memory.pop()
    if args.init_duration is None and reports.get("init_duration_ms"):
        args.init_duration = f"{reports['init_duration_ms']['p50']}ms"
        taken["init_duration_ms_p50"] = reports["init_duration_ms"]["p50"]
    if args.batch_size == 100 and run.get("invocations"):
        args.batch_size = taken["records_per_invocation"] = max(1, round(run["records_delivered"] / run["invocations"]))
    return taken


def _print_memory(advice: dict[str, Any]) -> None:
    print(f"memory advice (measured at {advice['measured_at_mb']:,} MB; {advice['architecture']}):")
    print(f"  {'memory MB':>10} {'batch s':>9} {'billed ms':>10} {'rec/s per shard':>16} {'USD / M records':>16}")
    for row in advice["rows"]:
        mark = "  <- recommended" if row["memory_mb"] == advice["recommended_mb"] else ""
        print(f"  {row['memory_mb']:>10,} {row['batch_seconds']:>9.3f} {row['billed_ms']:>10,} "
              f"{row['records_per_s_per_shard']:>16,.0f} {row['usd_per_million_records']:>16.4f}{mark}")
    for note in advice["notes"]:
        print(f"  note: {note}")


def _rows(r: dict[str, Any]) -> list[tuple[str, Any]]:
    seed = r["seed"]
    rows = [
        ("max theoretical (shards x 2 MiB / duration), B/s", seed["max_theoretical_bytes_per_s"]),
        ("effective (shards x batch bytes / duration), B/s", seed["effective_bytes_per_s"]),
        ("batch duration, s", r["batch_seconds"]),
        ("user records per Kinesis record", r["aggregation"]),
        ("Lambda batch (Kinesis records)", r["lambda_batch_records"]),
        ("sustainable rate, user records/s", r["sustainable_rate"]),
        ("binding limit", r["binding_limit"]),
        ("keeps up with the ingest rate", r["keeps_up"]),
        ("iterator age growth, s per s", r["iterator_age_growth_s_per_s"]),
        ("data lost after, s", r["data_loss_after_s"]),
        ("shards needed: write / read / consumer / with skew",
         " / ".join(str(r["shards_needed"][k]) for k in ("write", "read", "consumer", "with_skew"))),
        ("Lambda concurrency needed / account quota", f"{r['concurrency']['needed']:,} / "
                                                       f"{r['concurrency']['account_concurrency']:,}"),
        ("latency, s", r["latency_s"]),
        ("monthly cost, provisioned / on-demand / Advantage / Lambda, USD",
         f"{r['cost_monthly_usd']['provisioned']} / {r['cost_monthly_usd']['on_demand']} / "
         f"{r['cost_monthly_usd']['on_demand_advantage']} / {r['cost_monthly_usd']['lambda']}"),
    ]
    if "burst" in r["concurrency"]:
        b = r["concurrency"]["burst"]
        cold = "" if b["cold_start_seconds"] is None else f", {b['cold_start_seconds']:,.1f} s of Init Duration"
        rows.append(("after the reshard: new environments / up to s to scale / cold starts",
                     f"{b['new_environments']:,} / {b['seconds_to_scale']} / {b['cold_starts']:,}{cold}"))
    if r["burst"]:
        rows.append(("burst backlog, records / drain s", f"{_fmt(r['burst']['backlog_records'])} / "
                                                          f"{_fmt(r['burst']['drain_seconds'])}"))
    if "simulation" in r:
        rows.append(("simulated throughput, user records/s", r["simulation"]["throughput"]))
        rows.append(("simulated max iterator age, s", r["simulation"]["max_iterator_age_s"]))
    return rows
