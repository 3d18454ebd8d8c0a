"""`streamkit local console`: a web page on 127.0.0.1 to look at the local stack (or any endpoint).

Streams (mode, record size, distribution, shards with hash ranges, parents, open/closed), a shard's
latest records (deaggregated and decoded by `streamkit.tail`, with a live follow), lease tables of both
layouts (owner, counter, checkpoint per shard), metrics from Prometheus endpoints, dead-letter files with
each letter's payload, and a replay button that calls `producer.replay.replay`.

A local web server is reachable by every page the user's browser opens, so:

- it binds 127.0.0.1 only (an ephemeral port by default);
- every request's Host header must be a loopback name with the server's port (a DNS-rebinding page
  names its own host): anything else is 403;
- every state-changing request (replay, the only one) must carry this run's token in the
  ``X-Streamkit-Token`` header; a cross-site page cannot read the token (same-origin policy) nor send
  a custom header without a CORS preflight, which is never granted (no CORS headers at all);
- GET requests change nothing.

Flask (the ``console`` extra) serves it through Werkzeug's threaded server; the page is one HTML file
with a little plain JavaScript: no build step.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from streamkit.aws.clients import aws_client
from streamkit.errors import ConfigurationError, LocalStackError, StreamkitError

__all__ = ["ConsoleConfig", "ConsoleServer", "make_app", "require_flask"]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
TOKEN_HEADER = "X-Streamkit-Token"
#: Records a shard view shows at most (the latest).
SHARD_VIEW_RECORDS = 100
#: User records one request reads at most: a long shard is shown a page at a time (the page asks for the next).
SHARD_SCAN_RECORDS = 20_000


@dataclass(frozen=True, kw_only=True)
class ConsoleConfig:
    kinesis_endpoint: str | None = None
    dynamodb_endpoint: str | None = None
    region: str | None = None
    #: Prometheus exposition URLs (a producer's or consumer's ``--metrics prometheus:PORT``).
    metrics_urls: tuple[str, ...] = ()
    #: Dead-letter sources shown (``file:PATH`` or ``sqs:QUEUE_URL``).
    dead_letters: tuple[str, ...] = ()
    sqs_endpoint: str | None = None
    #: ``TABLE=STREAM``: the stream a KCL single-stream lease table reads (its items do not name it), for lag.
    lease_streams: tuple[str, ...] = ()
    port: int = 0
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"--port {self.port}: use 0 (any free port) to 65535")
        for spec in self.dead_letters:
            kind, sep, rest = spec.partition(":")
            if kind not in ("file", "sqs") or not sep or not rest:
                raise ConfigurationError(f"--dead-letters {spec!r}: use file:PATH or sqs:QUEUE_URL")
        for spec in self.lease_streams:
            table, sep, stream = spec.partition("=")
            if not sep or not table or not stream:
                raise ConfigurationError(f"--lease-stream {spec!r}: use TABLE=STREAM")
        for url in self.metrics_urls:
            if not url.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:")):
                raise ConfigurationError(f"--metrics-url {url!r}: a Prometheus endpoint on this machine "
                                         "(http://127.0.0.1:PORT/metrics)")


class _Backend:
    """What the page shows, read through boto3 clients (this module is a tool at the edge)."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.kinesis = aws_client("kinesis", endpoint_url=config.kinesis_endpoint, region=config.region, retries=1)
        self.dynamodb = aws_client("dynamodb", endpoint_url=config.dynamodb_endpoint, region=config.region, retries=1)
        self._replay_lock = threading.Lock()

    def check(self) -> None:
        """Both endpoints answer (one cheap call each), before the page is served; else one line."""
        for service, client, operation in (("Kinesis", self.kinesis, "list_streams"),
                                           ("DynamoDB", self.dynamodb, "list_tables")):
            try:
                getattr(client, operation)(Limit=1)
            except Exception as exc:  # botocore's: said in one line, nothing started
                raise LocalStackError(f"cannot reach {service} at {client.meta.endpoint_url}: {exc}") from None

    # -- streams ---------------------------------------------------------------------------------
    def streams(self) -> list[dict[str, Any]]:
        from streamkit.transport import as_kinesis

        transport = as_kinesis(self.kinesis)
        names: list[str] = []
        kwargs: dict[str, Any] = {}
        while True:
            out = self.kinesis.list_streams(**kwargs)
            names.extend(out.get("StreamNames", []))
            if not out.get("HasMoreStreams") or not names:
                break
            kwargs = {"ExclusiveStartStreamName": names[-1]}
        result = []
        for name in sorted(names):
            s = transport.describe_stream_summary(name)
            shards = transport.list_shards(name)
            result.append({
                "name": s.name, "arn": s.arn, "status": s.status, "mode": s.stream_mode,
                "max_record_size_kib": s.max_record_size_kib, "distribution": s.record_distribution,
                "retention_hours": s.retention_hours,
                "shards": [{"shard_id": sh.shard_id, "open": sh.is_open, "parents": list(sh.parents),
                            "starting_hash_key": str(sh.starting_hash_key),
                            "ending_hash_key": str(sh.ending_hash_key)} for sh in shards],
            })
        return result

    def records(self, stream: str, shard_id: str, after: str | None) -> dict[str, Any]:
        """The shard's latest records (at most SHARD_VIEW_RECORDS), or those after ``SEQ[/SUB]``."""
        from streamkit.positions import ReadPosition
        from streamkit.tail import Tail, TailConfig, record_json

        skip: tuple[int, int] | None = None
        position = ReadPosition(kind="TRIM_HORIZON")
        if after:
            seq, _, sub = after.partition("/")
            if not seq.isdigit() or (sub and not sub.isdigit()):
                raise ConfigurationError(f"after={after!r}: use SEQUENCE or SEQUENCE/SUB")
            skip = (int(seq), int(sub) if sub else 1 << 62)
            position = ReadPosition(kind="AT_SEQUENCE_NUMBER", sequence_number=seq)
        tail = Tail(stream, client=self.kinesis, config=TailConfig(position=position, shards=(shard_id,),
                                                                   calls_per_second=2.0))
        latest: list[dict[str, Any]] = []
        scanned = 0
        for rec in tail.records():
            if skip is not None and (int(rec.sequence_number), rec.sub_sequence_number or 0) <= skip:
                continue
            latest.append(record_json(rec, "auto"))
            del latest[:-SHARD_VIEW_RECORDS]
            scanned += 1
            if scanned >= SHARD_SCAN_RECORDS:
                tail.stop()
                break
        return {"stream": stream, "shard_id": shard_id, "records": latest, "more": scanned >= SHARD_SCAN_RECORDS}

    # -- leases ----------------------------------------------------------------------------------
    def lease_tables(self) -> list[dict[str, Any]]:
        from streamkit.checkpoints.layouts import item_layout

        named = dict(spec.partition("=")[::2] for spec in self.config.lease_streams)
        tables = []
        for name in self.dynamodb.list_tables().get("TableNames", []):
            items: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"TableName": name}
            while True:
                out = self.dynamodb.scan(**kwargs)
                items.extend(out.get("Items", []))
                if "LastEvaluatedKey" not in out:
                    break
                kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
            leases = [i for i in items if "leaseKey" in i and "leaseCounter" in i and "checkpoint" in i]
            if not leases:
                continue
            layout = item_layout(leases[0])
            rows = []
            for item in sorted(leases, key=lambda i: i["leaseKey"]["S"]):
                sub = item.get("checkpointSubSequenceNumber", {}).get("N")
                checkpoint = item["checkpoint"]["S"]
                application = item.get("namespace", {}).get("S") if layout == "streamkit" else name
                lease_key = item["leaseKey"]["S"].split("|", 1)[-1]
                rows.append({
                    "application": application,
                    "lease_key": lease_key,
                    "owner": item.get("leaseOwner", {}).get("S"),
                    "counter": int(item["leaseCounter"]["N"]),
                    "checkpoint": checkpoint if sub in (None, "0") or not checkpoint.isdigit() else f"{checkpoint}/{sub}",
                    "lag_ms": self._lag(_stream_of_lease(application, lease_key) or named.get(name),
                                        lease_key.rpartition(":")[2], checkpoint),
                })
            tables.append({"table": name, "layout": layout, "leases": rows})
        return tables

    def _lag(self, stream: str | None, shard_id: str, checkpoint: str) -> int | None:
        """Milliseconds since the oldest record past `checkpoint` arrived (0: nothing waits; None: unknown).

        One GetShardIterator and one GetRecords of one record: what Lambda calls the iterator age.
        """
        from streamkit.transport import IteratorStart, as_kinesis

        if stream is None or checkpoint == "SHARD_END":
            return None if stream is None else 0
        if checkpoint.isdigit():
            start = IteratorStart(type="AFTER_SEQUENCE_NUMBER", sequence_number=checkpoint)
        elif checkpoint in ("TRIM_HORIZON", "LATEST"):
            start = IteratorStart(type=checkpoint)  # type: ignore[arg-type]
        else:
            return None
        try:
            transport = as_kinesis(self.kinesis)
            fetched = transport.get_records(transport.get_shard_iterator(stream, shard_id, start), 1)
        except StreamkitError:
            return None
        if not fetched.records:
            return 0
        arrival = fetched.records[0].get("ApproximateArrivalTimestamp")
        if arrival is None:
            return None
        seconds = arrival if isinstance(arrival, int | float) else arrival.timestamp()
        return max(0, int((time.time() - float(seconds)) * 1000))

    # -- metrics ---------------------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        out = []
        for url in self.config.metrics_urls:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:  # loopback only (checked in ConsoleConfig)
                    text = resp.read().decode("utf-8", "replace")
                lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
                out.append({"url": url, "lines": lines, "error": None})
            except OSError as exc:
                out.append({"url": url, "lines": [], "error": str(exc)})
        return out

    # -- dead letters ----------------------------------------------------------------------------
    def dead_letters(self) -> list[dict[str, Any]]:
        out = []
        for spec in self.config.dead_letters:
            letters: list[dict[str, Any]] = []
            error = None
            try:
                letters = [_letter_view(letter) for letter in self._letters_of(spec)]
            except (StreamkitError, OSError) as exc:
                error = str(exc)
            out.append({"source": spec, "letters": letters, "error": error})
        return out

    def _letters_of(self, spec: str) -> list[dict[str, Any]]:
        """A file's letters; a queue's first messages, left visible (VisibilityTimeout 0: looking takes nothing)."""
        import orjson

        from streamkit.destinations import read_dead_letters

        kind, _sep, rest = spec.partition(":")
        if kind == "file":
            path = Path(rest).expanduser()
            return list(read_dead_letters(path)) if path.exists() else []
        try:
            messages = self.sqs().receive_message(QueueUrl=rest, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                                  WaitTimeSeconds=0).get("Messages", [])
        except Exception as exc:  # botocore's errors: shown on the page, not raised
            raise StreamkitError(f"{spec}: {exc}") from None
        return [orjson.loads(m["Body"]) for m in messages]

    def sqs(self) -> Any:
        return aws_client("sqs", endpoint_url=self.config.sqs_endpoint, region=self.config.region, retries=1)

    def replay(self, source: str, stream: str) -> dict[str, int]:
        from producer.replay import replay

        if source not in self.config.dead_letters:
            raise ConfigurationError(f"{source!r} is not a dead-letter source this console shows")
        if not stream:
            raise ConfigurationError("name the stream to replay to")
        with self._replay_lock:  # one replay at a time: a double click must not publish twice at once
            return replay(source, stream, client=self.kinesis,
                          sqs_client=self.sqs() if source.startswith("sqs:") else None)  # as `replay`: nothing deleted


