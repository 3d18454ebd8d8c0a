"""`produce --file`'s durable position: the last line whose reading is accounted for, as log shippers keep.

A position file holds the input's path, the stream, the byte offset just past the last line that is
*done* (every reading up to it was acknowledged by Kinesis, or handed to the failure destination),
that line's number, and a digest of the bytes before it (a file rewritten in place starts over).
It is written atomically (a temporary file, fsync, rename), at most once a second while publishing
and once at the end, so a SIGKILL loses at most about a second of progress: those lines are sent
again by the next run. `--from-start` ignores it; deleting the file resets it too.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

__all__ = ["FilePosition", "default_position_file", "load_position", "save_position"]

#: Bytes at the head of the input whose digest identifies it (a file rewritten in place starts over).
_HEAD = 4096


@dataclass(frozen=True, kw_only=True, slots=True)
class FilePosition:
    """Where a rerun resumes: just past line `line` (1-based; 0 = the start), at byte `offset`."""

    line: int = 0
    offset: int = 0


def state_dir() -> Path:
    """``$STREAMKIT_STATE_DIR``, else ``$XDG_STATE_HOME/streamkit``, else ``~/.local/state/streamkit``."""
    env = os.environ.get("STREAMKIT_STATE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "streamkit"


def default_position_file(input_path: Path, stream: str) -> Path:
    """One position per (input file, stream): ``<state dir>/produce/<file name>.<digest>.position.json``."""
    ident = hashlib.sha256(f"{input_path.resolve()}\0{stream}".encode()).hexdigest()[:16]
    return state_dir() / "produce" / f"{input_path.name}.{ident}.position.json"


def _head_digest(input_path: Path, upto: int) -> str:
    with input_path.open("rb") as fh:
        return hashlib.sha256(fh.read(min(upto, _HEAD))).hexdigest()


def load_position(position_file: Path, input_path: Path, stream: str) -> tuple[FilePosition, str]:
    """The stored position and a sentence about it ("" when there is none), or the start with the reason."""
    try:
        doc = orjson.loads(position_file.read_bytes())
        pos = FilePosition(line=int(doc["line"]), offset=int(doc["offset"]))
        digest, stored_stream = str(doc["head_sha256"]), str(doc["stream"])
    except FileNotFoundError:
        return FilePosition(), ""
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return FilePosition(), f"position file {position_file} unreadable ({exc}); starting at line 1"
    if stored_stream != stream:
        return FilePosition(), f"position file {position_file} is for stream {stored_stream!r}; starting at line 1"
    size = input_path.stat().st_size
    if pos.offset > size or _head_digest(input_path, pos.offset) != digest:
        return FilePosition(), f"{input_path} changed since position file {position_file} was written; starting at line 1"
    return pos, f"resuming after line {pos.line:,} of {input_path} (position file {position_file}; --from-start ignores it)"


def save_position(position_file: Path, input_path: Path, stream: str, pos: FilePosition) -> None:
    """Write the position atomically: a crash leaves the old file or the new one, never half of one."""
    position_file.parent.mkdir(parents=True, exist_ok=True)
    doc = {"file": str(input_path.resolve()), "stream": stream, "line": pos.line, "offset": pos.offset,
           "head_sha256": _head_digest(input_path, pos.offset)}
    tmp = position_file.with_name(position_file.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(orjson.dumps(doc))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, position_file)
