"""The demo application (what `make demo` and `streamkit demo` run): every capability together
against a local stack, with figures.

Stages: local stack with shard limits enforced (scaled) -> a sensor fleet publishing through the
aggregating producer -> the ordered consumer building per-sensor statistics -> a Kinesis-triggered
Lambda handler under the event-source-mapping emulator, with a poisoned reading that ends in the
dead-letter file and is replayed -> ordered processing against the fan-out dispatcher -> the
estimator's prediction beside what was measured. Writes a report to demo-output/ (`report.py`).
An application of the library, not part of it: it needs the CLI's extras (rich, matplotlib).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from streamkit.demo.report import Report, write_report

__all__ = ["cmd_demo"]


def _stack(tmp: Path, scale: float) -> Any:
    from streamkit.local import stack as local_stack

    return local_stack.up(data_dir=tmp / "stack", persist=False, enforce_limits=True, limit_scale=scale)


def cmd_demo(args: argparse.Namespace) -> int:
    from streamkit.local import stack as local_stack

    quiet = bool(getattr(args, "json", False))
    report = Report(args.output, quiet)
    args.output.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="streamkit-demo-") as tmp_name:
        tmp = Path(tmp_name)
        _stop_for_sure_on_ctrl_c(tmp / "stack", args.output)
        report.stage("1. local stack")
        stack = _stack(tmp, args.limit_scale)
        try:
            report.section("local stack", [
                f"kinesalite behind the limit proxy at {stack.kinesis_endpoint} (shard limits x{args.limit_scale}), "
                f"dynalite at {stack.dynamodb_endpoint}; every socket on 127.0.0.1"])
            _run_stages(args, report, stack)
        finally:
            local_stack.down(data_dir=tmp / "stack")  # also on Ctrl-C: nothing is left running
    report.figures["total_seconds"] = round(time.perf_counter() - t_start, 1)
    path: Path = write_report(report, args)
    if quiet:
        print(orjson.dumps(report.figures, option=orjson.OPT_NON_STR_KEYS).decode(), flush=True)
    else:
        report.say(f"\n[bold green]done in {report.figures['total_seconds']} s[/] - report: {path}")
    return 0


#: Seconds Ctrl-C gives the demo to stop by itself (stages interrupted, servers stopped) before it is
#: stopped outright.
CTRL_C_GRACE = 8.0


def _stop_for_sure_on_ctrl_c(stack_dir: Path, output: Path) -> None:
    """Ctrl-C stops the demo: it interrupts the running stage (KeyboardInterrupt, as usual), and if the
    demo has not ended `CTRL_C_GRACE` s later (or at a second Ctrl-C) the servers it started are
    stopped and it exits with 130. Where every thread was then goes to a file in the output folder,
    for a bug report: that is a hang of the demo's own, not something to wait out."""
    import faulthandler
    import os
    import shutil
    import signal
    import sys

    from streamkit.local import stack as local_stack

    interrupted = threading.Event()

    def hard_stop() -> None:
        try:
            with open(output / "interrupt-stacks.txt", "w") as fh:
                faulthandler.dump_traceback(fh, all_threads=True)
            sys.stderr.write(f"streamkit: the demo did not stop within {CTRL_C_GRACE:.0f} s of Ctrl-C; stopped "
                             f"its servers (threads' stacks in {output / 'interrupt-stacks.txt'})\n")
        finally:
            local_stack.down(data_dir=stack_dir)
            shutil.rmtree(stack_dir.parent, ignore_errors=True)  # the demo's temporary folder
            os._exit(130)

    def watchdog() -> None:
        time.sleep(CTRL_C_GRACE)  # a daemon thread: ending the demo in time ends it too
        hard_stop()

    def on_sigint(signum: int, frame: object) -> None:
        if interrupted.is_set():
            hard_stop()  # a second Ctrl-C
        interrupted.set()
        threading.Thread(target=watchdog, name="demo-ctrl-c", daemon=True).start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)


def _run_stages(args: argparse.Namespace, report: Report, stack: Any) -> None:
    from streamkit import kinesis
    from streamkit.aws.clients import aws_client

    client = aws_client("kinesis", endpoint_url=stack.kinesis_endpoint, retries=0, max_pool_connections=32)
    stream = "sensor-readings"
    kinesis.create_stream(client, stream, args.shards)
    t0 = time.perf_counter()
    live = _LiveConsumer(args, client, stream, t0)
    live.start()
    try:
        published = _publish(args, report, client, stream, t0)
        consumed = live.finish(report, published)
    except BaseException:  # Ctrl-C or a failure: stop the consumer before the servers go away
        live.stop()
        raise
    _lambda(report, client, stream)
    _dispatch(report, client)
    _estimate(args, report, published, consumed)


