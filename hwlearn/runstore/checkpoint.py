"""Atomic files and the checkpoint folder.

A checkpoint is a directory ``checkpoints/ckpt-NNNNNN`` holding ``arrays.npz`` (plain .npy
members, no pickles) and ``state.json``. It is built under a temporary name, every file and the
directory are fsynced, and only then is it renamed into place: a directory rename is atomic, so
a ``ckpt-*`` directory is always complete and the pair of files can never be mixed from two
checkpoints. The previous checkpoints are removed only after the new one is in place. The
newest (highest number) checkpoint is the latest; the number, not the step, orders them,
because after a resume the new checkpoints may have smaller steps than an unreadable newer one."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwlearn.runstore import jsontext
from hwlearn.runstore.errors import RunStoreError
from hwlearn.runstore.names import check_name

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "hwlearn.checkpoint/1"
ARRAYS_FILE = "arrays.npz"
STATE_FILE = "state.json"
COMPLETE = re.compile(r"ckpt-(\d{6,})")
TEMPORARY_PREFIX = ".tmp-"
DISCARDED_PREFIX = ".old-"


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable (POSIX; a no-op where directories
    cannot be opened, as on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    path = Path(path)
    tmp = path.with_name(f"{TEMPORARY_PREFIX}{path.name}.{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_npz(file, arrays: dict[str, np.ndarray], where: str) -> None:
    """An uncompressed .npz of plain .npy members that np.load reads with allow_pickle=False.
    Written member by member (not np.savez) so any name is a key, even "file"."""
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, value in arrays.items():
            arr = np.asarray(value)
            if arr.dtype.hasobject:
                raise RunStoreError(f"{where}: array {name!r} has dtype {arr.dtype}, which would need a pickle; "
                                    "use bool, integer, float, complex or string arrays")
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


@dataclass(frozen=True)
class Checkpoint:
    """The state after step ``step``: a resume continues with the steps after it."""

    step: int
    epoch: int
    arrays: dict[str, np.ndarray]
    state: dict
    time: float  # Unix seconds when it was written
    path: Path


class CheckpointFolder:
    """The ``checkpoints/`` folder of a run. Only the run's one writer calls ``write``."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _complete(self) -> list[tuple[int, Path]]:
        """Complete checkpoints, newest first."""
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:
            return []
        found = [(int(m.group(1)), p) for p in entries if (m := COMPLETE.fullmatch(p.name)) and p.is_dir()]
        return sorted(found, reverse=True)

    def write(self, step: int, epoch: int, arrays: dict, state: dict, keep: int = 2) -> Path:
        where = f"{self.directory}: checkpoint at step {step}"
        arrays = {check_name("array", name, where): value for name, value in (arrays or {}).items()}
        document = {"format": CHECKPOINT_FORMAT, "step": step, "epoch": epoch, "time": time.time(),
                    "arrays": sorted(arrays), "state": state if state is not None else {}}
        state_text = jsontext.dumps(document, f"{where}: state")
        existing = self._complete()
        number = existing[0][0] + 1 if existing else 1
        final = self.directory / f"ckpt-{number:06d}"
        tmp = self.directory / f"{TEMPORARY_PREFIX}{final.name}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        with open(tmp / ARRAYS_FILE, "wb") as f:
            write_npz(f, arrays, where)
            f.flush()
            os.fsync(f.fileno())
        with open(tmp / STATE_FILE, "w", encoding="utf-8") as f:
            f.write(state_text)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(tmp)
        os.rename(tmp, final)
        fsync_dir(self.directory)
        for _, old in existing[max(keep - 1, 0):]:
            self._discard(old)
        return final

    def _discard(self, path: Path) -> None:
        # Rename first: a crash in the middle of rmtree must not leave a half-deleted ckpt-*.
        discarded = path.with_name(DISCARDED_PREFIX + path.name)
        os.rename(path, discarded)
        shutil.rmtree(discarded, ignore_errors=True)

    def remove_leftovers(self) -> None:
        """Delete temporary and half-discarded directories of a writer that crashed."""
        if not self.directory.is_dir():
            return
        for p in self.directory.iterdir():
            if not p.name.startswith((TEMPORARY_PREFIX, DISCARDED_PREFIX)):
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)

    def latest(self, load_arrays: bool = True) -> Checkpoint | None:
        """The newest checkpoint that reads back completely, or None. With load_arrays=False
        only the state is read and ``arrays`` is empty (the member names are still checked)."""
        for _, path in self._complete():
            try:
                return load_checkpoint(path, load_arrays)
            except (OSError, ValueError, KeyError, RunStoreError, zipfile.BadZipFile) as exc:
                log.warning("skipping unreadable checkpoint %s: %s", path, exc)
        return None


def load_checkpoint(path: Path, load_arrays: bool = True) -> Checkpoint:
    path = Path(path)
    document = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    if document.get("format") != CHECKPOINT_FORMAT:
        raise RunStoreError(f"{path / STATE_FILE}: format {document.get('format')!r}, "
                            f"expected {CHECKPOINT_FORMAT!r}")
    with np.load(path / ARRAYS_FILE, allow_pickle=False) as npz:
        names = sorted(npz.files)
        arrays = {name: npz[name] for name in npz.files} if load_arrays else {}
    if names != document["arrays"]:
        raise RunStoreError(f"{path}: {ARRAYS_FILE} holds {names}, {STATE_FILE} lists {document['arrays']}")
    return Checkpoint(step=int(document["step"]), epoch=int(document["epoch"]), arrays=arrays,
                      state=document["state"], time=float(document["time"]), path=path)
