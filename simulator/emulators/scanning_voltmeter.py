"""Emulated Keysight 34970A data acquisition unit with 34901A multiplexer cards.

State as the instrument keeps it: the function, range and integration time of every channel,
the scan list, which relays are closed, the error queue. A scan reads the channels in ascending
order whatever order the list was written in (as the 34970A does), asking the backend for the
volts of the whole list at once. A reading beyond 120 % of the channel's range (or beyond
300 V on autorange) is returned as the overload value +/-9.9E+37, a NaN from the backend as
SCPI's not-a-number 9.91E+37.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from simulator.emulators import scpi
from simulator.emulators.scpi import ScpiDevice, ScpiError
from simulator.instrument_backend import InstrumentBackend

OVERLOAD = 9.9e37
NAN = 9.91e37
RANGES = (0.1, 1.0, 10.0, 100.0, 300.0)
NPLCS = (0.02, 0.2, 1.0, 2.0, 10.0, 20.0, 100.0, 200.0)
CARD_CHANNELS = {"34901A": 20, "34902A": 16, "34908A": 40}
NO_SCAN_LIST = (-221, "Settings conflict")  # READ? with an empty scan list


class Keysight34970AEmulator(ScpiDevice):
    """``cards`` maps slot (1-3) to module model, default {1: '34901A'}."""

    def __init__(self, backend: InstrumentBackend, *, cards: Mapping[int, str] | None = None,
                 serial: str = "MY41012345", **kwargs):
        super().__init__(**kwargs)
        self.backend = backend
        self.serial = serial
        cards = {1: "34901A"} if cards is None else dict(cards)
        self.channels = tuple(100 * slot + k for slot, model in sorted(cards.items())
                              for k in range(1, CARD_CHANNELS[model] + 1))
        self._reset_state()
        c = self.command
        c(":CONFigure:VOLTage[:DC]", set=self._configure)
        c("[:SENSe]:VOLTage[:DC]:NPLCycles", set=self._set_nplc, query=self._get_nplc)
        c("[:SENSe]:VOLTage[:DC]:RANGe", set=self._set_range, query=self._get_range)
        c(":INPut:IMPedance:AUTO", set=self._set_impedance_auto, query=self._get_impedance_auto)
        c(":ROUTe:SCAN", set=self._set_scan)
        c(":ROUTe:SCAN:SIZE", query=lambda p: str(len(self.scan)))
        c(":ROUTe:OPEN", set=self._open, query=lambda p: self._relays(p, closed=False))
        c(":ROUTe:CLOSe", set=self._close, query=lambda p: self._relays(p, closed=True))
        c(":READ", query=self._read_query)
        c(":INITiate[:IMMediate]", set=self._initiate)
        c(":FETCh", query=self._fetch)
        c(":ABORt", set=self._abort)

    def identity(self) -> str:
        return f"Agilent Technologies,34970A,{self.serial},13-2-2"

    def format_error(self, code: int, message: str) -> str:
        return f'{code:+d},"{message}"'

    def _reset_state(self) -> None:
        self.function: dict[int, str | None] = {ch: None for ch in self.channels}
        self.range: dict[int, float | None] = {ch: None for ch in self.channels}  # None: AUTO
        self.nplc: dict[int, float] = {ch: 1.0 for ch in self.channels}
        # INPut:IMPedance:AUTO: >10 GOhm on the 0.1, 1 and 10 V ranges when on, 10 MOhm when off
        # (the *RST and CONFigure setting).
        self.impedance_auto: dict[int, bool] = {ch: False for ch in self.channels}
        self.scan: list[int] = []
        self.closed: set[int] = set()
        self.scanning = False
        self._last: list[float] | None = None

    def reset(self) -> None:
        self._reset_state()

    def is_safe(self) -> bool:
        """No scan running and every relay open."""
        return not self.scanning and not self.closed

    # -- commands ---------------------------------------------------------------------------
    def _channels(self, param: str) -> list[int]:
        channels = scpi.channel_list(param)
        if any(ch not in self.function for ch in channels):
            raise ScpiError(scpi.ILLEGAL_PARAMETER)
        return channels

    def _configure(self, params: list[str]) -> None:
        if not params:
            raise ScpiError(scpi.MISSING_PARAMETER)
        if len(params) > 3:
            raise ScpiError(scpi.PARAMETER_NOT_ALLOWED)
        channels = self._channels(params[-1])
        rng = None
        if len(params) >= 2:
            word = params[0].strip().upper()
            if word not in ("AUTO", "DEF", "DEFAULT"):
                value = scpi.number(word, 0.0, 300.0)
                rng = next((r for r in RANGES if value <= r * 1.2), 300.0)
        if len(params) == 3:
            resolution = params[1].strip().upper()
            if resolution not in ("DEF", "DEFAULT", "MIN", "MINIMUM", "MAX", "MAXIMUM"):
                scpi.number(resolution, 0.0, 1.0)
        for ch in channels:
            self.function[ch], self.range[ch] = "VOLT:DC", rng
            self.impedance_auto[ch] = False
        # CONFigure also redefines the scan list (34970A programmer's reference).
        self.scan = sorted(set(channels))

    def _set_nplc(self, params: list[str]) -> None:
        if len(params) != 2:
            raise ScpiError(scpi.MISSING_PARAMETER if len(params) < 2 else
                            scpi.PARAMETER_NOT_ALLOWED)
        value = scpi.number(params[0], 0.02, 200.0)
        nplc = min(NPLCS, key=lambda n: abs(math.log(n / value)))
        for ch in self._channels(params[1]):
            self.nplc[ch] = nplc

    def _get_nplc(self, params: list[str]) -> str:
        if len(params) != 1:
            raise ScpiError(scpi.MISSING_PARAMETER)
        return ",".join(f"{self.nplc[ch]:+.8E}" for ch in self._channels(params[0]))

    def _set_impedance_auto(self, params: list[str]) -> None:
        if len(params) != 2:
            raise ScpiError(scpi.MISSING_PARAMETER if len(params) < 2 else
                            scpi.PARAMETER_NOT_ALLOWED)
        state = scpi.boolean(params[0])
        for ch in self._channels(params[1]):
            self.impedance_auto[ch] = state

    def _get_impedance_auto(self, params: list[str]) -> str:
        if len(params) != 1:
            raise ScpiError(scpi.MISSING_PARAMETER)
        return ",".join("1" if self.impedance_auto[ch] else "0" for ch in self._channels(params[0]))

    def _set_range(self, params: list[str]) -> None:
        if len(params) != 2:
            raise ScpiError(scpi.MISSING_PARAMETER)
        value = scpi.number(params[0], 0.0, 300.0)
        rng = next((r for r in RANGES if value <= r * 1.2), 300.0)
        for ch in self._channels(params[1]):
            self.range[ch] = rng

    def _get_range(self, params: list[str]) -> str:
        if len(params) != 1:
            raise ScpiError(scpi.MISSING_PARAMETER)
        return ",".join(f"{(self.range[ch] or 300.0):+.8E}" for ch in self._channels(params[0]))

    def _set_scan(self, params: list[str]) -> None:
        if len(params) != 1:
            raise ScpiError(scpi.MISSING_PARAMETER)
        channels = self._channels(params[0])
        if any(self.function[ch] is None for ch in channels):
            raise ScpiError(scpi.SETTINGS_CONFLICT)  # a channel with no function cannot scan
        self.scan = sorted(set(channels))

    def _open(self, params: list[str]) -> None:
        if len(params) != 1:
            raise ScpiError(scpi.MISSING_PARAMETER)
        self.closed -= set(self._channels(params[0]))

    def _close(self, params: list[str]) -> None:
        if len(params) != 1:
            raise ScpiError(scpi.MISSING_PARAMETER)
        channels = self._channels(params[0])
        # A multiplexer bank connects one channel at a time to the DMM: closing one opens the
        # others of its card.
        for ch in channels:
            self.closed = {c for c in self.closed if c // 100 != ch // 100} | {ch}

    def _relays(self, params: list[str], closed: bool) -> str:
        if len(params) != 1:
            raise ScpiError(scpi.MISSING_PARAMETER)
        return ",".join("1" if (ch in self.closed) == closed else "0"
                        for ch in self._channels(params[0]))

    def _initiate(self, params: list[str]) -> None:
        if params:
            raise ScpiError(scpi.PARAMETER_NOT_ALLOWED)
        if not self.scan:
            raise ScpiError(NO_SCAN_LIST)
        self.scanning = True
        self.closed.clear()  # the DMM opens whatever was closed before a scan
        volts = self.backend.read_channels(list(self.scan))
        if len(volts) != len(self.scan):
            raise RuntimeError(f"backend returned {len(volts)} volts for {len(self.scan)} channels")
        self._last = [float(v) for v in volts]
        # A finished scan leaves every relay open and the instrument idle.
        self.scanning = False

    def _fetch(self, params: list[str]) -> str:
        if params:
            raise ScpiError(scpi.PARAMETER_NOT_ALLOWED)
        if self._last is None:
            raise ScpiError(NO_SCAN_LIST)
        return ",".join(self._format(ch, v) for ch, v in zip(self.scan, self._last))

    def _read_query(self, params: list[str]) -> str:
        self._initiate(params)
        return self._fetch([])

    def _abort(self, params: list[str]) -> None:
        if params:
            raise ScpiError(scpi.PARAMETER_NOT_ALLOWED)
        self.scanning = False

    def _format(self, channel: int, volts: float) -> str:
        if math.isnan(volts):
            return f"{NAN:+.8E}"
        limit = 300.0 if self.range[channel] is None else self.range[channel] * 1.2
        if not math.isfinite(volts) or abs(volts) > limit:
            return f"{math.copysign(OVERLOAD, volts):+.8E}"
        return f"{volts + 0.0:+.8E}"
