"""The exception tree (`streamkit.errors`): a middle layer to catch by meaning, and every library error in it (~0.5 s)."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import pytest

from streamkit import errors
from streamkit.aws.errors import translate_error

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = {errors.ConfigurationError, errors.PayloadError, errors.NotFoundError, errors.ThrottlingError,
            errors.UnavailableError, errors.ServiceCallError, errors.DeliveryError, errors.CoordinationError,
            errors.LocalStackError}
#: Exceptions defined outside errors.py on purpose: signals between a processor or a pause and its engine,
#: and the tools' private replies.
SIGNALS = {"Interrupted", "RecordFailed", "ProcessingStopped", "WouldBlock"}
TOOLS = ("streamkit/local/", "streamkit/cli/", "streamkit/demo/")
#: Builtin exceptions the library may still raise: Python's protocols (a module's __getattr__, an abstract
#: method) and guards that never reach a user (a JSON hook caught by its caller; a sentinel's position).
BUILTIN_RAISES = {"AttributeError", "NotImplementedError", "ValueError"}
#: (A template's boolean converter raises ValueError as int() and float() beside it do: its caller says which field.)
BUILTIN_RAISE_SITES = {("ValueError", "streamkit/filters.py"), ("ValueError", "streamkit/checkpoints/model.py"),
                       ("ValueError", "streamkit/aws_lambda/template.py")}


def classes() -> list[type[BaseException]]:
    return [getattr(errors, name) for name in errors.__all__]


def test_every_exported_error_is_a_streamkit_error_under_one_family() -> None:
    for cls in classes():
        assert issubclass(cls, errors.StreamkitError)
        assert cls is errors.StreamkitError or any(issubclass(cls, f) for f in FAMILIES), cls


def test_the_root_has_only_the_families_below_it() -> None:
    direct = {c for c in classes() if errors.StreamkitError in c.__bases__}
    assert direct == FAMILIES


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "LimitExceededException",
                                  "ThrottlingException", "KMSThrottlingException"])
def test_throttling_of_any_kind_is_caught_as_throttling(code: str) -> None:
    from botocore.exceptions import ClientError

    err = translate_error(ClientError({"Error": {"Code": code, "Message": "slow"}}, "PutRecords"))
    assert isinstance(err, errors.ThrottlingError) and isinstance(err, errors.KinesisError) and err.retryable


def test_errors_are_caught_by_meaning() -> None:
    assert issubclass(errors.BufferFullError, errors.ThrottlingError)
    assert issubclass(errors.ValidationError, errors.ConfigurationError)
    assert issubclass(errors.ValidationError, errors.PayloadError)
    assert issubclass(errors.StreamNotFoundError, errors.NotFoundError)
    assert issubclass(errors.ServerUnreachableError, errors.UnavailableError)
    assert issubclass(errors.ServerUnreachableError, errors.KinesisError)
    assert issubclass(errors.PayloadTooLargeError, errors.PayloadError)
    assert issubclass(errors.RecordExpiredError, errors.DeliveryError)
    assert issubclass(errors.CheckpointError, errors.CoordinationError)
    assert errors.ServiceCallError("x", code="C").code == "C"


def test_the_drawing_at_the_top_names_every_error() -> None:
    doc = inspect.getdoc(errors) or ""
    assert [c.__name__ for c in classes() if c.__name__ not in doc] == []


def _library_files() -> list[tuple[str, ast.Module]]:
    out = []
    for pkg in ("streamkit", "producer", "dispatcher"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(TOOLS):
                out.append((rel, ast.parse(path.read_text())))
    return out


def raised_outside_the_tree(files: list[tuple[str, ast.Module]]) -> list[str]:
    """Exception classes defined outside errors.py (not signals), and builtin exceptions raised where not allowed."""
    found = []
    for rel, tree in files:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and rel != "streamkit/errors.py" and node.name not in SIGNALS:
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & {"Exception", "BaseException", "ValueError", "TypeError", "RuntimeError"}:
                    found.append(f"{rel}: class {node.name}")
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                name = exc.id if isinstance(exc, ast.Name) else ""
                builtin = getattr(builtins, name, None)
                if isinstance(builtin, type) and issubclass(builtin, BaseException) and (
                        name not in BUILTIN_RAISES or (name == "ValueError" and (name, rel) not in BUILTIN_RAISE_SITES)):
                    found.append(f"{rel}:{node.lineno}: raise {name}")
    return found


def test_every_error_the_library_raises_lives_in_the_tree() -> None:
    assert raised_outside_the_tree(_library_files()) == []


def test_the_check_finds_a_planted_error_outside_the_tree() -> None:
    planted = ast.parse("class Oops(Exception):\n    pass\n\ndef f():\n    raise TypeError('no')\n")
    assert raised_outside_the_tree([("streamkit/x.py", planted)]) == ["streamkit/x.py: class Oops",
                                                                       "streamkit/x.py:5: raise TypeError"]
