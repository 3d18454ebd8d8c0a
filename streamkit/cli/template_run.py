"""`lambda run --template FILE [--function ID] [--parameter-overrides K=V ...]`: a template's Kinesis mappings.

Every function of the template with a Kinesis event (or the one `--function` names) runs under the
emulator with its mapping's settings, its handler imported from its code folder (``CodeUri``, or CDK's
``aws:asset:path``) with its ``Environment`` set. Streams the template declares are created on a local
endpoint; nothing is repeated on the command line (a mapping flag given with --template is refused).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import threading
from pathlib import Path
from typing import Any

from streamkit.cli.common import checkpoint_store, client_for, emit_json, flag, metrics_from_args, print_err
from streamkit.errors import ConfigurationError, TemplateError

__all__ = ["DISPATCH_OPTIONS", "add_template_options", "dispatch_from_template", "load_template", "parse_overrides",
           "remember_defaults", "run_template"]

#: `lambda run` options the template replaces.
MAPPING_OPTIONS = ("stream", "handler", "batch_size", "batching_window", "starting_position", "parallelization_factor",
                   "bisect_on_error", "max_retry_attempts", "max_record_age", "report_batch_item_failures",
                   "on_failure", "filters", "tumbling_window", "function_name")
#: `dispatch` options the template replaces (the dispatcher function's mapping and its STREAMKIT_DISPATCH_* variables).
DISPATCH_OPTIONS = ("stream", "batch_size", "starting_position", "on_failure", "mode", "lanes", "max_attempts")


def add_template_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--template", default=None, metavar="FILE",
                   help="a SAM or CloudFormation template (YAML or JSON, CDK's cdk.out/*.template.json too): its "
                        "functions' Kinesis mappings run with the template's settings")
    p.add_argument("--function", default=None, metavar="LOGICAL_ID",
                   help="with --template: run only this function (default: every function with a Kinesis event)")
    p.add_argument("--parameter-overrides", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="with --template: values of the template's Parameters")


def remember_defaults(p: argparse.ArgumentParser, names: tuple[str, ...] = MAPPING_OPTIONS) -> None:
    """Keep the mapping options' defaults, so a flag given beside --template can be told apart."""
    p.set_defaults(mapping_defaults={a.dest: a.default for a in p._actions if a.dest in names})


def parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"--parameter-overrides {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def load_template(args: argparse.Namespace) -> Any:
    """The template of `--template`, read and checked, its one warning said; mapping flags beside it refused."""
    from streamkit.aws_lambda.template import read_template

    given = [f"--{name.replace('_', '-')}" for name, default in (flag(args, "mapping_defaults") or {}).items()
             if getattr(args, name, default) != default]
    if given:
        raise ConfigurationError(f"{', '.join(given)}: --template sets the mapping; drop the flag(s) or change the "
                                 "template (--parameter-overrides sets its parameters)")
    template = read_template(args.template, parameter_overrides=parse_overrides(args.parameter_overrides),
                             region=flag(args, "region") or os.environ.get("AWS_REGION") or "us-east-1")
    warning = template.warning()
    if warning:
        print_err(f"streamkit: {warning}")
    return template


