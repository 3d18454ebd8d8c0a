"""A local endpoint for Lambda's Invoke API on 127.0.0.1, running registered Python functions.

``POST /2015-03-31/functions/{name}/invocations``: RequestResponse runs the function and returns its
result (200); Event queues it on a thread pool and answers 202, as AWS does. Functions are called as
``func(event, context)``. For the dispatcher's Lambda targets in tests and local runs.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

__all__ = ["LocalLambdaServer"]

_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations")


class _Context:
    def __init__(self, name: str) -> None:
        self.function_name = name
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class LocalLambdaServer:
    def __init__(self, functions: dict[str, Callable[[Any, Any], Any]], *, port: int = 0, workers: int = 32) -> None:
        self.functions = dict(functions)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="local-lambda")
        self.errors: list[BaseException] = []
        server_self = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b"{}"
                m = _PATH.match(self.path)
                name = m.group(1) if m else ""
                func = server_self.functions.get(name.split(":")[-1])
                if func is None:
                    body = orjson.dumps({"Type": "User", "message": f"Function not found: {name}"})
                    self._reply(404, body, {"x-amzn-ErrorType": "ResourceNotFoundException"})
                    return
                event = orjson.loads(raw or b"{}")
                if self.headers.get("X-Amz-Invocation-Type") == "Event":
                    server_self.pool.submit(server_self._run, func, event, name)
                    self._reply(202, b"")
                    return
                try:
                    result = func(event, _Context(name))
                    self._reply(200, orjson.dumps(result))
                except Exception as exc:
                    body = orjson.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__})
                    self._reply(200, body, {"X-Amz-Function-Error": "Unhandled"})

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def _run(self, func: Callable[[Any, Any], Any], event: Any, name: str) -> None:
        try:
            func(event, _Context(name))
        except BaseException as exc:
            self.errors.append(exc)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> LocalLambdaServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.pool.shutdown(wait=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m streamkit.local.lambda_server --port P --function NAME=pkg.mod:handler [...]``"""
    import argparse

    from streamkit.importing import import_callable

    ap = argparse.ArgumentParser(prog="python -m streamkit.local.lambda_server")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--function", action="append", default=[], help="NAME=package.module:handler")
    args = ap.parse_args(argv)
    functions = {}
    for spec in args.function:
        name, sep, target = spec.partition("=")
        if not sep or not name or not target:
            ap.error(f"--function {spec!r}: expected NAME=package.module:handler")
        functions[name] = import_callable(target)
    with LocalLambdaServer(functions, port=args.port):
        threading.Event().wait()


if __name__ == "__main__":
    main()
