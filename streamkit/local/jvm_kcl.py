"""Run the real KCL 3.1.3 MultiLangDaemon (the JVM) against the local stack: a tool for interop tests,
benchmarks and JVM teams, not part of the library.

The jars come from the pinned ``kclpy-ext`` wheel (``amazon_kclpy/jars/``; a dev/test dependency): no
Maven. They are checked against ``kcl_jars.txt`` (names and SHA-256) before the first start, so another
wheel is refused rather than silently tested. Java 17 or later must be on PATH (or in ``JAVA_HOME``).

What the KCL needs from the local stack, found getting it to run:

- Kinesis over HTTP/2 without TLS: the kinesis-local (``kinesis-mock``) backend's plain port speaks it;
  kinesalite speaks HTTP/1.1 only (the KCL fails with ``First received frame was not SETTINGS``).
- KCL 3 adds ``LeaseOwnerToLeaseKeyIndex`` to its lease table with UpdateTable, which dynalite rejects;
  a table created with the index already in it works (`prepare_tables` creates it as the KCL would).
- KCL 3 creates ``<app>-CoordinatorState`` and ``<app>-WorkerMetricStats`` itself, then polls until they
  are ACTIVE (~20 s on dynalite); `prepare_tables` creates them first, with the KCL's key schemas.
- The daemon's default shutdown grace is 0 (a ``TimeoutException`` on SIGTERM): `JvmKclConfig` sets
  ``shutdownGraceMillis``. On SIGTERM the KCL keeps its leases (they expire after ``failoverTimeMillis``)
  and lets go of its leader lock.
- KCL 3's leader holds a lock (the ``Leader`` item of ``<app>-CoordinatorState``, 2 minutes) that a
  clean SIGTERM gives back; a KCL that was killed, or whose graceful shutdown timed out (seen after a
  reshard: it waits on a finished shard's processor), leaves it, and the next KCL worker assigns no lease
  for those 2 minutes. Workers that take turns with streamkit start when no KCL runs, so the lock is
  stale by then: `release_leader_lock` deletes it.
- On an empty lease table the KCL waits a random 1-30 s before it lists the shards (hard-coded); with
  leases already in the table it starts at once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import TracebackType

from streamkit.errors import ConfigurationError, LocalStackError

__all__ = [
    "FAST_START",
    "KCLPY_EXT",
    "KCL_VERSION",
    "MULTILANG_DAEMON",
    "JvmKcl",
    "JvmKclConfig",
    "java_executable",
    "kcl_jars",
    "prepare_tables",
    "release_leader_lock",
]

KCL_VERSION = "3.1.3"
#: The wheel whose jars are run (pinned in pyproject's dev extra; its jars are pinned by kcl_jars.txt).
KCLPY_EXT = "kclpy-ext==3.1.3.post4"
MULTILANG_DAEMON = "software.amazon.kinesis.multilang.MultiLangDaemon"
JAVA_MAJOR = 17
#: JVM options for a quicker start in tests: the client compiler only and the serial collector (a short run
#: spends most of its time starting). Not for benchmarks: they change how the KCL's code is compiled.
FAST_START = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto")
_MANIFEST = Path(__file__).resolve().parent / "kcl_jars.txt"


def _expected_jars() -> dict[str, str]:
    lines = (line.split() for line in _MANIFEST.read_text().splitlines() if line and not line.startswith("#"))
    return {name: digest for name, digest in lines}


@cache
def kcl_jars() -> Path:
    """The folder of the pinned KCL jars, checked (names and SHA-256) once per process."""
    spec = importlib.util.find_spec("amazon_kclpy")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(f"the JVM KCL runner needs {KCLPY_EXT} (pip install '{KCLPY_EXT}', or "
                                 "`make test`, which installs it)")
    jars = Path(next(iter(spec.submodule_search_locations))) / "jars"
    expected = _expected_jars()
    found = {p.name for p in jars.glob("*.jar")}
    if found != set(expected):
        missing, extra = sorted(set(expected) - found), sorted(found - set(expected))
        raise ConfigurationError(f"the jars in {jars} are not {KCLPY_EXT}'s (missing {missing[:3]}, unexpected "
                                 f"{extra[:3]}): install '{KCLPY_EXT}'")
    for name, digest in expected.items():
        if hashlib.sha256((jars / name).read_bytes()).hexdigest() != digest:
            raise ConfigurationError(f"{jars / name} does not have the SHA-256 pinned for {KCLPY_EXT}: "
                                     f"reinstall '{KCLPY_EXT}'")
    return jars


@cache
def java_executable() -> str:
    """A Java 17+ launcher (JAVA_HOME first, then PATH), or one line saying what is missing."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home and (Path(home) / "bin" / "java").exists() else shutil.which("java")
    if java is None:
        raise ConfigurationError(f"the JVM KCL needs Java {JAVA_MAJOR}+ and none was found (no java on PATH or in "
                                 "JAVA_HOME): install a JDK/JRE 17, e.g. apt-get install openjdk-17-jre-headless")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    major = 0 if m is None else int(m.group(2)) if m.group(1) == "1" and m.group(2) else int(m.group(1))
    if major < JAVA_MAJOR:
        raise ConfigurationError(f"the JVM KCL needs Java {JAVA_MAJOR}+; {java} is "
                                 f"{(out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else 'unknown'}")
    return java


