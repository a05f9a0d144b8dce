"""A small SCPI parser for the emulators, written from the SCPI-99 rules, independent of the
drivers (an emulator that shared the driver's code would share its mistakes).

What real instruments accept and so this does:
- headers in short or long form, in any case: ``:SOUR:VOLT``, ``:source:voltage:level``;
- optional nodes (written ``[:LEVel]`` in the manuals) and the numeric suffix 1 (``SOUR1``);
- several commands on one line separated by ``;``; a command without a leading ``:`` after a
  ``;`` continues the previous command's path (``:SOUR:VOLT 1;CURR 2`` sets SOUR:CURR);
- common commands ``*IDN?``, ``*RST``, ``*CLS``, ``*OPC?``, ``*WAI``;
- errors go to a queue read by ``:SYST:ERR?``; a query that fails gives no reply (the host's
  read times out, as with the real instrument) and the rest of the line is discarded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from simulator.emulators.server import LineDevice

# SCPI-99 standard error numbers and texts.
UNDEFINED_HEADER = (-113, "Undefined header")
DATA_TYPE_ERROR = (-104, "Data type error")
PARAMETER_NOT_ALLOWED = (-108, "Parameter not allowed")
MISSING_PARAMETER = (-109, "Missing parameter")
SETTINGS_CONFLICT = (-221, "Settings conflict")
DATA_OUT_OF_RANGE = (-222, "Data out of range")
ILLEGAL_PARAMETER = (-224, "Illegal parameter value")
QUEUE_OVERFLOW = (-350, "Queue overflow")


class ScpiError(Exception):
    def __init__(self, error: tuple[int, str]):
        super().__init__(f"{error[0]},{error[1]}")
        self.code, self.message = error


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool
    suffix: bool  # accepts the numeric suffix 1


_NODE = re.compile(r"\[:([A-Za-z]+)(\[1\])?\]|:([A-Za-z]+)(\[1\])?")


class Header:
    """A header pattern in manual notation, e.g. ``[:SENSe[1]]:CURRent[:DC]:PROTection[:LEVel]``."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        nodes, pos = [], 0
        for m in _NODE.finditer(pattern):
            if m.start() != pos:
                raise ValueError(f"bad header pattern {pattern!r} at {pos}")
            pos = m.end()
            name = m.group(1) or m.group(3)
            optional = m.group(1) is not None
            suffix = bool(m.group(2) or m.group(4))
            short = "".join(ch for ch in name if ch.isupper())
            nodes.append(_Node(short, name.upper(), optional, suffix))
        if pos != len(pattern):
            raise ValueError(f"bad header pattern {pattern!r} at {pos}")
        self.nodes = tuple(nodes)

    def matches(self, tokens: list[tuple[str, str]]) -> bool:
        return self._match(0, tokens, 0)

    def _match(self, i: int, tokens, j: int) -> bool:
        if i == len(self.nodes):
            return j == len(tokens)
        node = self.nodes[i]
        if j < len(tokens):
            word, suffix = tokens[j]
            if (word in (node.short, node.long) and (not suffix or (node.suffix and suffix == "1"))
                    and self._match(i + 1, tokens, j + 1)):
                return True
        return node.optional and self._match(i + 1, tokens, j)


_TOKEN = re.compile(r"([A-Za-z]+)(\d*)")


