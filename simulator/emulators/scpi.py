"""A small SCPI parser for the emulators, written from IEEE 488.2 and SCPI-99, independent of the
drivers (an emulator that shared the driver's code would share its mistakes).

What real instruments accept and so this does:
- headers in short or long form, in any case: ``:SOUR:VOLT``, ``:source:voltage:level``;
- optional nodes (written ``[:LEVel]`` in the manuals) and the numeric suffix 1 (``SOUR1``);
- several commands on one line separated by ``;``; a command without a leading ``:`` after a
  ``;`` continues the previous command's path (``:SOUR:VOLT 1;CURR 2`` sets SOUR:CURR); a common
  command (``*RST``) leaves the path alone and may be written after a root colon (``:*CLS``,
  which both Keithley third-party drivers send);
- the IEEE 488.2 common commands and status reporting: ``*IDN? *RST *CLS *OPC *OPC? *WAI *TST?
  *OPT? *TRG *ESE *ESE? *ESR? *SRE *SRE? *STB?``, the standard event status register (command,
  execution, device and query errors set its bits 5, 4, 3, 2), the status byte (bit 2 error
  queue not empty, bit 5 event summary, bit 6 request service) and the SCPI ``STATus`` subsystem
  (``:STAT:PRES``, ``:STAT:QUE[:NEXT]?``, ``:STAT:QUE:CLE``, operation and questionable
  registers);
- errors go to a queue read by ``:SYST:ERR?``. As the Keithley manuals state (2400 user manual
  14-12, "command execution rules") and IEEE 488.2 requires of a parser after a command error,
  an invalid command is not executed, the valid ones before it on the line are, and the ones
  after it on the same line are ignored. A query that fails gives no reply: the host's read
  times out, as with the real instrument, and the reason waits in the error queue.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from simulator.emulators.server import LineDevice

# SCPI-99 standard error numbers and texts.
UNDEFINED_HEADER = (-113, "Undefined header")
DATA_TYPE_ERROR = (-104, "Data type error")
PARAMETER_NOT_ALLOWED = (-108, "Parameter not allowed")
MISSING_PARAMETER = (-109, "Missing parameter")
HEADER_SUFFIX = (-114, "Header suffix out of range")
SETTINGS_CONFLICT = (-221, "Settings conflict")
DATA_OUT_OF_RANGE = (-222, "Data out of range")
ILLEGAL_PARAMETER = (-224, "Illegal parameter value")
QUEUE_OVERFLOW = (-350, "Queue overflow")

# Standard event status register bits (IEEE 488.2 11.5.1).
ESR_OPC, ESR_QYE, ESR_DDE, ESR_EXE, ESR_CME, ESR_PON = 1, 4, 8, 16, 32, 128
# Status byte bits (IEEE 488.2 11.2, SCPI-99 9.1).
STB_EAV, STB_QSB, STB_MAV, STB_ESB, STB_RQS, STB_OSB = 4, 8, 16, 32, 64, 128

INFINITY = 9.9e37  # SCPI's number for INFinity and overflow


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
            short = "".join(ch for ch in name if ch.isupper() or ch.isdigit())
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
    if word in ("INF", "INFINITY") and hi >= INFINITY:
        return INFINITY
    try:
        value = float(word)
    except ValueError:
        raise ScpiError(DATA_TYPE_ERROR) from None
    if not math.isfinite(value):
        raise ScpiError(DATA_TYPE_ERROR)
    if not lo <= value <= hi:
        raise ScpiError(DATA_OUT_OF_RANGE)
    return value


def boolean(param: str) -> bool:
    word = param.strip().upper()
    if word in ("ON", "1"):
        return True
    if word in ("OFF", "0"):
        return False
    try:  # IEEE 488.2: a numeric boolean is rounded, non-zero is ON
        return round(float(word)) != 0
    except ValueError:
        raise ScpiError(ILLEGAL_PARAMETER) from None


def choice(param: str, *options: str) -> str:
    """Match a character parameter written like a header mnemonic ('VOLTage'): short or long
    form, any case; returns the option's short form."""
    word = param.strip().strip("\"'").upper()
    for option in options:
        short = "".join(ch for ch in option if ch.isupper() or ch.isdigit() or ch == ":")
        if word in (short, option.upper()):
            return short
    raise ScpiError(ILLEGAL_PARAMETER)