@dataclass(frozen=True, kw_only=True)
class JvmKclConfig:
    """A MultiLangDaemon properties file, with timings low enough for tests (the KCL's defaults in comments).

    `processor` is the command the daemon starts per shard (split on spaces by the KCL, so no spaces
    inside one argument). `extra` adds or overrides any property by its KCL name.
    """

    application_name: str
    stream_name: str
    processor: str
    kinesis_endpoint: str
    dynamodb_endpoint: str
    region: str = "us-east-1"
    initial_position: str = "TRIM_HORIZON"
    worker_id: str | None = None
    failover_time_millis: int = 3000  # KCL: 10,000
    lease_assignment_interval_millis: int = 1000  # KCL: 2 x failoverTimeMillis
    idle_time_between_reads_millis: int = 200  # KCL: 1,000
    shard_sync_interval_millis: int = 1000  # KCL: 60,000
    parent_shard_poll_interval_millis: int = 500  # KCL: 10,000
    shutdown_grace_millis: int = 10_000  # KCL: 0, which times out on SIGTERM
    worker_metrics_reporter_freq_millis: int = 1000  # KCL: 30,000
    max_records: int = 10_000
    #: KCL 3 assigns leases only to workers whose CPU metrics it has collected for a while (10-15 s after
    #: start here); without them it balances by throughput, as streamkit does. KCL: false.
    disable_worker_metrics: bool = True
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("application_name", "stream_name", "processor", "kinesis_endpoint", "dynamodb_endpoint"):
            if not getattr(self, name):
                raise ConfigurationError(f"JvmKclConfig.{name} is required")
        if self.failover_time_millis <= 0 or self.shutdown_grace_millis <= 0:
            raise ConfigurationError("JvmKclConfig: failover_time_millis and shutdown_grace_millis must be positive")

    def properties(self) -> dict[str, str]:
        props = {
            "executableName": self.processor,
            "streamName": self.stream_name,
            "applicationName": self.application_name,
            "AWSCredentialsProvider": "DefaultCredentialsProvider",
            "processingLanguage": "python/3",
            "initialPositionInStream": self.initial_position,
            "regionName": self.region,
            "kinesisEndpoint": self.kinesis_endpoint,
            "dynamoDBEndpoint": self.dynamodb_endpoint,
            "metricsLevel": "NONE",
            "failoverTimeMillis": str(self.failover_time_millis),
            "leaseAssignmentIntervalMillis": str(self.lease_assignment_interval_millis),
            "idleTimeBetweenReadsInMillis": str(self.idle_time_between_reads_millis),
            "shardSyncIntervalMillis": str(self.shard_sync_interval_millis),
            "parentShardPollIntervalMillis": str(self.parent_shard_poll_interval_millis),
            "shutdownGraceMillis": str(self.shutdown_grace_millis),
            "workerMetricsReporterFreqInMillis": str(self.worker_metrics_reporter_freq_millis),
            "maxRecords": str(self.max_records),
            "disableWorkerMetrics": str(self.disable_worker_metrics).lower(),
        }
        if self.worker_id:
            props["workerId"] = self.worker_id
        props.update(self.extra)
        return props

    def properties_text(self) -> str:
        return "".join(f"{k} = {v}\n" for k, v in self.properties().items())


