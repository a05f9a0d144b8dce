"""JSON text for summaries, event data, metadata and checkpoint state.

numpy scalars and arrays become plain numbers and lists. Python's json writes NaN and Infinity
as bare tokens, which Python reads back; documents meant for other programs (``hwlearn show
--json``) go through ``finite_or_null`` first."""

from __future__ import annotations

import json
import math

import numpy as np

from hwlearn.runstore.errors import RunStoreError


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value, what: str, indent: int | None = None) -> str:
    try:
        return json.dumps(value, default=_plain, indent=indent)
    except (TypeError, ValueError) as exc:
        raise RunStoreError(f"{what} cannot be written as JSON: {exc}; use numbers, strings, booleans, "
                            "None, lists, dicts with string keys and numpy arrays") from None


def loads(text: str | None):
    return None if text is None else json.loads(text)


def finite_or_null(value):
    """A copy of ``value`` with NaN and infinities replaced by None (null in strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value
