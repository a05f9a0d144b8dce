"""Advisory file locks that tell a live process from a crashed one.

The kernel drops a flock when its process dies, even by SIGKILL, so a lock file held by nobody
means its last holder is gone. Without fcntl (Windows) nothing is locked; callers then rely on
their status records alone.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:
    fcntl = None


def hold_lock(path: str | Path) -> int | None:
    """Open (creating) ``path`` and lock it exclusively for this process: the descriptor, which
    the caller closes to release the lock, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
    return fd


def held_elsewhere(path: str | Path) -> bool:
    """Whether a live process holds the lock on ``path`` (False if the file does not exist)."""
    path = Path(path)
    if fcntl is None or not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases the lock if we took it
    return False