def prepare_tables(*, application_name: str, dynamodb_endpoint: str, region: str = "us-east-1",
                   lease_table: bool = True) -> None:
    """Create what the KCL would create and dynalite cannot (the lease table with its owner index) or
    creates slowly (the coordinator-state and worker-metrics tables), all on-demand as the KCL does."""
    from streamkit.aws.clients import aws_client
    from streamkit.checkpoints.dynamodb import DynamoDBCheckpointStore

    client = aws_client("dynamodb", endpoint_url=dynamodb_endpoint, region=region)
    if lease_table:
        DynamoDBCheckpointStore(application_name, client=client, layout="kcl")
    existing = set(client.list_tables()["TableNames"])
    # Key names as the KCL's CoordinatorStateDAO ("key") and WorkerMetricStatsDAO ("wid") create them.
    for suffix, key in (("CoordinatorState", "key"), ("WorkerMetricStats", "wid")):
        name = f"{application_name}-{suffix}"
        if name not in existing:
            client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
    deadline = time.monotonic() + 30
    for suffix in ("CoordinatorState", "WorkerMetricStats"):
        while client.describe_table(TableName=f"{application_name}-{suffix}")["Table"]["TableStatus"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise LocalStackError(f"{application_name}-{suffix} did not become ACTIVE within 30 s")
            time.sleep(0.05)


def release_leader_lock(*, application_name: str, dynamodb_endpoint: str, region: str = "us-east-1") -> bool:
    """Delete KCL 3's leader lock left by a KCL worker that is no longer running (call it only when none
    runs); True if there was one."""
    from streamkit.aws.clients import aws_client

    client = aws_client("dynamodb", endpoint_url=dynamodb_endpoint, region=region)
    try:
        old = client.delete_item(TableName=f"{application_name}-CoordinatorState", Key={"key": {"S": "Leader"}},
                                 ReturnValues="ALL_OLD")
    except client.exceptions.ResourceNotFoundException:
        return False
    return bool(old.get("Attributes"))


class JvmKcl:
    """One MultiLangDaemon process (in its own process group, with its per-shard processors).

    `stop()` is SIGTERM then a wait (the KCL calls shutdown_requested, keeps its leases); `kill()` is
    SIGKILL of the whole group (a crash). The daemon's output goes to ``work_dir/kcl.log``.
    """

    def __init__(self, config: JvmKclConfig, *, work_dir: Path, env: Mapping[str, str] | None = None,
                 java_options: tuple[str, ...] = ()) -> None:
        self.config = config
        self.work_dir = work_dir
        self.env = dict(env or {})
        #: Options for the JVM itself, e.g. `FAST_START` in tests (not in a benchmark: it changes the JIT).
        self.java_options = java_options
        self.log_path = work_dir / "kcl.log"
        self.properties_path = work_dir / "app.properties"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def command(self) -> list[str]:
        return [java_executable(), *self.java_options, "-cp", str(kcl_jars() / "*"), MULTILANG_DAEMON,
                "--properties-file", str(self.properties_path)]

    def start(self) -> JvmKcl:
        cmd = self.command()  # Java and the jars are checked before anything is written or started
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text(self.config.properties_text())
        env = {**os.environ, "AWS_REGION": self.config.region, **self.env}
        env.setdefault("AWS_ACCESS_KEY_ID", "local")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          cwd=self.work_dir, env=env, start_new_session=True)
        return self

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, pattern: str, *, timeout: float, start: int = 0) -> int:
        """Wait until `pattern` (a regex) appears in the log after offset `start`; its end offset."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log(), start)
            if m:
                return m.end()
            if not self.running():
                raise LocalStackError(f"the KCL exited before {pattern!r} appeared: {self._last_error()}")
            if time.monotonic() > deadline:
                raise LocalStackError(f"the KCL did not log {pattern!r} within {timeout:.0f} s (see {self.log_path})")
            time.sleep(0.2)

    def _last_error(self) -> str:
        lines = [line for line in self.log().splitlines() if "ERROR" in line or "Exception" in line]
        return lines[-1][:300] if lines else f"no error in {self.log_path}"

    def stop(self, *, timeout: float | None = None) -> int:
        """SIGTERM and wait for the daemon's graceful shutdown (then SIGKILL what is left); its exit code."""
        proc = self._proc
        if proc is None:
            return 0
        wait = timeout if timeout is not None else self.config.shutdown_grace_millis / 1000 + 10
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        self._kill_group()
        return proc.wait()

    def kill(self) -> None:
        """SIGKILL the daemon and its processors at once: a crash mid-batch."""
        self._kill_group()
        if self._proc is not None:
            self._proc.wait()

    def _kill_group(self) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> JvmKcl:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"JvmKcl({self.config.application_name!r}, pid={self.pid})"