def import_handler(path: Path, logical_id: str, code_dir: Path | None, handler: str,
                   environment: dict[str, str] | None = None) -> tuple[Any, Any, float]:
    """Lambda's ``module.function`` from the function's code folder (its folder on sys.path, as Lambda's is):
    the function, the `HandlerSpec` a worker process imports it by, and this import's time (ms)."""
    import time

    from streamkit.aws_lambda.environments import HandlerSpec

    module, _, func = handler.rpartition(".")
    if not module or not func:
        raise TemplateError(f"{path}: Resources.{logical_id}.Properties.Handler: {handler!r} is not module.function")
    root = code_dir or path.parent
    file = root / (module.replace(".", "/") + ".py")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    if not file.is_file():  # a module of an installed package the deployment package brings (streamkit's dispatcher)
        t0 = time.perf_counter()
        try:
            target = getattr(importlib.import_module(module), func, None)
        except ImportError:
            raise TemplateError(f"{path}: Resources.{logical_id}: handler module {module} is neither in {root} "
                                "(CodeUri / aws:asset:path) nor installed") from None
        if not callable(target):
            raise TemplateError(f"{path}: Resources.{logical_id}.Properties.Handler: {module} has no function {func!r}")
        worker = HandlerSpec(module=module, function=func, path=str(root), environment=dict(environment or {}))
        return target, worker, (time.perf_counter() - t0) * 1000
    # One module object per function: two functions may both have an `app.py`.
    spec = importlib.util.spec_from_file_location(f"streamkit_function_{logical_id}_{module}", file)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    t0 = time.perf_counter()
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:
        raise TemplateError(f"{path}: Resources.{logical_id}: importing {file} failed: {exc!r}") from exc
    target = getattr(mod, func, None)
    if not callable(target):
        raise TemplateError(f"{path}: Resources.{logical_id}.Properties.Handler: {file} has no function {func!r}")
    worker = HandlerSpec(file=str(file), function=func, path=str(root), environment=dict(environment or {}))
    return target, worker, (time.perf_counter() - t0) * 1000


def _serve_other_functions(template: Any) -> Any:
    """The template's functions without a Kinesis event, on a local Invoke endpoint (127.0.0.1), which
    ``AWS_ENDPOINT_URL_LAMBDA`` names for the functions that invoke them (a dispatcher's Lambda target)."""
    from streamkit.local.lambda_server import LocalLambdaServer

    functions = {}
    for f in template.other_functions:
        os.environ.update(f.environment)
        functions[f.function_name] = import_handler(template.path, f.logical_id, f.code_dir, f.handler,
                                                    f.environment)[0]
    server = LocalLambdaServer(functions).__enter__()
    os.environ["AWS_ENDPOINT_URL_LAMBDA"] = server.endpoint  # before the environments start: they inherit it
    print_err(f"streamkit: {', '.join(functions)} served on {server.endpoint} (Invoke), for the template's functions")
    return server


def _is_local(endpoint: str | None) -> bool:
    return endpoint is not None and ("//127.0.0.1" in endpoint or "//localhost" in endpoint)


def run_template(args: argparse.Namespace) -> int:
    from streamkit.aws.clients import resolve_endpoint
    from streamkit.aws_lambda.emulator import EsmConfig, EventSourceMapping
    from streamkit.local.template_resources import provision
    from streamkit.signals import stopping_on_signals

    template = load_template(args)
    functions = [template.function(args.function)] if args.function else list(template.functions)
    if not functions:
        raise TemplateError(f"{template.path}: no function with a Kinesis event")
    client = client_for(args, retries=0)
    region = flag(args, "region") or os.environ.get("AWS_REGION") or "us-east-1"
    local = _is_local(resolve_endpoint("kinesis", flag(args, "endpoint_url")))
    from streamkit.cli.lambda_reports import environments, memory_of, report_printer, report_summary, summary_line

    runs: list[tuple[str, Any]] = []
    pools: list[Any] = []
    metrics = metrics_from_args(args)
    store = checkpoint_store(args)
    server = _serve_other_functions(template) if local and template.other_functions else None
    for f in functions:
        enabled = [m for m in f.mappings if m.enabled]
        for m in f.mappings:
            if not m.enabled:
                print_err(f"streamkit: {m.name}: Enabled is false in the template; not run")
        if not enabled:
            continue
        os.environ.update(f.environment)  # before the import: module-level code reads it, as in Lambda
        handler, worker, init_ms = import_handler(template.path, f.logical_id, f.code_dir, f.handler, f.environment)
        memory = memory_of(args, f.memory_size)
        if local:
            enabled = provision(template, enabled, kinesis=client, region=region)
        for m in enabled:
            envs = environments(args, handler, init_ms=init_ms, memory_mb=memory, template=True, spec=worker)
            pools.append(envs)
            esm = EventSourceMapping(m.stream, handler, client=client, config=EsmConfig(**{**m.settings,
                                                                                          "memory_size": memory}),
                                     checkpoint_store=store, metrics=metrics, environments=envs,
                                     on_report=report_printer(args, prefix=f"{m.name}: "))
            runs.append((m.name, esm))
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(name: str, esm: Any) -> None:
        try:
            results[name] = esm.run(stop_after_idle=args.stop_after_idle).to_json()
        except BaseException as exc:
            errors.append(exc)
            for _n, other in runs:
                other.stop()

    def stop_all() -> None:
        for _n, esm in runs:
            esm.stop()

    try:
        with stopping_on_signals(stop_all, hold=True):
            threads = [threading.Thread(target=run, args=r, name=f"esm-{r[0]}") for r in runs]
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
    finally:
        for envs in pools:
            envs.close()
        if server is not None:
            server.__exit__(None, None, None)
        if metrics is not None:
            metrics.close()
    if errors:
        raise errors[0]
    for name, esm in runs:
        if name in results:
            results[name]["invocation_reports"] = report_summary(esm.invoker.reports)
    if flag(args, "json"):
        emit_json({"template": str(template.path), "mappings": results})
    else:
        for name, s in results.items():
            print(f"{name}: {s['invocations']} invocations, {s['records_succeeded']} records succeeded, "
                  f"{s['function_errors']} function errors, {s['partial_failures']} partial failures, "
                  f"{s['records_discarded']} records discarded")
            if s["invocation_reports"]["duration_ms"]:
                print(f"{name}: {summary_line(s['invocation_reports'])}")
    return 0


