"""Keysight (Agilent) 34970A data acquisition unit with multiplexer cards, over SCPI scan lists.

One ``READ?`` scans the scan list and returns one reading per channel, comma-separated, in
ascending channel order: the 34970A always scans in ascending slot and channel order whatever
order the list was written in (34970A user's guide, "Scanning"), so the driver sorts the
channels it sends and puts the readings back into the order the caller asked for.

Commands used (34970A user's guide / programmer's reference):
    *IDN?, *RST, *CLS, SYST:ERR?
    CONF:VOLT:DC <range|AUTO>,DEF,(@<list>)   DC volts on the channels; also sets the scan list
    VOLT:DC:NPLC <n>,(@<list>)                integration time in power-line cycles
    ROUT:SCAN (@<list>)                       the channels one READ? scans
    READ?                                      INIT + FETCh?: one scan, readings in channel order
    ABOR, ROUT:OPEN (@<list>)                  safe state: stop a scan, open every relay

An overload reads +9.90000000E+37 (-9.9E+37 for a negative overload) and a reading that is not a
number 9.91E+37 (SCPI's NaN); both raise ReadingError naming the channel, as does 'NAN'.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from drivers.instruments import validators as v
from drivers.instruments.errors import LimitError, ProtocolError, ReadingError
from drivers.instruments.scpi import Identity, ScpiErrorQueue, parse_identity, scpi_number
from drivers.instruments.transport import Transport

OVERLOAD = 9.9e37


@dataclass(frozen=True)
class Card:
    """A plug-in module: its name and how many voltage channels it multiplexes."""

    model: str
    channels: int
    description: str


# Voltage channels of each module (34970A user's guide, module overview). The 34901A's two
# current channels (21, 22) are not voltage channels and are not offered.
CARDS = {
    "34901A": Card("34901A", 20, "20-channel armature multiplexer"),
    "34902A": Card("34902A", 16, "16-channel reed multiplexer"),
    "34908A": Card("34908A", 40, "40-channel single-ended multiplexer"),
}
RANGES = (0.1, 1.0, 10.0, 100.0, 300.0)   # DC volts ranges
NPLCS = (0.02, 0.2, 1.0, 2.0, 10.0, 20.0, 100.0, 200.0)


def scan_list(channels: Sequence[int]) -> str:
    """``(@101:103,105)``: ascending, runs of consecutive channels written as ranges."""
    ordered = sorted(set(int(c) for c in channels))
    parts, start = [], None
    for i, ch in enumerate(ordered):
        if start is None:
            start = ch
        if i + 1 == len(ordered) or ordered[i + 1] != ch + 1:
            parts.append(f"{start}" if start == ch else f"{start}:{ch}")
            start = None
    return "(@" + ",".join(parts) + ")"


class Keysight34970A(ScpiErrorQueue):
    """Scanning DC voltmeter: a 34970A mainframe with multiplexer cards in slots 1-3."""

    MODEL = "Keysight 34970A"
    MODELS = frozenset({"34970A"})
    CONFIGURE = "CONF:VOLT:DC {range},DEF,{channels}"
    NPLC = "VOLT:DC:NPLC {nplc},{channels}"
    SCAN = "ROUT:SCAN {channels}"
    READ = "READ?"
    ABORT = "ABOR"
    OPEN = "ROUT:OPEN {channels}"
    ERROR_QUERY = "SYST:ERR?"

    def __init__(self, transport: Transport, *, name: str | None = None,
                 cards: Mapping[int, str] | None = None, read_timeout_s: float | None = None):
        """``cards`` maps slot (1, 2, 3) to module model, default {1: '34901A'};
        ``read_timeout_s`` overrides the transport timeout for READ? (a scan of many channels
        at high NPLC takes seconds)."""
        self.transport = transport
        self.name = name or transport.name
        cards = {1: "34901A"} if cards is None else dict(cards)
        for slot, model in cards.items():
            if slot not in (1, 2, 3) or model not in CARDS:
                raise LimitError(self.label, f"slot {slot!r} with module {model!r}: slots are 1-3, "
                                             f"modules {sorted(CARDS)}")
        self.cards = {slot: CARDS[model] for slot, model in sorted(cards.items())}
        self.read_timeout_s = read_timeout_s
        self._configured: set[int] = set()
        self._scan: tuple[int, ...] | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.MODEL})"

    @property
    def channels(self) -> tuple[int, ...]:
        """Every voltage channel the installed cards have, e.g. 101..120."""
        return tuple(100 * slot + k for slot, card in self.cards.items()
                     for k in range(1, card.channels + 1))

    def identify(self) -> Identity:
        identity = parse_identity(self.label, self.transport.query("*IDN?"))
        if identity.model.strip().upper() not in self.MODELS:
            raise ProtocolError(self.label, f"*IDN? names model {identity.model!r}; this driver "
                                            f"drives {sorted(self.MODELS)}")
        return identity

    def reset(self) -> None:
        with self.transport.lock:
            self.transport.write("*RST")
            self.transport.write("*CLS")
            self._configured, self._scan = set(), None
            self.check_errors()

    def configure(self, channels: Sequence[int], volt_range: float | str = "AUTO",
                  nplc: float = 1.0) -> None:
        """DC volts on ``channels`` with ``volt_range`` (one of RANGES, volts, or 'AUTO') and
        ``nplc`` power-line cycles of integration (one of NPLCS). The scan list becomes
        ``channels``."""
        chans = self._check_channels(channels)
        if volt_range != "AUTO":
            volt_range = v.real(self.label, "DC volts range", volt_range, "V")
            if volt_range not in RANGES:
                raise LimitError(self.label, f"DC volts range {volt_range:g} V is not one of "
                                             f"{RANGES} or 'AUTO'; nothing was sent")
            range_text = scpi_number(volt_range)
        else:
            range_text = "AUTO"
        nplc = v.real(self.label, "integration time", nplc, "NPLC")
        if nplc not in NPLCS:
            raise LimitError(self.label, f"integration time {nplc:g} NPLC is not one of {NPLCS}; "
                                         "nothing was sent")
        listed = scan_list(chans)
        with self.transport.lock:
            self.transport.write(self.CONFIGURE.format(range=range_text, channels=listed))
            self.transport.write(self.NPLC.format(nplc=scpi_number(nplc), channels=listed))
            self._configured |= set(chans)
            self._scan = tuple(sorted(set(chans)))
            self.check_errors()

    def measure(self, channels: Sequence[int]) -> np.ndarray:
        """(k,) volts on ``channels`` from one scan, in the order given. Raises ReadingError if
        any channel is overloaded or not a number."""
        chans = self._check_channels(channels)
        missing = sorted(set(chans) - self._configured)
        if missing:
            raise LimitError(self.label, f"channels {missing} are not configured for DC volts; "
                                         "call configure() first; nothing was sent")
        ordered = tuple(sorted(set(chans)))
        with self.transport.lock:
            if ordered != self._scan:
                self.transport.write(self.SCAN.format(channels=scan_list(ordered)))
                self._scan = ordered
            reply = self.transport.query(self.READ, timeout_s=self.read_timeout_s)
        fields = reply.split(",")
        if len(fields) != len(ordered):
            raise ProtocolError(self.label, f"READ? returned {len(fields)} readings for "
                                            f"{len(ordered)} channels {list(ordered)}: {reply!r}")
        by_channel, bad = {}, []
        for ch, field in zip(ordered, fields):
            try:
                value = float(field)
            except ValueError:
                raise ProtocolError(self.label, f"channel {ch} reading {field!r} is not a "
                                                "number") from None
            if math.isnan(value) or abs(value) >= OVERLOAD * 0.99:
                bad.append(f"channel {ch} read {field.strip()}")
            by_channel[ch] = value
        if bad:
            raise ReadingError(self.label, "overload or not-a-number reading: " + ", ".join(bad))
        return np.array([by_channel[c] for c in chans], dtype=float)

    def safe_state(self) -> None:
        """Abort any scan and open every relay of every card. Idempotent."""
        with self.transport.lock:
            try:
                self.transport.write(self.ABORT)
            finally:
                self.transport.write(self.OPEN.format(channels=scan_list(self.channels)))

    def _check_channels(self, channels: Sequence[int]) -> list[int]:
        chans = [v.integer(self.label, "channel", c) for c in channels]
        if not chans:
            raise LimitError(self.label, "no channels given; nothing was sent")
        valid = set(self.channels)
        wrong = [c for c in chans if c not in valid]
        if wrong:
            cards = ", ".join(f"slot {s} {c.model} has {100 * s + 1}-{100 * s + c.channels}"
                              for s, c in self.cards.items())
            raise LimitError(self.label, f"channels {wrong} are not on the installed cards "
                                         f"({cards}); nothing was sent")
        if len(set(chans)) != len(chans):
            raise LimitError(self.label, f"channels {chans} list a channel twice; nothing was sent")
        return chans