def _stream_of_lease(application: str | None, lease_key: str) -> str | None:
    """The stream a lease reads: ``account:stream:epoch:shard`` keys name it; streamkit's single-stream
    namespaces are ``application/stream``; a KCL single-stream table does not say (`ConsoleConfig.lease_streams`)."""
    parts = lease_key.split(":")
    if len(parts) == 4:
        return parts[1]
    if application and "/" in application:
        return application.rpartition("/")[2]
    return None


def _letter_view(letter: dict[str, Any]) -> dict[str, Any]:
    data = base64.b64decode(letter["data"]) if "data" in letter else None
    return {"stream": _stream_of(letter), "partition_key": letter.get("partition_key"),
            "sequence_number": letter.get("sequence_number"), "error": letter.get("error"),
            "attempts": letter.get("attempts"), "payload": None if data is None else data.decode("utf-8", "replace")}


def _stream_of(letter: dict[str, Any]) -> str | None:
    arn = letter.get("event_source_arn") or letter.get("stream_arn")
    return str(arn).rpartition("/")[2] if arn else None


def require_flask() -> None:
    """The `console` extra: a missing Flask is one line naming it, before anything starts."""
    try:
        import flask  # noqa: F401
    except ImportError:
        raise ConfigurationError("the console needs Flask: pip install 'streamkit[console]'") from None


