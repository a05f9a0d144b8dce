"""Which names a scalar, an array or a summary key may have.

Names become CSV columns, file names of the CSV export and keys of .npz files, so they are
restricted to characters that are safe in all three."""

from __future__ import annotations

import re

from hwlearn.runstore.errors import RunStoreError

NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
# The wide scalars.csv has these columns before the scalars.
RESERVED_SCALAR_NAMES = frozenset({"step", "epoch", "time"})


def check_name(kind: str, name: object, where: str = "") -> str:
    """Return ``name`` if it is a valid ``kind`` name ("scalar", "array", ...), else raise."""
    prefix = f"{where}: " if where else ""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise RunStoreError(f"{prefix}{kind} name {name!r} is not allowed; names start with a letter or "
                            "'_' and contain only letters, digits, '_', '.' and '-' (at most 128 characters)")
    if kind == "scalar" and name in RESERVED_SCALAR_NAMES:
        raise RunStoreError(f"{prefix}scalar name {name!r} is reserved (the exported scalars.csv has "
                            f"columns {', '.join(sorted(RESERVED_SCALAR_NAMES))}); choose another name")
    return name
