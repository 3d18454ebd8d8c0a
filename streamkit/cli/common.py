"""Options every command takes, output helpers, and the error-to-exit-code rule."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from streamkit.aws.clients import aws_client
from streamkit.errors import CheckpointError, ConfigurationError
from streamkit.importing import import_callable
from streamkit.transport import region_of

__all__ = [
    "CliArgumentParser",
    "body_from_arg",
    "checkpoint_store",
    "client_for",
    "common_options",
    "emit_json",
    "flag",
    "has_rich",
    "import_callable",
    "print_err",
    "require_streams",
    "why_it_ended",
]


class CliArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors as one line and exit code 2."""

    def error(self, message: str) -> Any:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


BODY_HELP = ("how record.body is decoded: bytes, text, json, or package.module:Model (a Pydantic model, msgspec Struct, "
             "dataclass or TypedDict, validated; a record that does not validate goes to --on-failure at once)")


def body_from_arg(text: str, modes: tuple[str, ...] = ("bytes", "text", "json")) -> Any:
    """``--body``: one of `modes`, or ``package.module:Model`` imported and checked (its library too) before any work."""
    if text in modes:
        return text
    if ":" not in text:
        raise ConfigurationError(f"--body {text!r}: use {', '.join(modes)} or package.module:Model")
    from streamkit.bodies import body_decoder

    try:
        model = import_callable(text, what="--body model", shape="package.module:Model")
    except ConfigurationError as exc:
        missing = getattr(exc.__cause__, "name", None)
        extra = {"pydantic": "pydantic", "pydantic_core": "pydantic", "msgspec": "msgspec"}.get(str(missing))
        if extra is not None:  # the model's own module needs a library that is not installed
            raise ConfigurationError(f"--body {text}: its module needs {missing}, which is not installed: "
                                     f"pip install 'streamkit[{extra}]'") from None
        raise
    try:
        body_decoder(model)
    except ConfigurationError as exc:
        raise ConfigurationError(f"--body {text}: {exc}") from None
    return model


def common_options() -> argparse.ArgumentParser:
    """--endpoint-url, --region, --json; a parent parser usable before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--endpoint-url", default=argparse.SUPPRESS,
                   help="Kinesis endpoint (default: $AWS_ENDPOINT_URL_KINESIS, $AWS_ENDPOINT_URL, or AWS)")
    p.add_argument("--region", default=argparse.SUPPRESS, help="AWS region (default: $AWS_REGION or us-east-1)")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object on stdout")
    return p


def flag(args: argparse.Namespace, name: str, default: Any = None) -> Any:
    return getattr(args, name, default)


def client_for(args: argparse.Namespace, service: str = "kinesis", **kwargs: Any) -> Any:
    endpoint = flag(args, "endpoint_url") if service == "kinesis" else flag(args, f"{service}_endpoint_url")
    region = flag(args, "region")
    stream = flag(args, "stream") or flag(args, "name")
    if isinstance(stream, list):  # --stream repeated: the first ARN's region
        stream = next((s for s in stream if region_of(s)), stream[0] if stream else None)
    if region is None and isinstance(stream, str):
        region = region_of(stream)  # a stream given by ARN: its region, unless --region says otherwise
    return aws_client(service, endpoint_url=endpoint, region=region, **kwargs)


def emit_json(obj: Any) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


def has_rich() -> bool:
    """Whether the ``cli`` extra (rich) is installed: live views and tables, else plain lines."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def print_err(message: str) -> None:
    sys.stderr.write(message.rstrip() + "\n")


def why_it_ended(signal_name: str | None, error: BaseException | None, stop_after_idle: float | None,
                 otherwise: str = "stopped") -> str:
    """The summary's ``ended``: what ended the run, so a summary says why it is the last word."""
    if signal_name:
        return f"stopped by {signal_name}"
    if error is not None:
        return "error"
    if stop_after_idle is not None:
        return f"idle for {stop_after_idle:g} s"
    return otherwise


def require_streams(args: argparse.Namespace, streams: Sequence[str]) -> None:
    """Before anything is created (a lease table, a .db, a failure file): each stream exists, or one line
    and exit 2. An endpoint that does not answer is left to the run, which retries and says so."""
    from streamkit.errors import StreamkitError, StreamNotFoundError
    from streamkit.transport import as_kinesis

    client = client_for(args, retries=0)
    for stream in streams:
        if "/consumer/" in stream:  # an enhanced fan-out consumer ARN: its stream is checked by the run
            continue
        try:
            as_kinesis(client, stream=stream).describe_stream_summary(stream)
        except StreamNotFoundError as exc:
            raise ConfigurationError(f"{exc} (nothing was created)") from None
        except StreamkitError:
            return


def checkpoint_store(args: argparse.Namespace) -> Any:
    """The store named by ``--checkpoint`` (``sqlite:PATH``, ``dynamodb:TABLE``, or ``kcl:TABLE``: a KCL
    lease table, item for item as the KCL writes it), or None."""
    spec = args.checkpoint
    if spec is None:
        return None
    kind, sep, rest = spec.partition(":")
    if sep and kind == "sqlite" and rest:
        from streamkit.checkpoints import SqliteCheckpointStore

        return SqliteCheckpointStore(Path(rest))
    if sep and kind in ("dynamodb", "kcl") and rest:
        import logging

        from streamkit.checkpoints import DynamoDBCheckpointStore
        from streamkit.retry import call_until_answered

        store = DynamoDBCheckpointStore(rest, client=client_for(args, "dynamodb", retries=2), create=False,
                                        layout="kcl" if kind == "kcl" else "streamkit")
        # Said at each failed try, and given up on after --stop-after-idle (botocore's own retries were
        # silent for 26 s on an unreachable DynamoDB).
        call_until_answered(store.ensure_table, what=f"reach DynamoDB for table {rest!r}",
                            warn=logging.getLogger("streamkit.cli").warning,
                            give_up_after=getattr(args, "stop_after_idle", None))
        try:
            store.check_layout()  # a table of the other layout is a usage error: said before any work
        except CheckpointError as exc:
            if exc.retryable:
                raise
            raise ConfigurationError(str(exc)) from None
        return store
    raise ConfigurationError(f"--checkpoint {spec!r}: use sqlite:PATH, dynamodb:TABLE or kcl:TABLE")


def add_metrics_options(p: argparse.ArgumentParser) -> None:
    """--metrics SPEC, --metrics-level, --metrics-namespace (streamkit.metrics)."""
    from streamkit.metrics.spec import SPEC_HELP

    p.add_argument("--metrics", default=None, metavar="SPEC", help=f"publish metrics: {SPEC_HELP}")
    p.add_argument("--metrics-level", choices=("none", "summary", "detailed"), default=None,
                   help="summary: per stream; detailed: per shard (default: detailed for prometheus, else summary)")
    p.add_argument("--metrics-namespace", default="streamkit", help="CloudWatch namespace (default streamkit)")


def metrics_from_args(args: argparse.Namespace) -> Any:
    """The recorder the options ask for, or None."""
    if not getattr(args, "metrics", None):
        return None
    if args.metrics == "emf" and flag(args, "json"):
        raise ConfigurationError("--metrics emf writes its documents to stdout, where --json writes the summary: "
                                 "use --metrics emf:PATH")
    from streamkit.metrics import Metrics

    return Metrics(args.metrics, namespace=args.metrics_namespace, level=args.metrics_level)
