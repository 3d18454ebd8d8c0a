"""The layering rules, checked (~3 s): the library never imports the tools, boto3 only in the adapter and
the allowed edges, the demo on the public API with no CLI import, no import cycles, what a Lambda handler
needs. Each rule's checker is also run on a planted violation, so a rule that could not fail is caught.

The library is `streamkit` (core), `producer` and `dispatcher`, with the fakes in `streamkit.testing`; the
tools are `streamkit.local` (servers, proxy, the pytest plugin and its handles), `streamkit.cli` and
`streamkit.demo` (and `streamkit.testing.plugin`/`.stacks`, the tools' earlier import paths).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streamkit", "producer", "dispatcher")
TOOLS = ("streamkit.local", "streamkit.cli", "streamkit.demo", "streamkit.testing.plugin", "streamkit.testing.stacks")
#: Where boto3/botocore may be imported: the adapter, the DynamoDB store (lazily loaded), and the tools.
ALLOWED_BOTO = ("streamkit.aws", "streamkit.checkpoints.dynamodb", *TOOLS)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text()) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imported(tree: ast.Module, known: Iterable[str] = ()) -> set[str]:
    """Every module `tree` imports, at any depth (lazy imports count), except under ``if TYPE_CHECKING:``.
    ``from a import b`` names ``a.b`` when that is a module in `known`, else ``a``."""
    known = set(known)
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for stmt in child.orelse:
                    visit(stmt)
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                subs = {f"{child.module}.{a.name}" for a in child.names} & known
                out.update(subs if subs and len(subs) == len(child.names) else {child.module} | subs)
            visit(child)

    visit(tree)
    return out


def library_imports_of_tools(mods: Mapping[str, ast.Module]) -> list[str]:
    return sorted(f"{m} -> {i}" for m, t in mods.items() if not under(m, TOOLS)
                  for i in imported(t, mods) if under(i, TOOLS))


def boto_outside_the_adapter(mods: Mapping[str, ast.Module]) -> list[str]:
    return sorted(f"{m} -> {i}" for m, t in mods.items() if not under(m, ALLOWED_BOTO)
                  for i in imported(t) if i.split(".")[0] in ("boto3", "botocore"))


def demo_imports_of_the_cli(mods: Mapping[str, ast.Module]) -> list[str]:
    return sorted(f"{m} -> {i}" for m, t in mods.items() if under(m, ("streamkit.demo",))
                  for i in imported(t, mods) if under(i, ("streamkit.cli",)))


def import_cycles(mods: Mapping[str, ast.Module]) -> list[list[str]]:
    """Strongly connected groups of more than one module in the import graph (Tarjan's algorithm)."""
    graph = {m: sorted(i for i in imported(t, mods) if i in mods and i != m) for m, t in mods.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(cycles)


def test_the_library_never_imports_the_tools() -> None:
    assert library_imports_of_tools(modules()) == []


def test_boto3_and_botocore_are_imported_only_in_the_adapter_and_the_allowed_edges() -> None:
    assert boto_outside_the_adapter(modules()) == []


def test_the_demo_is_an_application_on_the_public_api_with_no_cli_import() -> None:
    assert demo_imports_of_the_cli(modules()) == []


def test_nothing_outside_the_cli_imports_the_cli() -> None:
    mods = modules()
    assert sorted(f"{m} -> {i}" for m, t in mods.items() if not under(m, ("streamkit.cli",))
                  for i in imported(t, mods) if under(i, ("streamkit.cli",))) == []


def test_there_are_no_import_cycles() -> None:
    assert import_cycles(modules()) == []


def planted() -> dict[str, ast.Module]:
    """A small tree with one violation of each rule."""
    return {name: ast.parse(src) for name, src in {
        "streamkit.core": "from streamkit.local import stack\n",
        "streamkit.local": "",
        "streamkit.local.stack": "",
        "streamkit.cli": "",
        "streamkit.cli.common": "",
        "streamkit.engine": "def f():\n    import boto3\n",
        "streamkit.demo.app": "from streamkit.cli.common import flag\n",
        "streamkit.a": "from streamkit import b\n",
        "streamkit.b": "def f():\n    import streamkit.a\n",
        "streamkit.typed": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from streamkit import b\n",
        "streamkit": "",
    }.items()}


def test_each_rule_fails_on_a_planted_violation() -> None:
    mods = planted()
    assert library_imports_of_tools(mods) == ["streamkit.core -> streamkit.local.stack"]
    assert boto_outside_the_adapter(mods) == ["streamkit.engine -> boto3"]
    assert demo_imports_of_the_cli(mods) == ["streamkit.demo.app -> streamkit.cli.common"]
    assert import_cycles(mods) == [["streamkit.a", "streamkit.b"]]  # a TYPE_CHECKING import is no edge


def test_the_pytest_entry_point_names_the_plugin_among_the_tools() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    entry = text.split("[project.entry-points.pytest11]", 1)[1].split("[", 1)[0]
    plugin = entry.split("=", 1)[1].strip().strip('"')
    assert plugin == "streamkit.local.pytest_plugin" and under(plugin, TOOLS)


def test_the_earlier_import_paths_of_the_tools_still_work() -> None:
    from streamkit.local.testing import StreamHandle
    from streamkit.testing import StreamHandle as Handle
    from streamkit.testing.plugin import kinesis_stream
    from streamkit.testing.stacks import StreamHandle as OldHandle

    assert Handle is OldHandle is StreamHandle and callable(kinesis_stream)


BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is blocked in this test")
sys.meta_path.insert(0, Block())
"""


def run_blocked(blocked: set[str], code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK.format(blocked=blocked) + code, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_lambda_handler_runs_without_boto3_rich_matplotlib_or_pytest() -> None:
    code = """
import json
from streamkit import kinesis_handler
seen = []
handler = kinesis_handler(body="json")(lambda r: seen.append(r.body["sensor_id"]))
event = json.load(open("tests/events/kinesis_plain.json"))
print(json.dumps(handler(event, None)), len(seen))
"""
    proc = run_blocked({"boto3", "botocore", "rich", "matplotlib", "pytest"}, code)
    assert proc.returncode == 0, proc.stderr
    out, n = proc.stdout.rsplit(" ", 1)
    assert json.loads(out) == {"batchItemFailures": []} and int(n) == 3


def test_the_library_imports_without_the_cli_extras_and_the_fakes_without_pytest() -> None:
    code = """
import producer, dispatcher, streamkit.consumer, streamkit.testing
from streamkit.testing import FakeKinesis, FakeClock
from producer import Producer
with Producer("s", client=FakeKinesis()) as p:
    p.put(b"x", "k").result(timeout=5)
print("ok")
"""
    proc = run_blocked({"rich", "matplotlib", "pytest"}, code)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_the_cli_prints_plain_lines_without_rich() -> None:
    code = "import sys; from streamkit.cli.main import main; sys.exit(main(sys.argv[1:]))"
    proc = run_blocked({"rich"}, code, "estimate", "--shards", "2", "--record-size", "1KiB",
                       "--records-per-second", "1000")
    assert proc.returncode == 0, proc.stderr
    assert "streamkit estimate: 2 shard(s)" in proc.stdout and "sustainable rate" in proc.stdout
