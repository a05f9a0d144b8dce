"""Checks shared by the drivers: every value is validated before any I/O, and a violation
raises LimitError naming the instrument, the quantity, the value and what is allowed."""

from __future__ import annotations

import math
import numbers

from drivers.instruments.errors import LimitError


def real(instrument: str, what: str, value, unit: str = "") -> float:
    """``value`` as a finite float, or LimitError. Bools and strings are refused: a config
    that says ``level = "1; *RST"`` or ``true`` must never turn into a number or a command."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise LimitError(instrument, f"{what} must be a real number, got {value!r}; nothing was sent")
    number = float(value)
    if not math.isfinite(number):
        raise LimitError(instrument, f"{what} {number}{_u(unit)} is not finite; nothing was sent")
    return number


def integer(instrument: str, what: str, value) -> int:
    """``value`` as an int (numpy integers accepted), or LimitError. Floats are refused even if
    whole: a code of 127.6 must not silently become 127."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise LimitError(instrument, f"{what} must be an integer, got {value!r}; nothing was sent")
    return int(value)


def at_most(instrument: str, what: str, value: float, limit: float, unit: str,
            symbol: str = "") -> None:
    """Refuse |value| > limit, naming the value and the limit."""
    if abs(value) > limit:
        lhs = f"|{symbol}|" if symbol else "the magnitude"
        raise LimitError(instrument, f"{what} {value:g}{_u(unit)} exceeds the limit "
                                     f"{lhs} <= {limit:g}{_u(unit)}; nothing was sent")


def positive(instrument: str, what: str, value: float, unit: str) -> None:
    if value <= 0:
        raise LimitError(instrument, f"{what} {value:g}{_u(unit)} must be > 0; nothing was sent")


def _u(unit: str) -> str:
    return f" {unit}" if unit else ""
