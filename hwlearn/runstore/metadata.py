"""What a run records about the software and the machine it ran on."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import hwlearn

# Distribution names whose versions are recorded; a tuple lists alternatives (the first installed
# one is reported under the first name: PySide6 is often installed as PySide6-Essentials).
RECORDED_PACKAGES = ("numpy", "scipy", "pyvisa", "pyserial", ("PySide6", "PySide6-Essentials"))
GIT_TIMEOUT_S = 5.0


def utc_iso(seconds: float) -> str:
    """Unix time in seconds as UTC ISO 8601 with a Z, to the microsecond."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for entry in RECORDED_PACKAGES:
        names = entry if isinstance(entry, tuple) else (entry,)
        versions[names[0]] = None
        for name in names:
            try:
                versions[names[0]] = importlib.metadata.version(name)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return versions


def _git(source_root: Path, *args: str) -> str | None:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")  # never take git's index lock
    try:
        proc = subprocess.run(["git", "-C", str(source_root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(package_dir: Path | None = None) -> dict[str, object]:
    """The commit (and whether tracked files differ from it) of the hwlearn source tree.

    Only when the package sits at the top of its own checkout: an installed copy inside some
    other repository (a venv in a project folder) must not report that repository's commit."""
    package_dir = Path(package_dir or Path(hwlearn.__file__).parent).resolve()
    source_root = package_dir.parent
    out = _git(source_root, "rev-parse", "--show-toplevel", "HEAD")
    lines = out.split() if out else []
    if len(lines) != 2 or Path(lines[0]).resolve() != source_root:
        return {"git_commit": None, "git_dirty": None}
    status = _git(source_root, "status", "--porcelain", "--untracked-files=no")
    return {"git_commit": lines[1], "git_dirty": None if status is None else bool(status.strip())}


def collect_metadata(extra: dict | None, created: float) -> dict:
    """Versions, git state, host, pid, creation time and command line, then the caller's values
    (instrument identities, seeds, ...), which take precedence on a shared key."""
    meta = {
        "hwlearn": hwlearn.__version__,
        "python": platform.python_version(),
        "packages": package_versions(),
        **git_state(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "platform": platform.platform(),
        "created": utc_iso(created),
        "command_line": list(sys.argv),
    }
    meta.update(extra or {})
    return meta