def _publish(args: argparse.Namespace, report: Report, client: Any, stream: str, t0: float) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from producer import Producer, ProducerConfig
    from producer.publisher import simulated_readings

    report.stage("2. a sensor fleet publishes through the aggregating producer (and is consumed meanwhile)")
    total = math.ceil(args.rate * args.duration)
    samples: list[tuple[float, ...]] = []
    futures = []
    with Producer(stream, client=client, config=ProducerConfig()) as p, \
            Progress(TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                     console=report.console, transient=True) as bar:
        task = bar.add_task("put", total=total + 1)
        for n, (key, data) in enumerate(simulated_readings(args.sensors, args.rate, args.duration), start=1):
            futures.append(p.put(data, key))
            if n % 200 == 0:
                bar.update(task, completed=n)
                samples.append((time.perf_counter() - t0, n))
        # One poisoned reading (its temperature is not a number), for the Lambda stage.
        futures.append(p.put_json({"sensor_id": "sensor-00007", "seq": -1, "temperature_c": "poison"},
                                  "sensor-00007"))
        bar.update(task, completed=total + 1)
        p.flush()
        m = p.metrics()
    seconds = time.perf_counter() - t0
    failed = sum(1 for f in futures if f.exception() is not None)
    fig = {"readings": len(futures), "kinesis_records": m["kinesis_records_written"], "put_calls": m["put_calls"],
           "retries": m["retries"], "throttles": m["throttles"], "failed": failed, "seconds": round(seconds, 2),
           "readings_per_s": round(len(futures) / seconds), "p50_latency_ms": m["put_latency_ms"]["p50"],
           "samples": samples}
    report.figures["producer"] = {k: v for k, v in fig.items() if k != "samples"}
    report.series["producer"] = samples
    report.section("producer", [
        f"{fig['readings']:,} readings from {args.sensors} sensors in {seconds:.1f} s ({fig['readings_per_s']:,}/s)",
        f"-> {fig['kinesis_records']} Kinesis records in {fig['put_calls']} PutRecords calls "
        f"({fig['readings'] / max(1, fig['kinesis_records']):,.0f} readings per record); "
        f"{fig['throttles']} throttled entries retried, {failed} failed; p50 put-to-durable {fig['p50_latency_ms']} ms"])
    return fig


