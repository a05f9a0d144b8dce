"""Checks of the numbers a writer is given: step and epoch indices, scalar values."""

from __future__ import annotations

import numbers

import numpy as np

from hwlearn.runstore.errors import RunStoreError


def as_index(what: str, value, where: str) -> int:
    """An integer >= 0 (Python or numpy int; not bool, not float)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise RunStoreError(f"{where}: {what} is {value!r} ({type(value).__name__}); "
                            f"{what} is an integer >= 0")
    if value < 0:
        raise RunStoreError(f"{where}: {what} is {value}; {what} is an integer >= 0")
    return int(value)


def as_real(name: str, value, where: str) -> float:
    """A scalar value as a float; NaN and infinities are allowed (a diverged loss is data)."""
    if isinstance(value, (str, bytes, complex, np.complexfloating)) or (
            isinstance(value, np.ndarray) and value.ndim != 0):
        raise RunStoreError(f"{where}: scalar {name!r} is {value!r} ({type(value).__name__}); "
                            "scalars are real numbers (put arrays in arrays=)")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RunStoreError(f"{where}: scalar {name!r} is {value!r} ({type(value).__name__}); "
                            "scalars are real numbers") from None
