"""Install the pinned local servers (kinesalite, kinesis-local, dynalite) from npm into a cache folder."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from streamkit.errors import LocalStackError

__all__ = ["NodePackages", "cache_root", "ensure_installed", "install_lock"]

_NPM_DIR = Path(__file__).resolve().parent / "npm"
PRELOAD = _NPM_DIR / "bind-loopback.js"
#: Preloaded into dynalite only: survives clients killed mid-request; UpdateTable creates a global secondary
#: index (KCL 3's lease-owner index).
DYNALITE_FIXES = _NPM_DIR / "dynalite-fixes.js"
#: Preloaded into kinesalite only: StreamARN parameters, and a foreign ARN answered ResourceNotFoundException.
KINESALITE_ARNS = _NPM_DIR / "kinesalite-arns.js"
#: Preloaded into kinesis-local only: a front on the stack's port that answers a foreign ARN ResourceNotFoundException.
KINESIS_LOCAL_FRONT = _NPM_DIR / "kinesis-local-front.js"


def cache_root() -> Path:
    """Where streamkit keeps downloaded servers: ``$STREAMKIT_CACHE_DIR`` or ``~/.cache/streamkit``."""
    env = os.environ.get("STREAMKIT_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "streamkit"


@dataclass(frozen=True, kw_only=True)
class NodePackages:
    """Paths of the installed servers' entry points."""

    root: Path
    node: str

    @property
    def kinesalite(self) -> Path:
        return self.root / "node_modules" / "kinesalite" / "cli.js"

    @property
    def kinesis_local(self) -> Path:
        return self.root / "node_modules" / "kinesis-local" / "main.js"

    @property
    def kinesis_local_cert(self) -> Path:
        return self.root / "node_modules" / "kinesis-local" / "server.json"

    @property
    def dynalite(self) -> Path:
        return self.root / "node_modules" / "dynalite" / "cli.js"

    @property
    def preload(self) -> Path:
        return PRELOAD

    @property
    def dynalite_fixes(self) -> Path:
        return DYNALITE_FIXES


def _lock_digest() -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((_NPM_DIR / name).read_bytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def install_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` across processes (two `make servers`, pytest-xdist workers, CI jobs
    sharing a cache); the kernel releases it if the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_installed(*, quiet: bool = True) -> NodePackages:
    """Install the pinned packages with ``npm ci`` the first time; later calls only check.

    Safe when several processes share the cache: one installs under a lock while the others wait, and
    the install is built in a private folder and renamed into place, so the folder is complete or absent."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise LocalStackError("the local stack needs Node.js and npm on PATH (e.g. `apt-get install nodejs npm`)")
    root = cache_root() / f"npm-{_lock_digest()}"
    done = root / ".installed"
    packages = NodePackages(root=root, node=node)
    if done.exists():
        return packages
    with install_lock(root.with_name(root.name + ".lock")):
        if done.exists():  # installed by another process while this one waited
            return packages
        staging = root.with_name(f"{root.name}.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            _npm_ci(npm, staging, quiet)
            staged = NodePackages(root=staging, node=node)
            for path in (staged.kinesalite, staged.kinesis_local, staged.dynalite):
                if not path.exists():
                    raise LocalStackError(f"npm finished but {path} is missing")
            (staging / ".installed").write_text(_lock_digest())
            shutil.rmtree(root, ignore_errors=True)  # an incomplete install of an older streamkit
            os.rename(staging, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return packages


def _npm_ci(npm: str, folder: Path, quiet: bool) -> None:
    folder.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(_NPM_DIR / name, folder / name)
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    proc = subprocess.run(cmd, cwd=folder, capture_output=quiet, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:] if quiet else []
        raise LocalStackError(f"`npm ci` failed in {folder} (exit {proc.returncode}): " + " | ".join(detail))