def string(param: str) -> str:
    """A quoted string parameter, without its quotes."""
    text = param.strip()
    if len(text) < 2 or text[0] not in "\"'" or text[-1] != text[0]:
        raise ScpiError(DATA_TYPE_ERROR)
    return text[1:-1]


def channel_list(param: str, valid: set[int] | None = None) -> list[int]:
    """``(@101:103,105)`` -> [101, 102, 103, 105] in the order written; ``(@)`` -> []. With
    ``valid``, a range keeps only valid channels but must start and end on one (34970A rule)."""
    text = param.strip()
    if not (text.startswith("(@") and text.endswith(")")):
        raise ScpiError(DATA_TYPE_ERROR)
    body = text[2:-1].strip()
    if not body:
        return []
    channels = []
    for part in body.split(","):
        bounds = part.strip().split(":")
        try:
            numbers = [int(b) for b in bounds]
        except ValueError:
            raise ScpiError(DATA_TYPE_ERROR) from None
        if len(numbers) == 1:
            channels.append(numbers[0])
        elif len(numbers) == 2 and numbers[0] <= numbers[1]:
            span = range(numbers[0], numbers[1] + 1)
            if valid is not None:
                if numbers[0] not in valid or numbers[1] not in valid:
                    raise ScpiError(ILLEGAL_PARAMETER)
                span = [ch for ch in span if ch in valid]
            channels.extend(span)
        else:
            raise ScpiError(ILLEGAL_PARAMETER)
    return channels


def one(params: list[str]) -> str:
    if not params:
        raise ScpiError(MISSING_PARAMETER)
    if len(params) > 1:
        raise ScpiError(PARAMETER_NOT_ALLOWED)
    return params[0]


def none(params: list[str]) -> None:
    if params:
        raise ScpiError(PARAMETER_NOT_ALLOWED)


def limit_query(params: list[str], value: float, lo: float, hi: float, default: float) -> float:
    """A numeric setting's query: the value, or with MIN/MAX/DEF its bounds or *RST value."""
    if not params:
        return value
    word = one(params).strip().upper()
    table = {"MIN": lo, "MINIMUM": lo, "MAX": hi, "MAXIMUM": hi, "DEF": default, "DEFAULT": default}
    if word not in table:
        raise ScpiError(ILLEGAL_PARAMETER)
    return table[word]


Setter = Callable[[list[str]], None]
Getter = Callable[[list[str]], str]


def query(value: Callable[[], object]) -> Getter:
    """A query without parameters that answers ``str(value())``."""
    def get(params: list[str]) -> str:
        none(params)
        return str(value())
    return get


def action(do: Callable[[], object]) -> Setter:
    """A command without parameters that calls ``do()``."""
    def set_(params: list[str]) -> None:
        none(params)
        do()
    return set_


class Register:
    """A SCPI status register set: condition, event (latched), enable."""

    def __init__(self):
        self.condition = self.event = self.enable = 0

    def read_event(self) -> int:
        value, self.event = self.event, 0
        return value

    @property
    def summary(self) -> bool:
        return bool(self.event & self.enable)


