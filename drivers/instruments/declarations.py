"""One declaration per instrument quantity, as the manual lists it.

    class Keithley2400(...):
        volts = Setting("source volts", set=":SOUR:VOLT:LEV {value}", query=":SOUR:VOLT:LEV?",
                        parse=finite_number, unit="V", check=level_within("max_volts", "V"))

A ``Setting`` holds the set command, the query, how a reply is read, the unit and a validator.
Read through a driver instance it is bound to that driver: ``smu.volts.write(0.1)`` checks the
value, formats it and sends ``:SOUR:VOLT:LEV 1.000000E-01``; ``smu.volts.read()`` sends the query
and parses the reply; ``smu.volts.command(0.1)`` is the checked line without sending it. Every
other piece of code (safe state, verification, the bench) goes through these, so one parser
reads a quantity wherever it is read.

Validators refuse, never clip: a value outside the allowed range raises LimitError naming the
instrument, the quantity, the value and the limit, before any byte is sent. A validator is a
function ``(driver, value) -> value`` so it may depend on the driver's own limits. Parsers are
functions ``reply -> value`` raising ValueError, turned into ProtocolError naming the query and
the reply. Command templates name their fields: ``{value}`` for the quantity and any other
field (``{channels}``) given as keywords: ``dmm.nplc.write(1.0, channels="(@101:105)")``.

PyMeasure's ``Instrument.control`` is the model; unlike its validators, ours never truncate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from drivers.instruments import validators as v
from drivers.instruments.errors import LimitError, ProtocolError
from drivers.instruments.scpi import scpi_number

Parser = Callable[[str], Any]
Check = Callable[[Any, Any, "Setting"], Any]  # (driver, value, setting) -> checked value
# SCPI's "overflow" (9.9E37) and "not a number" (9.91E37) codes come back as ordinary numbers.
OVERRANGE = 9.9e37


@dataclass(frozen=True)
class Setting:
    """One quantity of an instrument. ``what`` is what messages call it."""

    what: str
    set: str | None = None
    query: str | None = None
    parse: Parser = float
    format: Callable[[Any], str] = scpi_number
    unit: str = ""
    check: Check | None = None
    name: str = field(default="", compare=False)

    def __set_name__(self, owner, name: str) -> None:
        object.__setattr__(self, "name", name)

    def __get__(self, driver, owner=None):
        return self if driver is None else Bound(self, driver)


class Bound:
    """A Setting bound to one driver: its transport, label and limits."""

    __slots__ = ("setting", "driver")

    def __init__(self, setting: Setting, driver):
        self.setting = setting
        self.driver = driver

    def checked(self, value):
        """``value`` through the validator (LimitError if refused); no I/O."""
        check = self.setting.check
        return value if check is None else check(self.driver, value, self.setting)

    def command(self, value, *, check: bool = True, **fields) -> str:
        """The line that sets ``value`` (validated unless ``check=False``); nothing is sent."""
        s = self.setting
        if s.set is None:
            raise LimitError(self.driver.label, f"{s.what} cannot be set; nothing was sent")
        if check:
            value = self.checked(value)
        return s.set.format(value=s.format(value), **fields)

    def write(self, value, *, check: bool = True, **fields):
        """Validate, format and send; returns the value as validated."""
        if check:
            value = self.checked(value)
        self.driver.transport.write(self.command(value, check=False, **fields))
        return value

    def read(self, *, timeout_s: float | None = None, **fields):
        """Send the query and parse its reply."""
        s = self.setting
        if s.query is None:
            raise LimitError(self.driver.label, f"{s.what} cannot be queried; nothing was sent")
        line = s.query.format(**fields)
        if timeout_s is None:
            reply = self.driver.transport.query(line)
        else:
            reply = self.driver.transport.query(line, timeout_s=timeout_s)
        return self.parse(reply, line)

    def parse(self, reply: str, line: str | None = None):
        """The reply to this quantity's query as a value (also for replies obtained inside a
        joined line); ProtocolError naming the query and the reply if it cannot be read."""
        try:
            return self.setting.parse(reply)
        except ValueError as exc:
            query = line or self.setting.query or self.setting.what
            raise ProtocolError(self.driver.label, f"{query} reply {reply!r}: {exc}") from None


# -- parsers (reply -> value, ValueError if it is not one) ------------------------------------
def finite_number(reply: str) -> float:
    """A number that is a level, not SCPI's overflow or not-a-number code."""
    try:
        value = float(reply)
    except ValueError:
        raise ValueError("is not a number") from None
    if not math.isfinite(value) or abs(value) >= OVERRANGE * 0.99:
        raise ValueError("is not a finite level")
    return value


