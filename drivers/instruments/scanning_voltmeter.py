"""Keysight (Agilent) 34970A data acquisition unit with multiplexer cards, over SCPI scan lists.

One ``READ?`` scans the scan list and returns one reading per channel, comma-separated, in
ascending channel order: the 34970A always scans in ascending slot and channel order whatever
order the list was written in (34970A user's guide, "Scanning"), so the driver sorts the
channels it sends and puts the readings back into the order the caller asked for.

Commands used (34970A user's guide / programmer's reference), declared below:
    *IDN?, *RST, *CLS, SYST:ERR?
    CONF:VOLT:DC <range|AUTO>,DEF,(@<list>)   DC volts on the channels; also sets the scan list
    VOLT:DC:NPLC <n>,(@<list>)                integration time in power-line cycles
    INP:IMP:AUTO ON,(@<list>)                 input resistance > 10 GOhm on the 0.1, 1, 10 V ranges
    ROUT:SCAN (@<list>)                       the channels one READ? scans
    READ?                                      INIT + FETCh?: one scan, readings in channel order
    ROUT:CLOS? (@<list>)                       which relays are closed (1) or open (0)
    ABOR, ROUT:OPEN (@<list>)                  safe state: stop a scan, open every relay

Input resistance: the bench reads resistor voltages as an ideal voltmeter would. The 34970A's DC
input is 10 MOhm unless ``INP:IMP:AUTO ON`` selects > 10 GOhm on the 0.1, 1 and 10 V ranges, and
CONFigure (like *RST) turns that off again; so ``configure`` sends it after CONF. On the 100 V
and 300 V ranges the input stays 10 MOhm (0.1 % of a 10 kOhm resistor's voltage).

Timeout of a scan: READ? answers when the whole scan is done, which takes per channel about two
integrations (autozero is on) of ``nplc`` power-line cycles (at 50 Hz, the slower mains), plus
the relay switching and settling, plus an autorange step on AUTO. ``scan_timeout_s`` is that
time, times a margin of 2, plus the transport timeout; ``read_timeout_s`` may raise it, never
lower it. A 20-channel scan at NPLC 10 thus gets some 22 s, where a fixed 5 s would time out
and shift every later reading (the transport's re-synchronisation catches that, at a cost).

An overload reads +9.90000000E+37 (-9.9E+37 for a negative overload) and a reading that is not a
number 9.91E+37 (SCPI's NaN); both raise ReadingError naming the channels (``.channels``), as
does 'NAN'.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from drivers.instruments import validators as v
from drivers.instruments.declarations import Setting, boolean, done, flags, on_off, text
from drivers.instruments.errors import LimitError, ProtocolError, ReadingError
from drivers.instruments.scpi import Identity, ScpiErrorQueue, parse_identity, scpi_number
from drivers.instruments.transport import Transport

OVERLOAD = 9.9e37
# What one channel of a scan costs besides its integrations (34901A armature relay switching
# and settling) and what an autorange step adds; the slowest mains; the margin of the timeout.
CHANNEL_OVERHEAD_S = 0.02
AUTORANGE_S = 0.02
SLOWEST_MAINS_HZ = 50.0
AUTOZERO_INTEGRATIONS = 2
SCAN_TIMEOUT_MARGIN = 2.0


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
HIGH_IMPEDANCE_RANGES = (0.1, 1.0, 10.0)   # > 10 GOhm with INP:IMP:AUTO ON
NPLCS = (0.02, 0.2, 1.0, 2.0, 10.0, 20.0, 100.0, 200.0)


def _range_text(volt_range) -> str:
    return "AUTO" if volt_range == "AUTO" else scpi_number(volt_range)


def _check_range(driver, volt_range, setting):
    if volt_range == "AUTO":
        return volt_range
    volt_range = v.real(driver.label, setting.what, volt_range, "V")
    if volt_range not in RANGES:
        raise LimitError(driver.label, f"{setting.what} {volt_range:g} V is not one of {RANGES} or "
                                       "'AUTO'; nothing was sent")
    return volt_range


def _check_nplc(driver, nplc, setting):
    nplc = v.real(driver.label, setting.what, nplc, "NPLC")
    if nplc not in NPLCS:
        raise LimitError(driver.label, f"{setting.what} {nplc:g} NPLC is not one of {NPLCS}; "
                                       "nothing was sent")
    return nplc


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
    ERROR_QUERY = "SYST:ERR?"

    volt_range = Setting("DC volts range", set="CONF:VOLT:DC {value},DEF,{channels}",
                         format=_range_text, unit="V", check=_check_range)
    nplc = Setting("integration time", set="VOLT:DC:NPLC {value},{channels}",
                   query="VOLT:DC:NPLC? {channels}", unit="NPLC", check=_check_nplc)
    impedance_auto = Setting("automatic input impedance", set="INP:IMP:AUTO {value},{channels}",
                             query="INP:IMP:AUTO? {channels}", parse=flags, format=on_off,
                             check=boolean)
    scan = Setting("scan list", set="ROUT:SCAN {value}", format=text)
    readings = Setting("scan readings", query="READ?", parse=lambda reply: reply.split(","))
    closed = Setting("closed relays", query="ROUT:CLOS? {channels}", parse=flags)
    opened = Setting("open relays", set="ROUT:OPEN {value}", format=text)
    complete = Setting("operation complete", query="*OPC?", parse=done)
    ABORT = "ABOR"

    def __init__(self, transport: Transport, *, name: str | None = None,
                 cards: Mapping[int, str] | None = None, read_timeout_s: float | None = None):
        """``cards`` maps slot (1, 2, 3) to module model, default {1: '34901A'};
        ``read_timeout_s`` raises the timeout of READ? above the one derived from the scan."""
        self.transport = transport
        self.name = name or transport.name
        cards = {1: "34901A"} if cards is None else dict(cards)
        for slot, model in cards.items():
            if slot not in (1, 2, 3) or model not in CARDS:
                raise LimitError(self.label, f"slot {slot!r} with module {model!r}: slots are 1-3, "
                                             f"modules {sorted(CARDS)}")
        self.cards = {slot: CARDS[model] for slot, model in sorted(cards.items())}
        self.read_timeout_s = read_timeout_s
        self._configured: dict[int, tuple[float | str, float]] = {}  # channel -> (range, nplc)
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
        """Read ``*IDN?`` (its reply becomes the transport's re-synchronisation marker)."""
        reply = self.transport.query("*IDN?")
        identity = parse_identity(self.label, reply)
        if identity.model.strip().upper() not in self.MODELS:
            raise ProtocolError(self.label, f"*IDN? names model {identity.model!r}; this driver "
                                            f"drives {sorted(self.MODELS)}")
        self.transport.set_marker("*IDN?", reply)
        return identity

    def reset(self) -> None:
        with self.transport.lock:
            self.transport.write("*RST")
            self.transport.write("*CLS")
            self._configured, self._scan = {}, None
            self.check_errors()

    def configure(self, channels: Sequence[int], volt_range: float | str = "AUTO",
                  nplc: float = 1.0) -> None:
        """DC volts on ``channels`` with ``volt_range`` (one of RANGES, volts, or 'AUTO') and
        ``nplc`` power-line cycles of integration (one of NPLCS), at high input impedance.
        The scan list becomes ``channels``."""
        chans = self._check_channels(channels)
        volt_range = self.volt_range.checked(volt_range)
        nplc = self.nplc.checked(nplc)
        listed = scan_list(chans)
        with self.transport.lock:
            self.volt_range.write(volt_range, channels=listed)
            self.nplc.write(nplc, channels=listed)
            self.impedance_auto.write(True, channels=listed)
            self._configured.update({ch: (volt_range, nplc) for ch in chans})
            self._scan = tuple(sorted(set(chans)))
            self.check_errors()

    def scan_timeout_s(self, channels: Sequence[int]) -> float:
        """The timeout of one READ? of ``channels`` (see the module docstring)."""
        per_channel = 0.0
        for ch in channels:
            volt_range, nplc = self._configured.get(ch, ("AUTO", max(NPLCS)))
            per_channel += (AUTOZERO_INTEGRATIONS * nplc / SLOWEST_MAINS_HZ + CHANNEL_OVERHEAD_S
                            + (AUTORANGE_S if volt_range == "AUTO" else 0.0))
        derived = self.transport.timeout_s + SCAN_TIMEOUT_MARGIN * per_channel
        return max(derived, self.read_timeout_s or 0.0)

    def measure(self, channels: Sequence[int]) -> np.ndarray:
        """(k,) volts on ``channels`` from one scan, in the order given. Raises ReadingError
        (``.channels``: the bad ones) if any channel is overloaded or not a number."""
        chans = self._check_channels(channels)
        missing = sorted(set(chans) - set(self._configured))
        if missing:
            raise LimitError(self.label, f"channels {missing} are not configured for DC volts; "
                                         "call configure() first; nothing was sent")
        ordered = tuple(sorted(set(chans)))
        with self.transport.lock:
            if ordered != self._scan:
                self.scan.write(scan_list(ordered))
                self._scan = ordered
            fields = self.readings.read(timeout_s=self.scan_timeout_s(ordered))
        if len(fields) != len(ordered):
            raise ProtocolError(self.label, f"READ? returned {len(fields)} readings for "
                                            f"{len(ordered)} channels {list(ordered)}: {fields}")
        by_channel, bad = {}, {}
        for ch, field in zip(ordered, fields):
            try:
                value = float(field)
            except ValueError:
                raise ProtocolError(self.label, f"channel {ch} reading {field!r} is not a "
                                                "number") from None
            if math.isnan(value) or abs(value) >= OVERLOAD * 0.99:
                bad[ch] = field.strip()
            by_channel[ch] = value
        if bad:
            raise ReadingError(self.label, "overload or not-a-number reading: " + ", ".join(
                f"channel {ch} read {field}" for ch, field in bad.items()), channels=sorted(bad))
        return np.array([by_channel[c] for c in chans], dtype=float)

    def closed_relays(self) -> list[int]:
        """The channels whose relay is closed now, asked of the instrument."""
        everything = self.channels
        return [ch for ch, shut in zip(everything, self.closed.read(channels=scan_list(everything)))
                if shut]

    def unsafe(self) -> list[str]:
        """What is not safe now: closed relays, read from the instrument."""
        shut = self.closed_relays()
        return [f"{self.name}: relays {shut} are closed"] if shut else []

    def safe_state(self) -> None:
        """Abort any scan and open every relay of every card, confirmed by ``*OPC?``.
        Idempotent."""
        with self.transport.lock:
            try:
                self.transport.write(self.ABORT)
            finally:
                self.opened.write(scan_list(self.channels))
            self.complete.read()

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
