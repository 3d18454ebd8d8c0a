"""Helpers for tests that run the `streamkit` command and inspect processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "streamkit.cli.main", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, check=False)


def run_json(*args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    proc = run_cli(*args, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return dict(orjson.loads(proc.stdout))


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every listening TCP socket the process holds (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state != "0A" or inode not in inodes:
                continue
            addr_hex, port_hex = local.split(":")
            v4 = ".".join(str(int(addr_hex[i:i + 2], 16)) for i in (6, 4, 2, 0)) if width == 8 else ""
            addr = v4 or "v6:" + addr_hex
            found.append((addr, int(port_hex, 16)))
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")
