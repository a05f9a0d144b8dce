"""Is the process that writes a run still alive?

A writer is identified by host name, pid, the kernel boot id and the process start time
(Linux /proc). The last two guard against a reboot and against a pid reused by an unrelated
process, which a bare ``os.kill(pid, 0)`` cannot tell apart from the writer."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True)
class WriterIdentity:
    host: str
    pid: int
    boot_id: str | None = None
    pid_start: str | None = None  # start time of the pid in clock ticks after boot (/proc/PID/stat field 22)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from /proc, or None where /proc is unavailable."""
    text = _read(Path(f"/proc/{pid}/stat"))
    if text is None:
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    fields = text[text.rfind(")") + 2:].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def current_identity() -> WriterIdentity:
    pid = os.getpid()
    stat = _proc_stat(pid)
    return WriterIdentity(host=socket.gethostname(), pid=pid, boot_id=_read(BOOT_ID_FILE),
                          pid_start=stat[1] if stat else None)


def is_local(identity: WriterIdentity) -> bool:
    return identity.host == socket.gethostname()


def process_alive(identity: WriterIdentity) -> bool:
    """Whether the writer process still runs; only meaningful on the writer's own host."""
    if identity.boot_id and _read(BOOT_ID_FILE) not in (None, identity.boot_id):
        return False  # the machine rebooted since
    try:
        os.kill(identity.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    except OSError:
        return False
    stat = _proc_stat(identity.pid)
    if stat is None:
        return True  # no /proc (macOS): the pid exists, which is all we can know
    state, start = stat
    if state in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return identity.pid_start is None or start == identity.pid_start
