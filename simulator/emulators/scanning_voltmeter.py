"""Emulated Keysight (Agilent) 34970A data acquisition unit with multiplexer modules, after the
34970A user's guide (chapter 5, remote interface reference).

State as the instrument keeps it: per channel the function (DC or AC volts, 2- or 4-wire ohms),
range, resolution, integration time, input impedance mode (``INPut:IMPedance:AUTO``) and
auto-zero; the scan list; which relays are closed; the trigger system (source IMMediate, BUS or
TIMer with its interval, and a sweep count); the reading memory (50,000 readings with time
stamps and channel numbers, read with ``FETCh?``, ``DATA:REMove?``, ``DATA:LAST?``); the
reading format; the monitor channel; the status system and the error queue.

A sweep reads the channels in ascending order whatever order the list was written in (as the
34970A does), asking the backend for the volts of the whole list at once, with each channel's
input impedance (10 MOhm, or 10 GOhm on the 0.1, 1 and 10 V ranges with INP:IMP:AUTO ON; a
backend that models the meter's loading uses it). A timed scan (``TRIG:SOUR TIM``) takes its
sweeps at INIT and every ``TRIG:TIM`` seconds after, in real time: sweeps fall due as the clock
passes them, whether or not the host asks. A reading beyond 120 % of the channel's range (or
beyond 300 V on autorange) is the overload value +/-9.9E+37; a NaN from the backend is SCPI's
not-a-number 9.91E+37. Ohms functions read the backend's ``read_resistances`` if it has one,
otherwise +9.9E+37 (an open input).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping

from simulator.emulators import scpi
from simulator.emulators.scpi import INFINITY, ScpiDevice, ScpiError, Settings, none, one, query
from simulator.instrument_backend import InstrumentBackend

OVERLOAD = 9.9e37
NAN = 9.91e37
RANGES = (0.1, 1.0, 10.0, 100.0, 300.0)
OHM_RANGES = (100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8)
NPLCS = (0.02, 0.2, 1.0, 2.0, 10.0, 20.0, 100.0, 200.0)
CARD_CHANNELS = {"34901A": 20, "34902A": 16, "34908A": 40}
MEMORY = 50_000
NO_SCAN_LIST = (-221, "Settings conflict")  # READ? with an empty scan list
NOT_ENOUGH_DATA = (-222, "Data out of range")
INPUT_OHMS, HIGH_INPUT_OHMS = 10e6, 10e9  # 10 MOhm; ">10 GOhm" modelled as 10 GOhm
FUNCTIONS = {"VOLT:DC": "VDC", "VOLT:AC": "VAC", "RES": "OHM", "FRES": "OHM"}


class Keysight34970AEmulator(ScpiDevice):
    """``cards`` maps slot (1-3) to module model, default {1: '34901A'}."""

    NUMBER = "{:+.8E}"

    def __init__(self, backend: InstrumentBackend, *, cards: Mapping[int, str] | None = None,
                 serial: str = "MY41012345", **kwargs):
        super().__init__(**kwargs)
        self.backend = backend
        self.serial = serial
        self.cards = {1: "34901A"} if cards is None else dict(cards)
        self.channels = tuple(100 * slot + k for slot, model in sorted(self.cards.items())
                              for k in range(1, CARD_CHANNELS[model] + 1))
        self.settings = Settings(self)
        self._reset_state()
        c, s = self.command, self.settings
        for function, long in (("VOLT:DC", "VOLTage[:DC]"), ("VOLT:AC", "VOLTage:AC"),
                               ("RES", "RESistance"), ("FRES", "FRESistance")):
            c(f":CONFigure:{long}", set=lambda p, f=function: self._configure(p, f))
            c(f":MEASure:{long}", query=lambda p, f=function: self._measure(p, f))
            c(f"[:SENSe]:{long}:NPLCycles", set=lambda p, f=function: self._set_per_channel(p, "nplc", f),
              query=lambda p: self._get_per_channel(p, "nplc"))
            c(f"[:SENSe]:{long}:RANGe", set=lambda p, f=function: self._set_range(p, f),
              query=lambda p: self._get_per_channel(p, "range"))
            c(f"[:SENSe]:{long}:RANGe:AUTO", set=lambda p: self._set_flag(p, "auto_range"),
              query=lambda p: self._get_flag(p, "auto_range"))
            c(f"[:SENSe]:{long}:RESolution", set=lambda p, f=function: self._set_per_channel(p, "resolution", f),
              query=lambda p: self._get_per_channel(p, "resolution"))
        c(":CONFigure", query=self._get_configuration)
        c("[:SENSe]:FUNCtion", set=self._set_function, query=self._get_function)
        c("[:SENSe]:ZERO:AUTO", set=lambda p: self._set_flag(p, "zero_auto"),
          query=lambda p: self._get_flag(p, "zero_auto"))
        c(":INPut:IMPedance:AUTO", set=lambda p: self._set_flag(p, "impedance_auto"),
          query=lambda p: self._get_flag(p, "impedance_auto"))
        c(":ROUTe:SCAN", set=self._set_scan, query=self._get_scan)
        c(":ROUTe:SCAN:SIZE", query=query(lambda: f"{len(self.scan):+d}"))
        c(":ROUTe:OPEN", set=self._open, query=lambda p: self._relays(p, closed=False))
        c(":ROUTe:CLOSe", set=self._close, query=lambda p: self._relays(p, closed=True))
        c(":ROUTe:MONitor", set=self._set_monitor, query=self._get_monitor)
        c(":ROUTe:MONitor:DATA", query=self._monitor_data)
        s.boolean(":ROUTe:MONitor:STATe", "monitor", False)
        c(":READ", query=self._read_query)
        c(":INITiate[:IMMediate]", set=self._initiate)
        c(":FETCh", query=self._fetch)
        c(":ABORt", set=self._abort)
        s.choice(":TRIGger:SOURce", "trigger_source",
                 ("BUS", "IMMediate", "EXTernal", "ALARm1", "ALARm2", "ALARm3", "ALARm4", "TIMer"), "IMM")
        s.number(":TRIGger:TIMer", "trigger_timer", 0.0, 359999.0, 10.0)
        s.defaults["trigger_count"] = s.values["trigger_count"] = 1
        c(":TRIGger:COUNt", set=self._set_count,
          query=lambda p: self.number(scpi.limit_query(p, self.settings["trigger_count"], 1, 50000, 1)))
        c(":DATA:POINts", query=self._points)
        c(":DATA:REMove", query=self._remove)
        c(":DATA:LAST", query=self._last)
        for key in ("CHANnel", "TIME", "UNIT", "ALARm"):
            s.boolean(f":FORMat:READing:{key}", f"format_{key[:4].lower()}", False)
        s.choice(":FORMat:READing:TIME:TYPE", "time_type", ("ABSolute", "RELative"), "REL")
        s.choice(":FORMat:BORDer", "border", ("NORMal", "SWAPped"), "NORM")
        c(":SYSTem:CTYPe", query=self._card_type)
        c(":SYSTem:DATE", query=query(lambda: time.strftime("%Y,%m,%d")))
        c(":SYSTem:TIME", query=query(lambda: time.strftime("%H,%M,%S.000")))
        s.action(":SYSTem:BEEPer", 0)
        s.boolean(":DISPlay[:STATe]", "display", True)

    def identity(self) -> str:
        return f"Agilent Technologies,34970A,{self.serial},13-2-2"

    def format_error(self, code: int, message: str) -> str:
        return f'{code:+d},"{message}"'

    def _reset_state(self) -> None:
        channel = {"function": None, "range": None, "auto_range": True, "nplc": 1.0,
                   "resolution": None, "impedance_auto": False, "zero_auto": True}
        self.config = {ch: dict(channel) for ch in self.channels}
        self.scan: list[int] = []
        self.closed: set[int] = set()
        self.monitor_channel: int | None = None
        self.memory: deque = deque(maxlen=MEMORY)
        self._sweeps: tuple[float, int, int] | None = None  # (start, done, total) while scanning
        self.settings.reset()

    def reset(self) -> None:
        self._reset_state()

    def is_safe(self) -> bool:
        """No scan running and every relay open."""
        return self._sweeps is None and not self.closed

    @property
    def scanning(self) -> bool:
        return self._sweeps is not None

    def tick(self, now: float) -> None:
        with self.lock:
            self._advance(now)

    # -- channels and configuration ---------------------------------------------------------
    def _channels(self, param: str) -> list[int]:
        channels = scpi.channel_list(param, set(self.channels))
        if any(ch not in self.config for ch in channels):
            raise ScpiError(scpi.ILLEGAL_PARAMETER)
        return channels

    def _split(self, params: list[str], most: int) -> tuple[list[str], list[int] | None]:
        """(leading parameters, channel list) of ``[a[,b],](@list)``."""
        if params and params[-1].strip().startswith("(@"):
            head, channels = params[:-1], self._channels(params[-1])
        else:
            head, channels = params, None
        if len(head) > most:
            raise ScpiError(scpi.PARAMETER_NOT_ALLOWED)
        return head, channels

    def _range_of(self, word: str, function: str) -> float | None:
        word = word.strip().upper()
        if word in ("AUTO", "DEF", "DEFAULT"):
            return None
        ranges = OHM_RANGES if function in ("RES", "FRES") else RANGES
        value = scpi.number(word, 0.0, ranges[-1] * 1.2)
        return next((r for r in ranges if value <= r * 1.2), ranges[-1])

    def _configure(self, params: list[str], function: str) -> None:
        head, channels = self._split(params, 2)
        if channels is None:
            raise ScpiError(scpi.MISSING_PARAMETER)
        rng = self._range_of(head[0], function) if head else None
        if len(head) == 2 and head[1].strip().upper() not in ("DEF", "DEFAULT", "MIN", "MINIMUM",
                                                               "MAX", "MAXIMUM"):
            scpi.number(head[1], 0.0, 1.0)
        for ch in channels:
            self.config[ch].update(function=function, range=rng, auto_range=rng is None, nplc=1.0,
                                  impedance_auto=False)
        # CONFigure redefines the scan list and turns the reading format's extras off.
        self.scan = sorted(set(channels))
        for key in ("format_chan", "format_time", "format_unit", "format_alar"):
            self.settings.values[key] = False

    def _measure(self, params: list[str], function: str) -> str:
        self._configure(params, function)
        self.memory.clear()
        start = self.clock()
        return ",".join(self._format(r) for r in self._sweep(start, 0.0))

    def _get_configuration(self, params: list[str]) -> str:
        _, channels = self._split(params, 0)
        texts = []
        for ch in channels or self.scan:
            cfg = self.config[ch]
            if cfg["function"] is None:
                texts.append('"NONE"')
                continue
            rng = cfg["range"] or (OHM_RANGES if "RES" in cfg["function"] else RANGES)[-1]
            texts.append(f'"{cfg["function"].split(":")[0]} {self.number(rng)},{self.number(3e-6 * rng)}"')
        return ",".join(texts)

    def _set_per_channel(self, params: list[str], key: str, function: str) -> None:
        head, channels = self._split(params, 1)
        if not head:
            raise ScpiError(scpi.MISSING_PARAMETER)
        if key == "nplc":
            value = scpi.number(head[0], 0.02, 200.0, default=1.0)
            value = min(NPLCS, key=lambda n: abs(math.log(n / value)))
        else:
            value = scpi.number(head[0], 0.0, 1.0)
        for ch in channels or self.scan:
            self.config[ch][key] = value

    def _get_per_channel(self, params: list[str], key: str) -> str:
        _, channels = self._split(params, 1)
        values = []
        for ch in channels or self.scan:
            value = self.config[ch][key]
            if key == "range" and value is None:
                value = (OHM_RANGES if "RES" in (self.config[ch]["function"] or "") else RANGES)[-1]
            values.append(self.number(value if value is not None else 3e-6))
        return ",".join(values)

    def _set_range(self, params: list[str], function: str) -> None:
        head, channels = self._split(params, 1)
        if not head:
            raise ScpiError(scpi.MISSING_PARAMETER)
        rng = self._range_of(head[0], function)
        for ch in channels or self.scan:
            self.config[ch].update(range=rng, auto_range=rng is None)

    def _set_flag(self, params: list[str], key: str) -> None:
        head, channels = self._split(params, 1)
        if not head:
            raise ScpiError(scpi.MISSING_PARAMETER)
        word = head[0].strip().upper()
        value = True if word == "ONCE" else scpi.boolean(word)
        for ch in channels or self.scan:
            self.config[ch][key] = value
            if key == "auto_range" and value:
                self.config[ch]["range"] = None

    def _get_flag(self, params: list[str], key: str) -> str:
        _, channels = self._split(params, 0)
        return ",".join("1" if self.config[ch][key] else "0" for ch in channels or self.scan)

    def _set_function(self, params: list[str]) -> None:
        head, channels = self._split(params, 1)
        if not head:
            raise ScpiError(scpi.MISSING_PARAMETER)
        function = scpi.choice(scpi.string(head[0]), "VOLTage", "VOLTage:DC", "VOLTage:AC",
                               "RESistance", "FRESistance")
        function = {"VOLT": "VOLT:DC"}.get(function, function)
        for ch in channels or self.scan:
            self.config[ch]["function"] = function

    def _get_function(self, params: list[str]) -> str:
        _, channels = self._split(params, 0)
        return ",".join(f'"{self.config[ch]["function"] or "NONE"}"' for ch in channels or self.scan)

    def _set_scan(self, params: list[str]) -> None:
        channels = self._channels(one(params))
        if any(self.config[ch]["function"] is None for ch in channels):
            raise ScpiError(scpi.SETTINGS_CONFLICT)  # a channel with no function cannot scan
        self.scan = sorted(set(channels))

    def _get_scan(self, params: list[str]) -> str:
        none(params)
        body = f"(@{','.join(str(ch) for ch in self.scan)})"
        return f"#{len(str(len(body)))}{len(body)}{body}"  # a SCPI definite-length block

    def _open(self, params: list[str]) -> None:
        self.closed -= set(self._channels(one(params)))

    def _close(self, params: list[str]) -> None:
        # A multiplexer bank connects one channel at a time to the DMM: closing one opens the
        # others of its card.
        for ch in self._channels(one(params)):
            self.closed = {c for c in self.closed if c // 100 != ch // 100} | {ch}

    def _relays(self, params: list[str], closed: bool) -> str:
        return ",".join("1" if (ch in self.closed) == closed else "0"
                        for ch in self._channels(one(params)))

    def _set_monitor(self, params: list[str]) -> None:
        channels = self._channels(one(params))
        if len(channels) != 1:
            raise ScpiError(scpi.ILLEGAL_PARAMETER)
        self.monitor_channel = channels[0]

    def _get_monitor(self, params: list[str]) -> str:
        none(params)
        body = f"(@{self.monitor_channel or ''})"
        return f"#{len(str(len(body)))}{len(body)}{body}"

    def _monitor_data(self, params: list[str]) -> str:
        none(params)
        ch = self.monitor_channel
        if ch is None or not self.settings["monitor"] or self.config[ch]["function"] is None:
            raise ScpiError(scpi.SETTINGS_CONFLICT)
        return self._value(ch, self._read([ch])[0])

    def _card_type(self, params: list[str]) -> str:
        slot = int(scpi.number(one(params), 100, 300)) // 100
        model = self.cards.get(slot)
        return f"Agilent Technologies,{model},0,1.0" if model else "Agilent Technologies,0,0,0"

    # -- scanning -----------------------------------------------------------------------------
    def _set_count(self, params: list[str]) -> None:
        self.settings.values["trigger_count"] = scpi.number(one(params), 1, INFINITY, default=1)

    def _initiate(self, params: list[str]) -> None:
        none(params)
        if not self.scan:
            raise ScpiError(NO_SCAN_LIST)
        self.memory.clear()  # a new scan clears the reading memory
        self.closed.clear()  # the DMM opens whatever was closed before a scan
        count = self.settings["trigger_count"]
        total = math.inf if count >= INFINITY else int(count)
        timed = self.settings["trigger_source"] == "TIM" and self.settings["trigger_timer"] > 0
        if total == math.inf and not timed and self.settings["trigger_source"] in ("IMM", "TIM"):
            raise ScpiError(scpi.SETTINGS_CONFLICT)  # an endless immediate scan: not emulated
        self._sweeps = (self.clock(), 0, total)
        self._advance(self.clock())

    def _advance(self, now: float) -> None:
        """Take every sweep that has fallen due by ``now``."""
        if self._sweeps is None:
            return
        start, done, total = self._sweeps
        source = self.settings["trigger_source"]
        if source == "IMM":
            due = total
        elif source == "TIM":
            interval = self.settings["trigger_timer"]
            due = total if interval == 0 else min(total, math.floor((now - start) / interval) + 1)
        else:
            due = done  # BUS waits for *TRG; EXTernal and ALARm triggers never arrive here
        while done < due:
            offset = done * (self.settings["trigger_timer"] if source == "TIM" else 0.0)
            self.memory.extend(self._sweep(start, offset))
            done += 1
        self._sweeps = None if done >= total else (start, done, total)

    def trigger(self) -> None:
        if self._sweeps is not None and self.settings["trigger_source"] == "BUS":
            start, done, total = self._sweeps
            self.memory.extend(self._sweep(start, self.clock() - start))
            self._sweeps = None if done + 1 >= total else (start, done + 1, total)

    def _sweep(self, start: float, offset: float) -> list[tuple]:
        volts = self._read(self.scan)
        stamp = time.time() - (self.clock() - start) + offset
        return [(ch, v, offset, stamp) for ch, v in zip(self.scan, volts)]

    def _read(self, channels: list[int]) -> list[float]:
        functions = {self.config[ch]["function"] for ch in channels}
        if functions & {"RES", "FRES"}:
            reader = getattr(self.backend, "read_resistances", None)
            ohms = reader(channels) if reader else [math.inf] * len(channels)
        volts = self.backend.read_channels(list(channels), self._input_ohms(channels))
        if len(volts) != len(channels):
            raise RuntimeError(f"backend returned {len(volts)} volts for {len(channels)} channels")
        return [float(ohms[i]) if self.config[ch]["function"] in ("RES", "FRES") else float(volts[i])
                for i, ch in enumerate(channels)]

    def _input_ohms(self, channels: list[int]) -> list[float]:
        """Each channel's input impedance (user's guide, INPut:IMPedance:AUTO): 10 MOhm on every
        range by default; with AUTO ON, >10 GOhm on the 0.1, 1 and 10 V ranges (autorange is
        taken to settle on one of them)."""
        found = []
        for ch in channels:
            cfg = self.config[ch]
            low_range = cfg["range"] is None or cfg["range"] <= 10.0
            found.append(HIGH_INPUT_OHMS if cfg["impedance_auto"] and low_range else INPUT_OHMS)
        return found

    def _wait_for_scan(self) -> None:
        """FETCh? and READ? wait for the scan to finish, as the instrument does."""
        self._advance(self.clock())
        if self._sweeps is None:
            return
        start, _, total = self._sweeps
        if total == math.inf or self.settings["trigger_source"] != "TIM":
            raise ScpiError(scpi.SETTINGS_CONFLICT)  # would wait forever
        end = start + (total - 1) * self.settings["trigger_timer"]
        while self._sweeps is not None:
            time.sleep(max(0.0, min(end - self.clock(), 0.05)) or 0.001)
            self._advance(self.clock())

    def _fetch(self, params: list[str]) -> str:
        none(params)
        self._wait_for_scan()
        if not self.memory:
            raise ScpiError(NO_SCAN_LIST)
        return ",".join(self._format(r) for r in self.memory)

    def _read_query(self, params: list[str]) -> str:
        self._initiate(params)
        return self._fetch([])

    def _abort(self, params: list[str]) -> None:
        none(params)
        self._sweeps = None

    def _points(self, params: list[str]) -> str:
        none(params)
        self._advance(self.clock())
        return f"{len(self.memory):+d}"

    def _remove(self, params: list[str]) -> str:
        self._advance(self.clock())
        count = int(scpi.number(one(params), 1, MEMORY))
        if count > len(self.memory):
            raise ScpiError(NOT_ENOUGH_DATA)
        return ",".join(self._format(self.memory.popleft()) for _ in range(count))

    def _last(self, params: list[str]) -> str:
        self._advance(self.clock())
        count = int(scpi.number(params[0], 1, MEMORY)) if params else 1
        if not self.memory:
            return f"{self.number(NAN)}"
        return ",".join(self._format(r) for r in list(self.memory)[-count:])

    # -- reading format ----------------------------------------------------------------------
    def _value(self, channel: int, value: float) -> str:
        cfg = self.config[channel]
        if math.isnan(value):
            return self.number(NAN)
        ranges = OHM_RANGES if cfg["function"] in ("RES", "FRES") else RANGES
        limit = ranges[-1] * 1.2 if cfg["range"] is None else cfg["range"] * 1.2
        if not math.isfinite(value) or abs(value) > limit:
            return self.number(math.copysign(OVERLOAD, value))
        return self.number(value)

    def _format(self, record: tuple) -> str:
        channel, value, offset, stamp = record
        fields = [self._value(channel, value)]
        if self.settings["format_unit"]:
            fields[0] += f" {FUNCTIONS[self.config[channel]['function'] or 'VOLT:DC']}"
        if self.settings["format_time"]:
            if self.settings["time_type"] == "ABS":
                t = time.localtime(stamp)
                fields.append(time.strftime("%Y,%m,%d,%H,%M,", t) + f"{t.tm_sec + stamp % 1:06.3f}")
            else:
                fields.append(f"{offset:013.3f}")
        if self.settings["format_chan"]:
            fields.append(str(channel))
        if self.settings["format_alar"]:
            fields.append("0")
        return ",".join(fields)
