"""Reading the text files users give us (experiment and bench files, netlists, network files)."""

from __future__ import annotations

from pathlib import Path

from hwlearn.errors import HwlearnError


def read_text(path: str | Path, error: type[HwlearnError], what: str = "file") -> str:
    """The file's text as UTF-8. Unreadable files and other encodings raise ``error`` naming the
    file and, for a bad byte, where it is (a UnicodeDecodeError's traceback tells a user nothing)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                    f"save the {what} as UTF-8") from None
