"""The layering rules, checked: where boto3 may be imported, what a Lambda handler needs, no local -> cli."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALLOWED_BOTO = ("streamkit/aws/", "streamkit/checkpoints/dynamodb.py", "streamkit/local/", "streamkit/testing/")


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def library_files() -> list[Path]:
    return [p for pkg in ("streamkit", "producer", "dispatcher") for p in (ROOT / pkg).rglob("*.py")]


def test_boto3_and_botocore_are_imported_only_in_the_adapter_and_the_allowed_edges() -> None:
    offenders = []
    for path in library_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(ALLOWED_BOTO):
            continue
        if any(m.split(".")[0] in ("boto3", "botocore") for m in imports(path)):
            offenders.append(rel)
    assert offenders == []


def test_nothing_outside_the_cli_imports_the_cli() -> None:
    offenders = [p.relative_to(ROOT).as_posix() for p in library_files()
                 if not p.relative_to(ROOT).as_posix().startswith(("streamkit/cli/", "streamkit/demo/"))
                 and any(m == "streamkit.cli" or m.startswith("streamkit.cli.") for m in imports(p))]
    assert offenders == []


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