def make_app(config: ConsoleConfig, port: Callable[[], int], backend: Any = None) -> Any:
    """The Flask app; `port` gives the port the server listens on (for the Host check)."""
    require_flask()
    from flask import Flask, Response, jsonify, request

    app = Flask("streamkit.console")
    data = backend or _Backend(config)
    page = resources.files("streamkit.local").joinpath("console.html").read_text()

    @app.before_request
    def guard() -> Any:
        allowed = {f"{name}:{port()}" for name in LOOPBACK_NAMES}
        if request.host not in allowed:
            return Response("forbidden: this console answers only to 127.0.0.1 / localhost\n", status=403,
                            mimetype="text/plain")
        if request.method not in ("GET", "HEAD"):
            given = request.headers.get(TOKEN_HEADER, "")
            if not hmac.compare_digest(given.encode(), config.token.encode()):
                return Response("forbidden: missing or wrong token\n", status=403, mimetype="text/plain")
        return None

    @app.after_request
    def headers(resp: Any) -> Any:
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Content-Security-Policy"] = "default-src 'self'; script-src 'self' 'unsafe-inline'; " \
                                                  "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def answer(fn: Callable[[], Any]) -> Any:
        try:
            return jsonify(fn())
        except ConfigurationError as exc:
            return jsonify({"error": str(exc)}), 400
        except StreamkitError as exc:
            return jsonify({"error": str(exc)}), 502

    @app.get("/")
    def index() -> Any:
        return Response(page.replace("__TOKEN__", config.token), mimetype="text/html")

    @app.get("/api/streams")
    def streams() -> Any:
        return answer(data.streams)

    @app.get("/api/records")
    def records() -> Any:
        args = request.args
        return answer(lambda: data.records(args.get("stream", ""), args.get("shard", ""), args.get("after")))

    @app.get("/api/leases")
    def leases() -> Any:
        return answer(data.lease_tables)

    @app.get("/api/metrics")
    def metrics() -> Any:
        return answer(data.metrics)

    @app.get("/api/dead-letters")
    def dead_letters() -> Any:
        return answer(data.dead_letters)

    @app.post("/api/replay")
    def replay() -> Any:
        body = request.get_json(silent=True) or {}
        return answer(lambda: data.replay(str(body.get("source", "")), str(body.get("stream", ""))))

    return app