class ScpiDevice(LineDevice):
    """An instrument that speaks SCPI. Subclasses register commands in ``__init__`` with
    ``self.command(pattern, set=..., query=...)`` and implement ``reset`` and ``identity``.
    ``STATUS_REGISTERS`` names the SCPI status register sets the instrument has."""

    ERROR_QUEUE_SIZE = 10
    STATUS_REGISTERS: tuple[str, ...] = ("OPERation", "QUEStionable")
    NUMBER = "{:+.6E}"  # how this instrument writes a number in a reply

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.error_queue: list[tuple[int, str]] = []
        self.esr = ESR_PON  # the power-on bit is set at power-up
        self.ese = self.sre = 0
        self.registers = {self._short(name): Register() for name in self.STATUS_REGISTERS}
        self._commands: list[tuple[Header, Setter | None, Getter | None]] = []
        self._common: dict[str, tuple[Setter | None, Getter | None]] = {}
        c = self.command
        c(":SYSTem:ERRor[:NEXT]", query=self._next_error)
        c(":SYSTem:ERRor:COUNt", query=query(lambda: str(len(self.error_queue))))
        c(":SYSTem:ERRor:ALL", query=self._all_errors)
        c(":SYSTem:VERSion", query=query(lambda: "1999.0"))
        c(":STATus:PRESet", set=self._status_preset)
        c(":STATus:QUEue[:NEXT]", query=self._next_error)
        c(":STATus:QUEue:CLEar", set=action(lambda: self.error_queue.clear()))
        for name in self.STATUS_REGISTERS:
            register = self.registers[self._short(name)]
            c(f":STATus:{name}[:EVENt]", query=query(lambda r=register: str(r.read_event())))
            c(f":STATus:{name}:CONDition", query=query(lambda r=register: str(r.condition)))
            c(f":STATus:{name}:ENABle", set=lambda p, r=register: setattr(r, "enable", _register_value(p)),
              query=query(lambda r=register: str(r.enable)))
        self.common("*IDN", query=query(lambda: self.identity()))
        self.common("*RST", set=action(lambda: self.reset()))
        self.common("*CLS", set=self._clear_status)
        self.common("*OPC", set=action(lambda: self._set_esr(ESR_OPC)),
                    query=query(lambda: "1"))
        self.common("*WAI", set=lambda p: none(p))
        self.common("*TST", query=query(lambda: "0"))
        self.common("*OPT", query=query(lambda: self.options()))
        self.common("*TRG", set=action(lambda: self.trigger()))
        self.common("*ESE", set=lambda p: setattr(self, "ese", _register_value(p, 255)),
                    query=query(lambda: str(self.ese)))
        self.common("*SRE", set=lambda p: setattr(self, "sre", _register_value(p, 255) & ~STB_RQS),
                    query=query(lambda: str(self.sre)))
        self.common("*ESR", query=self._read_esr)
        self.common("*STB", query=query(lambda: str(self.status_byte())))

    # -- to override ------------------------------------------------------------------------
    def identity(self) -> str:
        raise NotImplementedError

    def reset(self) -> None:
        """*RST: the instrument's documented reset state."""

    def options(self) -> str:
        return "0"

    def trigger(self) -> None:
        """*TRG: a bus trigger (instruments with a trigger model override this)."""

    def format_error(self, code: int, message: str) -> str:
        return f'{code},"{message}"'

    def power_cycle(self) -> None:
        """Off and on again: the power-on state, an empty error queue, PON set."""
        self.reset()
        self.error_queue.clear()
        self.esr, self.ese, self.sre = ESR_PON, 0, 0
        for register in self.registers.values():
            register.condition = register.event = register.enable = 0

    # -- registry and errors ---------------------------------------------------------------
    def command(self, pattern: str, *, set: Setter | None = None, query: Getter | None = None):
        self._commands.append((Header(pattern), set, query))

    def common(self, name: str, *, set: Setter | None = None, query: Getter | None = None):
        self._common[name.upper()] = (set, query)

    def push_error(self, error: tuple[int, str]) -> None:
        code = error[0]
        self._set_esr(ESR_CME if -199 <= code <= -100 else ESR_EXE if -299 <= code <= -200 else
                      ESR_QYE if -499 <= code <= -400 else ESR_DDE)
        if len(self.error_queue) >= self.ERROR_QUEUE_SIZE:
            self.error_queue[-1] = QUEUE_OVERFLOW
        else:
            self.error_queue.append(error)

    def status_byte(self) -> int:
        stb = 0
        if self.error_queue:
            stb |= STB_EAV
        if self.esr & self.ese:
            stb |= STB_ESB
        questionable = self.registers.get("QUES")
        if questionable is not None and questionable.summary:
            stb |= STB_QSB
        operation = self.registers.get("OPER")
        if operation is not None and operation.summary:
            stb |= STB_OSB
        if stb & self.sre:
            stb |= STB_RQS
        return stb

    def number(self, value: float) -> str:
        return self.NUMBER.format(value + 0.0)

    def _set_esr(self, bits: int) -> None:
        self.esr |= bits

    def _read_esr(self, params: list[str]) -> str:
        none(params)
        value, self.esr = self.esr, 0
        return str(value)

    def _clear_status(self, params: list[str]) -> None:
        none(params)
        self.error_queue.clear()
        self.esr = 0
        for register in self.registers.values():
            register.event = 0

    def _status_preset(self, params: list[str]) -> None:
        """:STAT:PRES: the SCPI registers' enables to their preset values (0); the error queue
        and the IEEE 488.2 registers are left alone."""
        none(params)
        for register in self.registers.values():
            register.enable = 0

    def _next_error(self, params: list[str]) -> str:
        none(params)
        code, message = self.error_queue.pop(0) if self.error_queue else (0, "No error")
        return self.format_error(code, message)

    def _all_errors(self, params: list[str]) -> str:
        none(params)
        if not self.error_queue:
            return self.format_error(0, "No error")
        errors, self.error_queue = self.error_queue, []
        return ",".join(self.format_error(code, message) for code, message in errors)

    @staticmethod
    def _short(name: str) -> str:
        return "".join(ch for ch in name if ch.isupper())

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
                # The rest of the line is ignored (see the module docstring).
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
        if head.startswith("*") or head.startswith(":*"):
            name = head.lstrip(":").upper()
            handlers = self._common.get(name)
            handler = handlers and handlers[1 if is_query else 0]
            if handler is None:
                raise ScpiError(UNDEFINED_HEADER)
            return handler(params), path
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