class _LiveConsumer:
    """The ordered consumer, started before the fleet publishes, sampling throughput and lag as it goes."""

    def __init__(self, args: argparse.Namespace, client: Any, stream: str, t0: float) -> None:
        from streamkit.checkpoints import SqliteCheckpointStore
        from streamkit.consumer import Consumer, ConsumerConfig

        self.t0 = t0
        self.stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, math.inf, -math.inf])
        self.last_seq: dict[str, int] = {}
        self.out_of_order = 0
        self.count = 0
        self.lock = threading.Lock()
        self.samples: list[tuple[float, ...]] = []
        self.store = SqliteCheckpointStore(args.output / ".demo-checkpoints.db")
        self.consumer = Consumer(stream, self.handle, application_name=f"demo-{time.time_ns()}",
                                 checkpoint_store=self.store, client=client,
                                 config=ConsumerConfig(idle_poll_interval=0.1, min_poll_interval=0.1))
        self.runner = threading.Thread(target=self.consumer.run,
                                       kwargs={"install_signal_handlers": False, "stop_after_idle": 1.0})
        self.sampler = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> None:
        self.runner.start()
        self.sampler.start()

    def handle(self, r: Any) -> None:
        body = orjson.loads(r.data)
        t = body.get("temperature_c")
        with self.lock:
            self.count += 1
            if not isinstance(t, int | float):
                return  # the poisoned reading: the Lambda stage deals with it
            s = self.stats[body["sensor_id"]]
            s[0] += 1
            s[1] += t
            s[2] = min(s[2], t)
            s[3] = max(s[3], t)
            if body["seq"] <= self.last_seq.get(body["sensor_id"], 0):
                self.out_of_order += 1
            self.last_seq[body["sensor_id"]] = body["seq"]

    def _sample(self) -> None:
        while self.runner.is_alive():
            # Lag as the KCL means it: MillisBehindLatest, the most behind of the shards, 0 once caught
            # up (the figure the consumer's metrics and live view show; kinesalite reports 0 always,
            # so the reader derives it from the last record's arrival when a read came back full).
            behind = [s.millis_behind_latest or 0 for s in self.consumer.shard_stats()]
            with self.lock:
                self.samples.append((time.perf_counter() - self.t0, self.count, max(behind, default=0) / 1000))
            time.sleep(0.1)

    def stop(self) -> None:
        self.consumer.stop()
        self.runner.join(10)

    def finish(self, report: Report, published: dict[str, Any]) -> dict[str, Any]:
        report.stage("3. the ordered consumer built per-sensor statistics meanwhile")
        self.runner.join()
        self.store.close()
        seconds = time.perf_counter() - self.t0
        lags = [lag for t, n, lag in self.samples if 0 < n < published["readings"]]
        top = sorted(self.stats.items(), key=lambda kv: -kv[1][0])[:3]
        fig = {"records": self.count, "sensors": len(self.stats), "out_of_order": self.out_of_order,
               "seconds": round(seconds, 2), "median_lag_s": round(sorted(lags)[len(lags) // 2], 3) if lags else None,
               "max_lag_s": round(max(lags), 3) if lags else None}
        report.figures["consumer"] = fig
        report.series["consumer"] = self.samples
        report.section("consumer", [
            f"{self.count:,} readings from {len(self.stats)} sensors, {self.out_of_order} out of order per sensor; "
            f"consumed while published, lag median {fig['median_lag_s']} s, max {fig['max_lag_s']} s",
            *(f"{sid}: {int(s[0])} readings, mean {s[1] / s[0]:.2f} C, min {s[2]:.2f}, max {s[3]:.2f}"
              for sid, s in top)])
        return fig


def _lambda(report: Report, client: Any, stream: str) -> None:
    from producer.replay import replay
    from streamkit import kinesis, kinesis_handler
    from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
    from streamkit.records import StreamRecord

    report.stage("4. a Kinesis-triggered Lambda handler, a poisoned reading, and its replay")
    dead = report.out / "dead-letters.jsonl"
    dead.unlink(missing_ok=True)
    alerts = 0

    @kinesis_handler(body="json", max_attempts=3, on_failure=f"file:{dead}", backoff_base=0.01)
    def check_temperature(record: StreamRecord) -> None:
        nonlocal alerts
        t = record.body["temperature_c"]
        if not isinstance(t, int | float):
            raise ValueError(f"temperature is not a number: {t!r}")
        if t > 30:
            alerts += 1

    t0 = time.perf_counter()
    stats = EventSourceMapping(stream, check_temperature, client=client,
                               config=EsmConfig(batch_size=500, starting_position="TRIM_HORIZON",
                                                report_batch_item_failures=True,
                                                parallelization_factor=2)).run(stop_after_idle=1.0)
    letters = [orjson.loads(line) for line in dead.read_text().splitlines()] if dead.exists() else []
    kinesis.create_stream(client, "sensor-readings-replay", 1)
    replayed = replay(f"file:{dead}", "sensor-readings-replay", client=client)
    fixed: list[Any] = []

    @kinesis_handler(body="json")
    def fixed_handler(record: StreamRecord) -> None:  # version 2 reads "poison" as a missing value
        fixed.append(record.body)

    EventSourceMapping("sensor-readings-replay", fixed_handler, client=client,
                       config=EsmConfig(starting_position="TRIM_HORIZON")).run(stop_after_idle=1.0)
    windows = _windows(report, client, stream)
    report.figures["lambda"] = {"invocations": stats.invocations, "kinesis_records": stats.records_succeeded,
                                "dead_letters": len(letters), "replayed": replayed["records"],
                                "processed_after_replay": len(fixed), "alerts": alerts, "windows": len(windows),
                                "seconds": round(time.perf_counter() - t0, 2)}
    report.section("Lambda", [
        f"{stats.invocations} invocations over {stats.records_succeeded} Kinesis records (deaggregated in the "
        f"handler); {alerts} readings above 30 C",
        f"poisoned reading -> {dead} ({len(letters)} letter, payload included: {letter_text(letters)})",
        f"replayed {replayed['records']} record to sensor-readings-replay; the fixed handler processed {len(fixed)}",
        f"2-second tumbling windows: {len(windows)} per-shard aggregates stored in {report.out / 'windows.jsonl'}"
        + (f", e.g. {windows[0]}" if windows else "")])


def _windows(report: Report, client: Any, stream: str) -> list[str]:
    """The readings as 2-second tumbling-window aggregates per shard (count, mean, max), one stored line each."""
    from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
    from streamkit.aws_lambda.windows import WindowResult, tumbling_window
    from streamkit.records import StreamRecord

    stored: list[str] = []

    def add(state: dict[str, Any], record: StreamRecord) -> dict[str, Any]:
        t = record.body.get("temperature_c")
        if not isinstance(t, int | float):
            return state  # the poisoned reading: not counted
        return {"n": state.get("n", 0) + 1, "sum": state.get("sum", 0.0) + t, "max": max(state.get("max", t), t)}

    def store(window: WindowResult) -> None:
        st = window.state
        if st.get("n"):
            stored.append(f"{window.shard_id} {window.start}: {st['n']} readings, mean {st['sum'] / st['n']:.2f} C, "
                          f"max {st['max']:.2f} C")

    EventSourceMapping(stream, tumbling_window(add, store), client=client,
                       config=EsmConfig(batch_size=1000, starting_position="TRIM_HORIZON", tumbling_window=2,
                                        function_name="sensor-windows")).run(stop_after_idle=1.0)
    (report.out / "windows.jsonl").write_text("".join(orjson.dumps(line).decode() + "\n" for line in stored))
    return stored


def letter_text(letters: list[dict[str, Any]]) -> str:
    import base64

    if not letters:
        return "none"
    return f"key {letters[0]['partition_key']}, data {base64.b64decode(letters[0]['data']).decode()[:60]}"


def _dispatch(report: Report, client: Any) -> None:
    from dispatcher import Dispatcher, LocalTarget
    from producer import Producer
    from streamkit import kinesis
    from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
    from streamkit.aws_lambda.events import parse_event
    from streamkit.records import StreamRecord

    report.stage("5. ordered processing against the fan-out dispatcher")

    def enrich(record: StreamRecord) -> None:
        time.sleep(0.005)  # a downstream call costing 5 ms

    results = {}
    for name, lanes, n in (("ordered", 1, 200), ("dispatcher, 16 workers, per-key", 16, 1600)):
        stream = f"dispatch-{lanes}"
        kinesis.create_stream(client, stream, 1)
        with Producer(stream, client=client) as p:
            for i in range(n):
                p.put(b"%d" % i, f"sensor-{i % 300}")
        d = Dispatcher(LocalTarget(enrich, workers=lanes), mode="per-key", lanes=lanes)
        spent = {"s": 0.0, "n": 0}

        def handler(event: dict[str, Any], context: Any, d: Dispatcher = d, spent: dict[str, float] = spent) -> Any:
            t0 = time.perf_counter()
            recs = parse_event(event)
            out = {"batchItemFailures": d.dispatch(recs).batch_item_failures()}
            spent["s"] += time.perf_counter() - t0
            spent["n"] += len(recs)
            return out

        EventSourceMapping(stream, handler, client=client,
                           config=EsmConfig(batch_size=1000, starting_position="TRIM_HORIZON",
                                            report_batch_item_failures=True)).run(stop_after_idle=1.0)
        d.close()
        results[name] = spent["n"] / spent["s"]
    base = results["ordered"]
    fast = results["dispatcher, 16 workers, per-key"]
    report.figures["dispatcher"] = {"ordered_per_s": round(base), "dispatcher_per_s": round(fast),
                                    "speedup": round(fast / base, 1)}
    report.section("dispatcher", [f"ordered: {base:,.0f} records/s; dispatcher (16 lanes, per-key order kept): "
                                  f"{fast:,.0f} records/s, {fast / base:.1f}x"])


def _estimate(args: argparse.Namespace, report: Report, published: dict[str, Any], consumed: dict[str, Any]) -> None:
    from streamkit.estimator import Inputs, Limits, estimate

    report.stage("6. the estimator's prediction beside what was measured")
    inp = Inputs(shards=args.shards, record_size=150, key_bytes=12, records_per_second=args.rate,
                 aggregation="auto", partition_keys=args.sensors, limits=Limits(scale=args.limit_scale),
                 batch_size=10_000, per_record_ms=0.001)
    est = estimate(inp)
    write_cap = min(est["limits"]["shard write bytes"], est["limits"]["shard write records"])
    # Kinesis records: full aggregates would need ceil(bytes / 1 MiB) per shard, but the producer also
    # closes each shard's aggregate every record_max_buffered_time (100 ms) while the fleet publishes.
    by_size = math.ceil(published["readings"] / est["aggregation"])
    by_flush = args.shards * math.ceil(args.duration / 0.1)
    predicted_records = max(by_size, by_flush)
    report.figures["estimator"] = {"predicted_write_capacity_per_s": round(write_cap),
                                   "binding_limit": est["binding_limit"], "keeps_up": est["keeps_up"],
                                   "measured_publish_per_s": published["readings_per_s"],
                                   "measured_throttles": published["throttles"],
                                   "kinesis_records_predicted": predicted_records,
                                   "kinesis_records_measured": published["kinesis_records"]}
    report.section("estimator", [
        f"with {args.shards} shards at x{args.limit_scale} limits and KPL aggregation the stream takes "
        f"~{write_cap:,.0f} readings/s (binding: {est['binding_limit']}); the fleet published "
        f"{published['readings_per_s']:,}/s -> predicted {'no throttling' if est['keeps_up'] else 'throttling'}, "
        f"measured {published['throttles']} throttled entries",
        f"Kinesis records: predicted {predicted_records} (max of {by_size} full aggregates and {args.shards} shards x "
        f"{math.ceil(args.duration / 0.1)} flushes of 100 ms), measured {published['kinesis_records']}"])
