"""An HTTP proxy on 127.0.0.1 in front of a local Kinesis server that enforces shard limits and injects faults.

Local servers accept any rate and never fail; this proxy answers the way AWS does when a shard is over
its limits or the service has a bad moment, so retry, throttling and lag behaviour can be tested for
real. Data-plane calls (PutRecord, PutRecords, GetRecords, GetShardIterator) are limited and faulted;
everything else is passed through untouched.

Admin endpoints: ``GET /__streamkit/stats`` (counters as JSON) and ``POST /__streamkit/config`` with
``{"faults": SPEC, "limit_scale": X, "reset": true}``.

The shared state and the data-plane handlers (the limits) are in `streamkit.local.proxy_limits`, the fault
specifications in `streamkit.local.faults`; this module is the HTTP server, its admin endpoints and `main`.

Run: ``python -m streamkit.local.proxy --port P --upstream http://127.0.0.1:U [--limit-scale X] [--faults SPEC]``
"""

from __future__ import annotations

import argparse
import http.client
import socket
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from streamkit.kinesis_types import foreign_arn_problem
from streamkit.local.faults import FaultSpec, parse_fault_spec
from streamkit.local.proxy_limits import (
    _ARN_ONLY,
    _UPDATES,
    DATA_PLANE,
    JSON_TYPE,
    TARGET_PREFIX,
    ProxyState,
    _Reply,
    _Reset,
    _signing_region,
    _stream_name,
    handle_get_records,
    handle_get_shard_iterator,
    handle_put_record,
    handle_put_records,
)
from streamkit.local.stream_settings import SettingsError

__all__ = ["KinesisProxy", "configure_proxy", "main", "proxy_stats"]

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this, 40 ms per call
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: bytes, content_type: str = JSON_TYPE) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, orjson.dumps({"__type": code, "message": message}))

    def _reset(self) -> None:
        # SO_LINGER 0 turns close() into a TCP RST: the client sees "connection reset by peer".
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        self.connection.close()

    def do_GET(self) -> None:
        state = self.server.state
        if self.path.startswith("/__streamkit/stats"):
            with state.lock:
                body = {"stats": dict(state.stats), "limit_scale": state.limit_scale,
                        "faults": {k: v for k, v in vars(state.faults).items()}}
            self._send(200, orjson.dumps(body), "application/json")
        else:
            self._send(404, b"{}", "application/json")

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.startswith("/__streamkit/config"):
            cfg = orjson.loads(raw or b"{}")
            state.configure(
                limit_scale=float(cfg["limit_scale"]) if "limit_scale" in cfg else None,
                faults=parse_fault_spec(str(cfg["faults"])) if "faults" in cfg else None,
                reset=bool(cfg.get("reset", False)),
            )
            self._send(200, b"{}", "application/json")
            return
        target = self.headers.get("X-Amz-Target", "")
        op = target.removeprefix(TARGET_PREFIX)
        headers = {k: v for k, v in self.headers.items()}
        state.count(f"op.{op}")
        try:
            if op in DATA_PLANE:
                self._inject_transport_faults(state)
            req = orjson.loads(raw) if raw else {}
            if op in _UPDATES:
                state.settings.update(op, req)
                self._send(200, b"{}")
                return
            for key in ("StreamARN", "ConsumerARN"):
                problem = foreign_arn_problem(str(req.get(key, "")), _signing_region(headers))
                if problem is not None:  # AWS: another account's or region's stream is not found here
                    raise _Reply(400, "ResourceNotFoundException", problem)
            if "StreamARN" in req and "StreamName" not in req and op not in _ARN_ONLY:
                req["StreamName"] = _stream_name(req)  # the backend knows names only
                del req["StreamARN"]
                raw = orjson.dumps(req)
            if op == "CreateStream":
                backend, settings = state.settings.create_request(req)
                status, body = state.forward(target, orjson.dumps(backend), headers)
                if status == 200:
                    state.settings.created(backend["StreamName"], settings)
            elif op == "DescribeStreamSummary":
                status, body = state.forward(target, raw, headers)
                if status == 200:
                    out = orjson.loads(body)
                    state.settings.describe(_stream_name(req), out["StreamDescriptionSummary"])
                    body = orjson.dumps(out)
            elif op == "DeleteStream":
                status, body = state.forward(target, raw, headers)
                if status == 200:
                    state.settings.deleted(_stream_name(req))
            elif op == "PutRecords":
                status, body = handle_put_records(state, req, headers)
            elif op == "PutRecord":
                status, body = handle_put_record(state, req, headers, raw)
            elif op == "GetRecords":
                status, body = handle_get_records(state, req, headers, raw)
            elif op == "GetShardIterator":
                status, body = handle_get_shard_iterator(state, req, headers, raw)
            else:
                status, body = state.forward(target, raw, headers)
        except _Reset:
            self._reset()
            return
        except SettingsError as err:
            self._error(err.status, err.code, err.message)
            return
        except _Reply as r:
            self._error(r.status, r.code, r.message)
            return
        except (OSError, http.client.HTTPException) as exc:
            self._error(503, "ServiceUnavailable", f"upstream unavailable: {exc}")
            return
        self._send(status, body)

    def _inject_transport_faults(self, state: ProxyState) -> None:
        f = state.faults
        if f.latency_max > 0:
            with state.lock:
                delay = state.rng.uniform(f.latency_min, f.latency_max)
            time.sleep(delay)
        if state.chance(f.reset):
            state.count("fault.reset")
            raise _Reset
        if state.chance(f.internal):
            state.count("fault.internal")
            raise _Reply(500, "InternalFailure", "Internal service failure.")
        if state.chance(f.unavailable):
            state.count("fault.unavailable")
            raise _Reply(503, "ServiceUnavailable", "Service unavailable.")

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, state: ProxyState) -> None:
        self.state = state
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that vanished mid-request is not an error worth a traceback