def zero_one(reply: str) -> bool:
    """``0`` or ``1`` as a bool."""
    text = reply.strip()
    if text not in ("0", "1"):
        raise ValueError("is not 0 or 1")
    return text == "1"


def word(*allowed: str) -> Parser:
    """One of ``allowed`` (upper case, short forms); quotes and a ``:DC`` tail are ignored, and
    the long form is accepted (``VOLTAGE`` reads as ``VOLT``)."""
    def parse(reply: str) -> str:
        text = reply.strip().strip('"').upper()
        for choice in allowed:
            if text.startswith(choice):
                return choice
        raise ValueError(f"is not one of {', '.join(allowed)}")
    return parse


def numbers(count: int) -> Parser:
    """``count`` comma-separated numbers, as floats (overrange codes kept: the caller judges)."""
    def parse(reply: str) -> list[float]:
        try:
            values = [float(item) for item in reply.split(",")]
        except ValueError:
            raise ValueError(f"is not {count} numbers") from None
        if len(values) != count:
            raise ValueError(f"has {len(values)} fields, expected {count}")
        return values
    return parse


def done(reply: str) -> bool:
    """``*OPC?``'s answer: ``1`` once every command before it has been executed."""
    if reply.strip() != "1":
        raise ValueError("is not 1")
    return True


def flags(reply: str) -> list[bool]:
    """``0,1,0,...`` as bools."""
    return [zero_one(item) for item in reply.split(",")]


# -- formats ----------------------------------------------------------------------------------
def on_off(value: bool) -> str:
    return "ON" if value else "OFF"


def text(value: str) -> str:
    return value


# -- validators ((driver, value, setting) -> value, LimitError if refused) --------------------
def one_of(choices: Iterable[str]) -> Check:
    choices = tuple(choices)

    def check(driver, value, setting):
        if value not in choices:
            raise LimitError(driver.label, f"{setting.what} {value!r} is not one of {choices}; "
                                           "nothing was sent")
        return value
    return check


def one_of_numbers(choices: Iterable[float]) -> Check:
    choices = tuple(choices)

    def check(driver, value, setting):
        value = v.real(driver.label, setting.what, value, setting.unit)
        if value not in choices:
            raise LimitError(driver.label, f"{setting.what} {value:g} {setting.unit} is not one of "
                                           f"{choices}; nothing was sent")
        return value
    return check


def level_within(limit: str, symbol: str) -> Check:
    """A source level: a finite number with |value| <= the driver's ``limits.<limit>``."""
    def check(driver, value, setting):
        value = v.real(driver.label, setting.what, value, setting.unit)
        v.at_most(driver.label, setting.what, value, getattr(driver.limits, limit), setting.unit,
                  symbol)
        return value
    return check


def positive_within(limit: str, symbol: str) -> Check:
    """A compliance: a finite number > 0 and <= the driver's ``limits.<limit>``."""
    def check(driver, value, setting):
        value = v.real(driver.label, setting.what, value, setting.unit)
        v.positive(driver.label, setting.what, value, setting.unit)
        v.at_most(driver.label, setting.what, value, getattr(driver.limits, limit), setting.unit,
                  symbol)
        return value
    return check


def within(low: float, high: float, unit: str) -> Check:
    """A finite number in [low, high] (a delay, an integration time)."""
    def check(driver, value, setting):
        value = v.real(driver.label, setting.what, value, setting.unit)
        if not low <= value <= high:
            raise LimitError(driver.label, f"{setting.what} {value:g} {unit} is outside {low:g} .. {high:g} {unit}; "
                                           "nothing was sent")
        return value
    return check


def boolean(driver, value, setting):
    if not isinstance(value, bool):
        raise LimitError(driver.label, f"{setting.what} must be true or false, got {value!r}; "
                                       "nothing was sent")
    return value
