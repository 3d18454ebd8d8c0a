"""Every Kinesis/Lambda limit is named once, in `streamkit/limits.py`, and read from there (~0.3 s).

The library (streamkit core, producer, dispatcher; not the tools) is scanned for number literals whose value
is one of those limits; each must be spelled by its name instead. Values that are also ordinary numbers
(1,000, 500, 256, 60 ...) are not scanned: the names are found by review, these by the test. A line that
uses such a value for something else says so with the words "not a Kinesis limit".
"""

from __future__ import annotations

import ast
from pathlib import Path

from streamkit import limits

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("streamkit/local/", "streamkit/cli/", "streamkit/demo/", "streamkit/testing/plugin.py",
         "streamkit/testing/stacks.py")  # the last two: the tools' earlier import paths
#: Values that only ever mean a limit: GetRecords / BatchSize / MaximumRetryAttempts, MaxRecordSizeInKiB's
#: largest, MaximumRecordAge's largest, an event's per-record JSON, and the byte sizes of records and calls.
LIMIT_VALUES = {10_000, 10_240, 604_800, 530, 1_048_576, 5_242_880, 6_291_456, 10_485_760}


def literal_limits(source: str) -> list[tuple[int, object]]:
    """(line, value) of every int literal in `source` whose value is one of LIMIT_VALUES, and of every
    ``1024 * 1024``-style product that makes one."""
    found: list[tuple[int, object]] = []
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if "not a Kinesis limit" in lines[getattr(node, "lineno", 1) - 1]:
            continue
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in LIMIT_VALUES:
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            try:
                value = eval(compile(ast.Expression(node), "<limit>", "eval"), {"__builtins__": {}})  # literals only
            except Exception:
                continue
            if type(value) is int and value in LIMIT_VALUES:
                found.append((node.lineno, value))
    return found


def test_no_library_file_writes_a_limit_as_a_number() -> None:
    offenders = []
    for pkg in ("streamkit", "producer", "dispatcher"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "streamkit/limits.py" or rel.startswith(TOOLS):
                continue
            offenders += [f"{rel}:{line}: {value}" for line, value in literal_limits(path.read_text())]
    assert offenders == []


def test_the_checker_finds_a_planted_limit() -> None:
    planted = "LIMIT = 10_000\nSIZE = 1024 * 1024\nok = 1000\nkeep = 10_000  # not a Kinesis limit\n"
    assert literal_limits(planted) == [(1, 10_000), (2, 1_048_576)]


def test_three_limits_of_the_same_value_keep_three_names() -> None:
    assert limits.GET_RECORDS_MAX_RECORDS == limits.ESM_BATCH_SIZE_MAX == limits.ESM_MAX_RETRY_ATTEMPTS_MAX == 10_000


def test_every_named_limit_is_read_somewhere() -> None:
    sources = "\n".join(p.read_text() for pkg in ("streamkit", "producer", "dispatcher") for p in (ROOT / pkg).rglob("*.py")
                        if p.relative_to(ROOT).as_posix() != "streamkit/limits.py")
    unused = [name for name in limits.__all__ if name not in sources]
    assert unused == []
