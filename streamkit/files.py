"""Files streamkit writes for the user (dead letters, checkpoint databases): private, and only where asked."""

from __future__ import annotations

import os
from pathlib import Path

from streamkit.errors import ConfigurationError

__all__ = ["private_file"]


def private_file(path: str | Path, *, what: str) -> Path:
    """`path`, created empty if missing, readable and writable by its owner only (0600, whatever the umask).

    Dead letters hold payloads and checkpoints hold positions. The folder must exist: streamkit creates
    no directory the user did not ask for (a typo in a path is an error, not a new tree at the root).
    """
    p = Path(path).expanduser()
    parent = p.parent
    if not parent.is_dir():
        raise ConfigurationError(f"{what} {p}: the directory {parent} does not exist")
    if p.is_dir():
        raise ConfigurationError(f"{what} {p}: is a directory")
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return p
    except OSError as exc:
        raise ConfigurationError(f"{what} {p}: cannot create it ({exc.strerror})") from None
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return p