def split_outside(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quotes and parentheses."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


# -- parameter readers (raise ScpiError like the instrument would) ------------------------------
def number(param: str, lo: float, hi: float, *, default: float | None = None) -> float:
    word = param.strip().upper()
    if word in ("MIN", "MINIMUM"):
        return lo
    if word in ("MAX", "MAXIMUM"):
        return hi
    if word in ("DEF", "DEFAULT") and default is not None:
        return default
    try:
        value = float(word)
    except ValueError:
        raise ScpiError(DATA_TYPE_ERROR) from None
    if not lo <= value <= hi:
        raise ScpiError(DATA_OUT_OF_RANGE)
    return value


def boolean(param: str) -> bool:
    word = param.strip().upper()
    if word in ("ON", "1"):
        return True
    if word in ("OFF", "0"):
        return False
    raise ScpiError(ILLEGAL_PARAMETER)


def choice(param: str, *options: str) -> str:
    """Match a character parameter written like a header mnemonic ('VOLTage'): short or long
    form, any case; returns the option's short form."""
    word = param.strip().strip("\"'").upper()
    for option in options:
        short = "".join(ch for ch in option if ch.isupper() or ch.isdigit() or ch == ":")
        if word in (short, option.upper()):
            return short
    raise ScpiError(ILLEGAL_PARAMETER)


def channel_list(param: str) -> list[int]:
    """``(@101:103,105)`` -> [101, 102, 103, 105] in the order written."""
    text = param.strip()
    if not (text.startswith("(@") and text.endswith(")")):
        raise ScpiError(DATA_TYPE_ERROR)
    channels = []
    for part in text[2:-1].split(","):
        bounds = part.strip().split(":")
        try:
            numbers = [int(b) for b in bounds]
        except ValueError:
            raise ScpiError(DATA_TYPE_ERROR) from None
        if len(numbers) == 1:
            channels.append(numbers[0])
        elif len(numbers) == 2 and numbers[0] <= numbers[1]:
            channels.extend(range(numbers[0], numbers[1] + 1))
        else:
            raise ScpiError(ILLEGAL_PARAMETER)
    return channels


Setter = Callable[[list[str]], None]
Getter = Callable[[list[str]], str]


class ScpiDevice(LineDevice):
    """An instrument that speaks SCPI. Subclasses register commands in ``__init__`` with
    ``self.command(pattern, set=..., query=...)`` and implement ``reset`` and ``identity``."""

    ERROR_QUEUE_SIZE = 10

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.error_queue: list[tuple[int, str]] = []
        self._commands: list[tuple[Header, Setter | None, Getter | None]] = []
        self.command(":SYSTem:ERRor[:NEXT]", query=self._next_error)

    # -- to override ------------------------------------------------------------------------
    def identity(self) -> str:
        raise NotImplementedError

    def reset(self) -> None:
        """*RST: the instrument's documented reset state."""

    def format_error(self, code: int, message: str) -> str:
        return f'{code},"{message}"'

    # -- registry and errors ---------------------------------------------------------------
    def command(self, pattern: str, *, set: Setter | None = None, query: Getter | None = None):
        self._commands.append((Header(pattern), set, query))

    def push_error(self, error: tuple[int, str]) -> None:
        if len(self.error_queue) >= self.ERROR_QUEUE_SIZE:
            self.error_queue[-1] = QUEUE_OVERFLOW
        else:
            self.error_queue.append(error)

    def _next_error(self, params: list[str]) -> str:
        if params:
            raise ScpiError(PARAMETER_NOT_ALLOWED)
        code, message = self.error_queue.pop(0) if self.error_queue else (0, "No error")
        return self.format_error(code, message)

    # -- parsing -----------------------------------------------------------------------------
    def handle(self, line: str) -> str | None:
        replies: list[str] = []
        path: list[tuple[str, str]] = []
        for unit in split_outside(line, ";"):
            unit = unit.strip()
            if not unit:
                continue
            try:
                reply, path = self._execute(unit, path)
            except ScpiError as exc:
                self.push_error((exc.code, exc.message))
                break
            if reply is not None:
                replies.append(reply)
        return ";".join(replies) if replies else None

    def _execute(self, unit: str, path: list[tuple[str, str]]):
        head, _, rest = unit.partition(" ")
        params = [p.strip() for p in split_outside(rest, ",")] if rest.strip() else []
        is_query = head.endswith("?")
        if is_query:
            head = head[:-1]
        if head.startswith("*"):
            return self._common(head.upper(), is_query, params), path
        absolute = head.startswith(":") or not path
        tokens = []
        for text in head.lstrip(":").split(":"):
            m = _TOKEN.fullmatch(text)
            if not m:
                raise ScpiError(UNDEFINED_HEADER)
            tokens.append((m.group(1).upper(), m.group(2)))
        if not absolute:
            tokens = path + tokens
        for header, setter, getter in self._commands:
            if header.matches(tokens):
                handler = getter if is_query else setter
                if handler is None:
                    raise ScpiError(UNDEFINED_HEADER)
                return handler(params), tokens[:-1]
        raise ScpiError(UNDEFINED_HEADER)

    def _common(self, head: str, is_query: bool, params: list[str]) -> str | None:
        if params:
            raise ScpiError(PARAMETER_NOT_ALLOWED)
        if head == "*IDN" and is_query:
            return self.identity()
        if head == "*RST" and not is_query:
            self.reset()
            return None
        if head == "*CLS" and not is_query:
            self.error_queue.clear()
            return None
        if head == "*OPC" and is_query:
            return "1"
        if head == "*WAI" and not is_query:
            return None
        raise ScpiError(UNDEFINED_HEADER)
