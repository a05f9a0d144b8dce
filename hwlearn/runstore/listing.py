"""Finding run folders under a root folder."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from hwlearn.runstore.errors import RunStoreError
from hwlearn.runstore.layout import DATABASE_FILE, METADATA_FILE


def is_run_dir(path: Path) -> bool:
    return (Path(path) / DATABASE_FILE).is_file()


def _created(run_dir: Path) -> float:
    """Creation time from metadata.json (no database opened); the database's mtime otherwise."""
    try:
        created = json.loads((run_dir / METADATA_FILE).read_text(encoding="utf-8"))["created"]
        return dt.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return (run_dir / DATABASE_FILE).stat().st_mtime


def list_runs(root) -> list[Path]:
    """The run folders directly under ``root`` or one level down (``runs/<experiment>/<run>``),
    newest first. ``root`` itself, if it is a run folder, is the only one returned."""
    root = Path(root)
    if not root.is_dir():
        raise RunStoreError(f"{root}: no such folder (expected a folder of run folders)")
    if is_run_dir(root):
        return [root]
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        if is_run_dir(child):
            found.append(child)
        else:
            found.extend(sorted(g for g in child.iterdir() if g.is_dir() and is_run_dir(g)))
    return sorted(found, key=lambda p: (_created(p), p.name), reverse=True)
