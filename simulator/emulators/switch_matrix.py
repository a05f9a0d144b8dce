"""Emulated switch matrices: the Keithley 707B/708B's TSP command interface and a generic SCPI
matrix (ROUTe subsystem), written from the 707B reference manual (707B-901-01) and the SCPI
switch commands, never from our drivers.

Both keep the relays' state and their closure counts, and tell the InstrumentBackend whenever a
relay changes (``set_relays``: the circuit's routing). Every change is logged with what the
sources were doing at that moment (``switch_log``: ``SwitchEvent``: time, verb, channels, and
the sources that were on at a nonzero level, from the backend's ``hot_sources``): the evidence
that a bench never switched a relay hot (tests/test_crossbar_bench.py).

707B, what is emulated (a command answers nothing; ``print(...)`` answers one line; several
statements may share a line, separated by spaces):
    reset(), errorqueue.clear(), print(errorqueue.count), print(errorqueue.next())
    channel.open(list) / channel.close(list) / channel.exclusiveclose(list)
    print(channel.getclose(list))          ";"-separated closed channels in the list, or nil
    print(channel.getcount(list))          ","-separated closure counts
    channel.connectrule = channel.BREAK_BEFORE_MAKE | MAKE_BEFORE_BREAK | OFF, print(...) of it
    channel.setforbidden(list), channel.clearforbidden(list), print(channel.getforbidden(list))
    *IDN?, *RST, *CLS, *OPC?, waitcomplete()
Channel lists: "1A01,1B02", ranges "1A01:1C05" (a block of rows and columns), "slot1", "allslots"
(slot names are refused by close, as the manual says). An error stops the statement with nothing
switched and goes to the error queue (codes: -285 syntax, -203 a forbidden channel, -224 a
channel not on a card); errorqueue.next() prints "code<TAB>message<TAB>severity<TAB>node".

Generic SCPI: ROUT:CLOS (@srcc,...), ROUT:OPEN (@...), ROUT:CLOS? and ROUT:OPEN? (one flag per
channel), DIAG:REL:CYCL? (closure counts), *RST (every relay open) and the common commands.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from simulator.emulators import scpi
from simulator.emulators.scpi import ScpiDevice, ScpiError, action, one
from simulator.emulators.server import LineDevice

ROWS = "ABCDEFGH"
CARDS_707B = {"7174A": (8, 12), "7072": (8, 12)}
_SIZE = re.compile(r"([1-8])x(\d{1,2})$")


@dataclass(frozen=True)
class SwitchEvent:
    """One change of the relays: when, 'open' or 'close', which channels, and the sources that
    were on at a nonzero level (name -> level) at that moment: empty means switched cold."""

    time: float
    verb: str
    channels: tuple[str, ...]
    hot: dict = field(default_factory=dict)


class _Relays:
    """The relays of a matrix's cards: state, counts, forbidden set, log, backend."""

    def __init__(self, cards: Mapping[int, tuple[int, int]], backend):
        self.cards = dict(cards)
        self.backend = backend
        self.valid = [f"{s}{ROWS[r - 1]}{c:02d}" for s, (rows, cols) in sorted(self.cards.items())
                      for r in range(1, rows + 1) for c in range(1, cols + 1)]
        self.order = {name: k for k, name in enumerate(self.valid)}
        self.closed: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.forbidden: set[str] = set()
        self.log: list[SwitchEvent] = []

    def change(self, verb: str, channels: list[str]) -> None:
        changing = [c for c in channels if (c in self.closed) != (verb == "close")]
        if not changing:
            return
        hot = dict(self.backend.hot_sources()) if hasattr(self.backend, "hot_sources") else {}
        for c in changing:
            if verb == "close":
                self.closed.add(c)
                self.counts[c] += 1
            else:
                self.closed.discard(c)
        self.log.append(SwitchEvent(time.monotonic(), verb, tuple(sorted(changing, key=self.order.get)), hot))
        if hasattr(self.backend, "set_relays"):
            self.backend.set_relays(frozenset(self.closed))

    def power_on(self) -> None:
        self.change("open", sorted(self.closed))
        self.counts.clear()  # the 7174A counts closures since the card was powered
        self.forbidden.clear()