def dispatch_from_template(args: argparse.Namespace) -> None:
    """`dispatch --template`: the dispatcher function's mapping (stream, batch size, starting position, OnFailure)
    and its STREAMKIT_DISPATCH_MODE / _LANES / _MAX_ATTEMPTS / _DEAD_LETTER variables, set on `args`."""
    from datetime import UTC, datetime

    from streamkit.aws.clients import resolve_endpoint
    from streamkit.local.template_resources import provision

    template = load_template(args)
    if args.function:
        f = template.function(args.function)
    elif len(template.functions) == 1:
        f = template.functions[0]
    else:
        names = ", ".join(x.logical_id for x in template.functions) or "none"
        raise TemplateError(f"{template.path}: several functions have a Kinesis event ({names}): name the dispatcher "
                            "with --function")
    mappings = [m for m in f.mappings if m.enabled]
    if len(mappings) != 1:
        raise TemplateError(f"{template.path}: Resources.{f.logical_id}: dispatch runs one Kinesis mapping, the "
                            f"function has {len(mappings)} enabled")
    region = flag(args, "region") or os.environ.get("AWS_REGION") or "us-east-1"
    if _is_local(resolve_endpoint("kinesis", flag(args, "endpoint_url"))):
        mappings = provision(template, mappings, kinesis=client_for(args, retries=0), region=region)
    m = mappings[0]
    env = f.environment
    args.stream = m.stream
    args.batch_size = int(m.settings.get("batch_size", 100))  # AWS's default for Kinesis
    start = str(m.settings.get("starting_position", "LATEST"))
    stamp = m.settings.get("starting_position_timestamp")
    args.starting_position = (f"at-timestamp:{datetime.fromtimestamp(float(stamp), UTC).isoformat()}"
                              if start == "AT_TIMESTAMP" and stamp is not None else start)
    args.on_failure = env.get("STREAMKIT_DISPATCH_DEAD_LETTER") or m.settings.get("on_failure")
    args.mode = env.get("STREAMKIT_DISPATCH_MODE", "unordered")
    try:
        args.lanes = int(env.get("STREAMKIT_DISPATCH_LANES", "16"))  # the dispatcher handler's defaults
        args.max_attempts = int(env.get("STREAMKIT_DISPATCH_MAX_ATTEMPTS", "3"))
    except ValueError as exc:
        raise TemplateError(f"{template.path}: Resources.{f.logical_id}.Properties.Environment: {exc}") from None
    if args.mode not in ("unordered", "per-key"):
        raise TemplateError(f"{template.path}: Resources.{f.logical_id}.Properties.Environment: "
                            f"STREAMKIT_DISPATCH_MODE={args.mode!r}: use unordered or per-key")