class KinesisProxy:
    """The proxy, in-process: ``with KinesisProxy(upstream) as p: use(p.endpoint)``."""

    def __init__(self, upstream: str, *, port: int = 0, limit_scale: float = 1.0, faults: str | FaultSpec = "") -> None:
        spec = parse_fault_spec(faults) if isinstance(faults, str) else faults
        self.state = ProxyState(upstream, limit_scale=limit_scale, faults=spec)
        self._server = _Server(port, self.state)
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> KinesisProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="kinesis-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> KinesisProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def proxy_stats(endpoint: str) -> dict[str, Any]:
    """The counters of a running proxy (in this process or another)."""
    import urllib.request

    with urllib.request.urlopen(endpoint.rstrip("/") + "/__streamkit/stats", timeout=5) as resp:
        return dict(orjson.loads(resp.read()))


def configure_proxy(endpoint: str, *, faults: str | None = None, limit_scale: float | None = None,
                    reset: bool = False) -> None:
    """Change a running proxy's faults or limit scale; ``reset`` clears counters and buckets."""
    import urllib.request

    cfg: dict[str, Any] = {"reset": reset}
    if faults is not None:
        parse_fault_spec(faults)
        cfg["faults"] = faults
    if limit_scale is not None:
        cfg["limit_scale"] = limit_scale
    req = urllib.request.Request(endpoint.rstrip("/") + "/__streamkit/config", data=orjson.dumps(cfg), method="POST")
    with urllib.request.urlopen(req, timeout=5):
        pass


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m streamkit.local.proxy", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--limit-scale", type=float, default=1.0)
    ap.add_argument("--faults", default="")
    args = ap.parse_args(argv)
    state = ProxyState(args.upstream, limit_scale=args.limit_scale, faults=parse_fault_spec(args.faults))
    server = _Server(args.port, state)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
