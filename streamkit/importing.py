"""``package.module:function`` specs -> callables (CLI handlers, the local Lambda endpoint's functions)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from streamkit.errors import ConfigurationError

__all__ = ["import_callable"]


def import_callable(spec: str, *, what: str = "handler", shape: str = "package.module:function") -> Any:
    """``package.module:function`` -> the function (the current directory is importable).

    `what` and `shape` name it in errors (``what="model", shape="package.module:Model"`` for a body model).
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"bad {what} {spec!r}: expected {shape}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r} for {what} {spec!r}: {exc}") from exc
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else module_name
        raise ConfigurationError(f"cannot import {module_name!r} for {what} {spec!r}: SyntaxError at {where}: "
                                 f"{exc.msg}") from exc
    except Exception as exc:  # the module's own code raised while it was imported
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f" ({tb.tb_frame.f_code.co_filename}:{tb.tb_lineno})" if tb is not None else ""
        raise ConfigurationError(f"cannot import {module_name!r} for {what} {spec!r}: it raised "
                                 f"{type(exc).__name__}: {exc}{where}") from exc
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigurationError(f"{module_name!r} has no {attr!r} ({what} {spec!r})")
    if not callable(obj):
        raise ConfigurationError(f"{what} {spec!r} is not callable")
    return obj