class ConsoleServer:
    """The console on 127.0.0.1, in a thread: `url` once started, `stop()` to end it."""

    def __init__(self, config: ConsoleConfig, backend: Any = None) -> None:
        import logging

        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request on the terminal
        self.config = config
        self._port = 0
        if backend is None:
            backend = _Backend(config)
            backend.check()
        app = make_app(config, lambda: self._port, backend)
        try:
            self._server = make_server("127.0.0.1", config.port, app, threaded=True)
        except OSError as exc:
            raise ConfigurationError(f"--port {config.port}: cannot listen on 127.0.0.1 ({exc.strerror})") from None
        self._port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="console", daemon=True)

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/"

    def start(self) -> ConsoleServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(10)

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def endpoints_of(kinesis: str | None, dynamodb: str | None, data_dir: Path | None) -> tuple[str | None, str | None]:
    """The endpoints to show: those given (options or AWS_ENDPOINT_URL* variables), else the running local
    stack's; neither is one `ConfigurationError` line."""
    import os

    kinesis = kinesis or os.environ.get("AWS_ENDPOINT_URL_KINESIS") or os.environ.get("AWS_ENDPOINT_URL")
    dynamodb = dynamodb or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
    if kinesis and dynamodb:
        return kinesis, dynamodb
    from streamkit.local import stack as local_stack

    running = local_stack.status(data_dir=data_dir)
    if running is None:
        if kinesis:
            return kinesis, dynamodb
        raise ConfigurationError("no endpoint: start the local stack (streamkit local up) or give --endpoint-url")
    return kinesis or running.kinesis_endpoint, dynamodb or running.dynamodb_endpoint