def _register_value(params: list[str], top: int = 65535) -> int:
    return int(number(one(params), 0, top))


class Settings:
    """Plain stored settings (a delay, an auto-zero flag, the terminals) declared once: the
    command that sets it, the query that reads it, its *RST value. Physics never reads them."""

    def __init__(self, device: ScpiDevice):
        self.device = device
        self.values: dict[str, object] = {}
        self.defaults: dict[str, object] = {}

    def reset(self) -> None:
        self.values.update(self.defaults)

    def __getitem__(self, key: str):
        return self.values[key]

    def number(self, pattern: str, key: str, lo: float, hi: float, default: float) -> None:
        self.defaults[key] = self.values[key] = default

        def set_(params):
            self.values[key] = number(one(params), lo, hi, default=default)

        def get(params):
            return self.device.number(limit_query(params, self.values[key], lo, hi, default))
        self.device.command(pattern, set=set_, query=get)

    def boolean(self, pattern: str, key: str, default: bool) -> None:
        self.defaults[key] = self.values[key] = default

        def set_(params):
            self.values[key] = boolean(one(params))
        self.device.command(pattern, set=set_,
                            query=query(lambda: "1" if self.values[key] else "0"))

    def choice(self, pattern: str, key: str, options: tuple[str, ...], default: str) -> None:
        self.defaults[key] = self.values[key] = default

        def set_(params):
            self.values[key] = choice(one(params), *options)
        self.device.command(pattern, set=set_, query=query(lambda: str(self.values[key])))

    def action(self, pattern: str, max_params: int = 0) -> None:
        """A command that is accepted and changes nothing the emulation models (a beep)."""
        def set_(params):
            if len(params) > max_params:
                raise ScpiError(PARAMETER_NOT_ALLOWED)
        self.device.command(pattern, set=set_)