def card_sizes(cards: Mapping[int, str], dialect: str) -> dict[int, tuple[int, int]]:
    sizes = {}
    for slot, model in cards.items():
        if dialect == "keithley707b":
            sizes[int(slot)] = CARDS_707B[model]
        else:
            match = _SIZE.match(model)
            if match is None:
                raise ValueError(f"card {model!r}: rows x columns, e.g. '8x12'")
            sizes[int(slot)] = (int(match.group(1)), int(match.group(2)))
    return sizes


class _TspError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


_STATEMENT = re.compile(r"""\s*(?:print\((?P<printed>[^()]*(?:\([^()]*\))?)\)|(?P<call>[A-Za-z_.]+)\((?P<args>[^()]*)\)
                            |(?P<target>[A-Za-z_.]+)\s*=\s*(?P<value>[A-Za-z_.0-9+-]+))""", re.X)
_CALL = re.compile(r"([A-Za-z_.]+)\((.*)\)$")
_STRING = re.compile(r"""^\s*(["'])(.*)\1\s*$""")
RULES = {"channel.OFF": 0, "channel.BREAK_BEFORE_MAKE": 1, "channel.MAKE_BEFORE_BREAK": 2}


class Keithley707BEmulator(LineDevice):
    """Keithley 707B (or 708B) switching matrix, its TSP command interface. ``cards`` maps slot to
    card model (7174A, 7072)."""

    MAKER = "KEITHLEY INSTRUMENTS INC."

    def __init__(self, backend, *, cards: Mapping[int, str] | None = None, model: str = "707B",
                 serial: str = "04089762", **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.serial = serial
        self.relays = _Relays(card_sizes(cards or {1: "7174A"}, "keithley707b"), backend)
        self.errors: list[tuple[int, str]] = []
        self.connect_rule = 1

    @property
    def switch_log(self) -> list[SwitchEvent]:
        with self.lock:
            return list(self.relays.log)

    @property
    def closed(self) -> set[str]:
        with self.lock:
            return set(self.relays.closed)

    def is_safe(self) -> bool:
        return not self.closed

    def power_cycle(self) -> None:
        self.relays.power_on()
        self.errors.clear()
        self.connect_rule = 1

    def reset(self) -> None:
        """reset() / *RST: every channel open, the connect rule back to break before make; the
        forbidden list is cleared as well (our reading of 'default settings')."""
        self.relays.change("open", sorted(self.relays.closed))
        self.relays.forbidden.clear()
        self.connect_rule = 1

    def handle(self, line: str) -> str | None:
        text = line.strip()
        if not text:
            return None
        if text.startswith("*"):
            return self._common(text.upper())
        replies = []
        position = 0
        while position < len(text):
            match = _STATEMENT.match(text, position)
            if match is None or match.end() == position:
                near = text[position:position + 12]
                self._error(-285, f"TSP Syntax error at line 1: unexpected symbol near '{near}'")
                break
            position = match.end()
            while position < len(text) and text[position] in " ;\t":
                position += 1
            try:
                reply = self._statement(match)
            except _TspError as exc:
                self._error(exc.code, exc.message)
                break
            if reply is not None:
                replies.append(reply)
        return "\n".join(replies) if replies else None

    def _common(self, text: str) -> str | None:
        if text == "*IDN?":
            return f"{self.MAKER},MODEL {self.model},{self.serial},01.03.00"
        if text == "*RST":
            self.reset()
            return None
        if text == "*CLS":
            self.errors.clear()
            return None
        if text == "*OPC?":
            return "1"
        if text in ("*OPC", "*WAI"):
            return None
        self._error(-285, f"TSP Syntax error at line 1: unexpected symbol near '{text}'")
        return None

    def _error(self, code: int, message: str) -> None:
        if len(self.errors) < 100:
            self.errors.append((code, message))

    def _statement(self, match) -> str | None:
        if match.group("printed") is not None:
            return self._print(match.group("printed").strip())
        if match.group("target") is not None:
            target, value = match.group("target"), match.group("value")
            if target != "channel.connectrule":
                raise _TspError(-285, f"TSP Syntax error: cannot assign {target}")
            if value in RULES:
                self.connect_rule = RULES[value]
            elif value in ("0", "1", "2"):
                self.connect_rule = int(value)
            else:
                raise _TspError(-224, f"Illegal parameter value {value}")
            return None
        name, args = match.group("call"), match.group("args")
        if name == "reset":
            self._no_args(args)
            self.reset()
        elif name == "errorqueue.clear":
            self._no_args(args)
            self.errors.clear()
        elif name == "waitcomplete":
            pass
        elif name in ("channel.open", "channel.close", "channel.exclusiveclose", "channel.setforbidden",
                      "channel.clearforbidden"):
            self._channel_command(name, self._string(args))
        else:
            raise _TspError(-285, f"TSP Syntax error: attempt to call a nil value ({name})")
        return None

    def _print(self, expression: str) -> str:
        if expression == "errorqueue.count":
            return self._tsp_number(len(self.errors))
        if expression == "channel.connectrule":
            return self._tsp_number(self.connect_rule)
        if expression == "errorqueue.next()":
            code, message = self.errors.pop(0) if self.errors else (0, "Queue Is Empty")
            return f"{self._tsp_number(code)}\t{message}\t{self._tsp_number(2 if code else 0)}\t{self._tsp_number(0)}"
        call = _CALL.match(expression)
        if call is None:
            raise _TspError(-285, f"TSP Syntax error near '{expression}'")
        name, args = call.groups()
        chans = self._expand(self._string(args), allow_slots=True)
        if name == "channel.getclose":
            closed = [c for c in chans if c in self.relays.closed]
            return ";".join(closed) if closed else "nil"
        if name == "channel.getcount":
            return ",".join(str(self.relays.counts[c]) for c in chans)
        if name == "channel.getforbidden":
            found = [c for c in chans if c in self.relays.forbidden]
            return ",".join(found) if found else "nil"
        raise _TspError(-285, f"TSP Syntax error: attempt to call a nil value ({name})")

    def _channel_command(self, name: str, text: str) -> None:
        closing = name in ("channel.close", "channel.exclusiveclose")
        chans = self._expand(text, allow_slots=not closing or name == "channel.exclusiveclose" and not text.strip())
        if name == "channel.setforbidden":
            self.relays.forbidden.update(chans)
            return
        if name == "channel.clearforbidden":
            self.relays.forbidden.difference_update(chans)
            return
        if closing:
            banned = [c for c in chans if c in self.relays.forbidden]
            if banned:
                raise _TspError(-203, f"Command protected: channel {banned[0]} is forbidden")
        if name == "channel.open":
            self.relays.change("open", chans)
        elif name == "channel.close":
            self.relays.change("close", chans)
        else:   # exclusiveclose: the others open, then these close (the connect rule's order)
            self.relays.change("open", [c for c in sorted(self.relays.closed) if c not in chans])
            self.relays.change("close", chans)

    def _expand(self, text: str, allow_slots: bool) -> list[str]:
        found: list[str] = []
        for item in filter(None, (part.strip() for part in re.split(r"[,;]", text))):
            lower = item.lower()
            if lower == "allslots" or re.fullmatch(r"slot[1-6]", lower):
                if not allow_slots:
                    raise _TspError(-224, f"Illegal parameter value: {item} cannot be closed")
                slot = None if lower == "allslots" else int(lower[4:])
                found += [c for c in self.relays.valid if slot is None or int(c[0]) == slot]
                continue
            if ":" in item:
                start, end = (part.strip().upper() for part in item.split(":", 1))
                for corner in (start, end):
                    if corner not in self.relays.order:
                        raise _TspError(-224, f"Illegal parameter value: channel {corner} does not exist")
                if start[0] != end[0]:
                    raise _TspError(-224, f"Illegal parameter value: range {item} spans slots")
                rows = range(ROWS.index(start[1]), ROWS.index(end[1]) + 1)
                cols = range(int(start[2:]), int(end[2:]) + 1)
                if not rows or not cols:
                    raise _TspError(-224, f"Illegal parameter value: range {item} runs backwards")
                found += [f"{start[0]}{ROWS[r]}{c:02d}" for r in rows for c in cols]
                continue
            name = item.upper()
            if name not in self.relays.order:
                raise _TspError(-224, f"Illegal parameter value: channel {item} does not exist")
            found.append(name)
        return list(dict.fromkeys(found))

    @staticmethod
    def _string(args: str) -> str:
        match = _STRING.match(args)
        if match is None:
            raise _TspError(-285, f"TSP Syntax error: expected a string, got '{args}'")
        return match.group(2)

    @staticmethod
    def _no_args(args: str) -> None:
        if args.strip():
            raise _TspError(-285, "TSP Syntax error: unexpected arguments")

    @staticmethod
    def _tsp_number(value: float) -> str:
        return f"{float(value):.5e}"   # format.asciiprecision 6: 1.00000e+00


class ScpiSwitchEmulator(ScpiDevice):
    """A generic SCPI switch matrix; ``cards`` maps slot to 'RxC' (rows x columns)."""

    def __init__(self, backend, *, cards: Mapping[int, str] | None = None, model: str = "SWITCH-MATRIX",
                 serial: str = "SM000001", **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.serial = serial
        self.relays = _Relays(card_sizes(cards or {1: "8x12"}, "scpi_switch"), backend)
        self.numbers = {self._number(name): name for name in self.relays.valid}
        c = self.command
        c(":ROUTe:CLOSe", set=lambda p: self._switch(p, "close"), query=lambda p: self._state(p, True))
        c(":ROUTe:OPEN", set=lambda p: self._switch(p, "open"), query=lambda p: self._state(p, False))
        c(":DIAGnostic:RELay:CYCLes", query=self._cycles)
        c(":ROUTe:OPEN:ALL", set=action(lambda: self.relays.change("open", sorted(self.relays.closed))))

    @staticmethod
    def _number(name: str) -> int:
        return int(name[0]) * 1000 + (ROWS.index(name[1]) + 1) * 100 + int(name[2:])

    @property
    def switch_log(self) -> list[SwitchEvent]:
        with self.lock:
            return list(self.relays.log)

    @property
    def closed(self) -> set[str]:
        with self.lock:
            return set(self.relays.closed)

    def is_safe(self) -> bool:
        return not self.closed

    def identity(self) -> str:
        return f"HWLEARN,{self.model},{self.serial},1.0"

    def reset(self) -> None:
        self.relays.change("open", sorted(self.relays.closed))

    def power_cycle(self) -> None:
        super().power_cycle()
        self.relays.power_on()

    def _channels(self, params: list[str]) -> list[str]:
        chans = scpi.channel_list(one(params), set(self.numbers))
        bad = [c for c in chans if c not in self.numbers]
        if bad:
            raise ScpiError(scpi.ILLEGAL_PARAMETER)
        return [self.numbers[c] for c in chans]

    def _switch(self, params: list[str], verb: str) -> None:
        self.relays.change(verb, self._channels(params))

    def _state(self, params: list[str], closed: bool) -> str:
        return ",".join("1" if (name in self.relays.closed) == closed else "0" for name in self._channels(params))

    def _cycles(self, params: list[str]) -> str:
        return ",".join(str(self.relays.counts[name]) for name in self._channels(params))
