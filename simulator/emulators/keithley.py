"""Emulated Keithley source-measure units: the 2400 (2400 series SCPI, user manual 2400S-900-01)
and the 2450 (its own SCPI command set, reference manual 2450-901-01). Each keeps the state the
real unit keeps (source function, a level, a limit and a range per function, measurement
functions, ranges and integration time, output and output-off state, trigger counts, buffers,
the IEEE 488.2 status and the error queue), answers the manuals' syntax in short or long form
and any case, and asks the InstrumentBackend for everything physical: ``apply_source`` whenever
what the terminals do changes, ``read_source`` for each measurement.

What the terminals do (``terminal_setting``), from the manuals' output-off states:
- output on: the programmed source, limited by the programmed compliance;
- output off, HIMPedance: the output relay opens (an open circuit);
- output off, NORMal (the *RST state): a voltage source at 0 V whose current limit is a small
  fraction of the present current range (2400: 0.5 %, 2450: 10 % of full scale);
- output off, ZERO: a voltage source at 0 V, current limit the programmed one when sourcing
  volts, the larger of |programmed amps| and that fraction when sourcing current;
- output off, GUARd: a current source at 0 A whose voltage limit is that fraction of the
  present voltage range.
"""

from __future__ import annotations

import math
import statistics
import time

from simulator.emulators import scpi
from simulator.emulators.scpi import ScpiDevice, ScpiError, Settings, action, none, one, query
from simulator.instrument_backend import InstrumentBackend, SourceReading, SourceSetting

NAN = 9.91e37        # SCPI "not a number"
OVERFLOW = 9.9e37    # SCPI overflow
# 2400 error for a measurement requested with the output off (2400 manual, error messages).
OUTPUT_OFF = (803, "Not permitted with OUTPUT off")
OFF_MODES = ("HIMPedance", "NORMal", "ZERO", "GUARd")
SENSE_NAMES = ("VOLTage", "VOLTage:DC", "CURRent", "CURRent:DC", "RESistance")
UNITS = {"VOLT": "Volt DC", "CURR": "Amp DC", "RES": "Ohm"}


class _Range:
    """A measurement or source range: auto or a fixed nominal range from ``ranges``."""

    def __init__(self, ranges: tuple[float, ...], scale: float):
        self.ranges, self.scale = ranges, scale
        self.auto, self.value = True, ranges[-1]

    def select(self, value: float) -> None:
        """The most sensitive range whose full scale holds |value|; auto off."""
        self.value = next((r for r in self.ranges if abs(value) <= r * self.scale * (1 + 1e-9)),
                          self.ranges[-1])
        self.auto = False

    def full_scale(self, needed: float) -> float:
        """Full scale of the range in effect for a quantity of size ``needed`` (auto picks the
        smallest that holds it)."""
        if not self.auto:
            return self.value * self.scale
        return next((r for r in self.ranges if abs(needed) <= r * self.scale * (1 + 1e-9)),
                    self.ranges[-1]) * self.scale


class _KeithleySmu(ScpiDevice):
    """State and physics shared by both models. Subclasses register their command set."""

    MAKER = "KEITHLEY INSTRUMENTS INC."
    MODEL = ""
    FIRMWARE = ""
    MAX_LEVEL = {"VOLT": 210.0, "CURR": 1.05}          # source range, V and A
    LIMIT_RANGE = {"VOLT": (1e-9, 1.05), "CURR": (0.02, 210.0)}  # compliance: A when sourcing V
    DEFAULT_LIMIT = {"VOLT": 1.05e-4, "CURR": 21.0}    # *RST compliance (105 uA, 21 V)
    CURRENT_RANGES: tuple[float, ...] = ()
    VOLTAGE_RANGES: tuple[float, ...] = ()
    RESISTANCE_RANGES = (20.0, 200.0, 2e3, 2e4, 2e5, 2e6, 2e7, 2e8)
    RANGE_SCALE = 1.05       # a range measures up to 105 % of its nominal value
    OFF_FRACTION = 0.005     # of full scale: the limits of the NORMal, ZERO and GUARd off states
    NPLC_RANGE = (0.01, 10.0)

    def __init__(self, name: str, backend: InstrumentBackend, *, serial: str = "4096218",
                 **kwargs):
        super().__init__(**kwargs)
        self.name = name
        self.backend = backend
        self.serial = serial
        self.settings = Settings(self)
        self._reset_state()
        self._apply()

    # -- state ------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self.function = "VOLT"
        self.level = {"VOLT": 0.0, "CURR": 0.0}
        self.limit = dict(self.DEFAULT_LIMIT)
        self.output = False
        self.sense: set[str] = {"CURR"}
        self.off_modes = {"VOLT": "NORM", "CURR": "NORM"}  # :OUTPut:SMODe
        self.source_range = {"VOLT": _Range(self.VOLTAGE_RANGES, self.RANGE_SCALE),
                             "CURR": _Range(self.CURRENT_RANGES, self.RANGE_SCALE)}
        self.sense_range = {"VOLT": _Range(self.VOLTAGE_RANGES, self.RANGE_SCALE),
                            "CURR": _Range(self.CURRENT_RANGES, self.RANGE_SCALE),
                            "RES": _Range(self.RESISTANCE_RANGES, self.RANGE_SCALE)}
        self.nplc = {"VOLT": 1.0, "CURR": 1.0, "RES": 1.0}
        self.reset_time = self.clock()
        self.settings.reset()

    def reset(self) -> None:
        self._reset_state()
        self._apply()

    def identity(self) -> str:
        return f"{self.MAKER},MODEL {self.MODEL},{self.serial},{self.FIRMWARE}"

    @property
    def off_mode(self) -> str:
        return self.off_modes[self.function]

    @property
    def setting(self) -> SourceSetting:
        """What the front panel would show, in the backend's terms."""
        return SourceSetting(self.function, self.level[self.function], self.limit[self.function],
                             self.output)

    def terminal_setting(self) -> SourceSetting:
        """What the terminals do: the setting while the output is on, the output-off state's
        source otherwise (module docstring)."""
        if self.output:
            return self.setting
        mode = self.off_mode
        if mode == "HIMP":
            return SourceSetting(self.function, self.level[self.function],
                                 self.limit[self.function], False)
        amps_fs = self.sense_range["CURR"].full_scale(
            self.limit["VOLT"] if self.function == "VOLT" else self.level["CURR"])
        if mode == "GUAR":
            volts_fs = self.sense_range["VOLT"].full_scale(self.limit["CURR"])
            return SourceSetting("CURR", 0.0, self.OFF_FRACTION * volts_fs, True)
        small = self.OFF_FRACTION * amps_fs
        if mode == "ZERO":
            limit = (self.limit["VOLT"] if self.function == "VOLT"
                     else max(abs(self.level["CURR"]), small))
            return SourceSetting("VOLT", 0.0, limit, True)
        return SourceSetting("VOLT", 0.0, small, True)  # NORMal

    def is_safe(self) -> bool:
        """Output off and the active source level at 0."""
        return not self.output and self.level[self.function] == 0.0

    def _apply(self) -> None:
        self.backend.apply_source(self.name, self.terminal_setting())

    def _read(self) -> SourceReading:
        return self.backend.read_source(self.name)

    # -- shared command bodies -----------------------------------------------------------------
    def _get_function(self, params: list[str]) -> str:
        none(params)
        return self.function

    def _level_setter(self, function: str):
        def set_level(params: list[str]) -> None:
            top = self.MAX_LEVEL[function]
            value = scpi.number(one(params), -top, top, default=0.0)
            rng = self.source_range[function]
            if not rng.auto and abs(value) > rng.full_scale(value) * (1 + 1e-9):
                raise ScpiError(scpi.DATA_OUT_OF_RANGE)  # beyond a fixed source range
            self.level[function] = value
            self._apply()
        return set_level

    def _level_getter(self, function: str):
        def get_level(params: list[str]) -> str:
            top = self.MAX_LEVEL[function]
            return self.number(scpi.limit_query(params, self.level[function], -top, top, 0.0))
        return get_level

    def _limit_setter(self, function: str):
        def set_limit(params: list[str]) -> None:
            lo, hi = self.LIMIT_RANGE[function]
            self.limit[function] = scpi.number(one(params), lo, hi,
                                               default=self.DEFAULT_LIMIT[function])
            self._apply()
        return set_limit

    def _limit_getter(self, function: str):
        def get_limit(params: list[str]) -> str:
            lo, hi = self.LIMIT_RANGE[function]
            return self.number(scpi.limit_query(params, self.limit[function], lo, hi,
                                                self.DEFAULT_LIMIT[function]))
        return get_limit

    def _range_commands(self, prefix: str, ranges: dict[str, _Range], function: str,
                        upper: str = "[:UPPer]") -> None:
        rng = ranges[function]

        def set_range(params):
            word = one(params).strip().upper()
            if word == "AUTO":
                rng.auto = True
            elif word == "UP":
                rng.select(rng.ranges[min(rng.ranges.index(rng.value) + 1, len(rng.ranges) - 1)])
            elif word == "DOWN":
                rng.select(rng.ranges[max(rng.ranges.index(rng.value) - 1, 0)])
            else:
                rng.select(scpi.number(word, -rng.ranges[-1] * rng.scale, rng.ranges[-1] * rng.scale,
                                       default=rng.ranges[-1]))
            self._apply()

        def get_range(params):
            value = rng.value if not rng.auto else rng.full_scale(self._range_hint(function)) / rng.scale
            return self.number(scpi.limit_query(params, self._nominal(value), self._nominal(rng.ranges[0]),
                                                self._nominal(rng.ranges[-1]), self._nominal(rng.ranges[-1])))

        def set_auto(params):
            rng.auto = scpi.boolean(one(params))
            self._apply()
        self.command(f"{prefix}:RANGe{upper}", set=set_range, query=get_range)
        self.command(f"{prefix}:RANGe:AUTO", set=set_auto,
                     query=query(lambda: "1" if rng.auto else "0"))

    def _nominal(self, value: float) -> float:
        return value

    def _range_hint(self, function: str) -> float:
        """What autorange would size a range for: the compliance or the level."""
        if function == self.function:
            return self.level[function]
        return self.limit[self.function] if function in ("VOLT", "CURR") else 2e5

    def _nplc_commands(self, prefix: str, functions: tuple[str, ...]) -> None:
        lo, hi = self.NPLC_RANGE

        def set_nplc(params):
            value = scpi.number(one(params), lo, hi, default=1.0)
            for f in functions:
                self.nplc[f] = value
        self.command(f"{prefix}:NPLCycles", set=set_nplc,
                     query=lambda p: self.number(scpi.limit_query(p, self.nplc[functions[0]], lo, hi, 1.0)))

    def _set_output(self, params: list[str]) -> None:
        self.output = scpi.boolean(one(params))
        self._apply()

    def _get_output(self, params: list[str]) -> str:
        none(params)
        return "1" if self.output else "0"

    def _off_mode_setter(self, functions: tuple[str, ...]):
        def set_mode(params):
            mode = scpi.choice(one(params), *OFF_MODES)
            for function in functions:
                self.off_modes[function] = mode
            self._apply()
        return set_mode

    def _off_mode_getter(self, function: str | None):
        def get_mode(params):
            none(params)
            return self.off_modes[function or self.function]
        return get_mode

    def _sensed(self, reading: SourceReading, quantity: str) -> float:
        """A measured quantity as the range reports it: overflow beyond a fixed range."""
        value = {"VOLT": reading.volts, "CURR": reading.amps}.get(quantity)
        if quantity == "RES":
            value = reading.volts / reading.amps if reading.amps else math.inf
        if value is None or math.isnan(value):
            return NAN
        rng = self.sense_range[quantity]
        if not math.isfinite(value) or (not rng.auto and abs(value) > rng.full_scale(value) * (1 + 1e-9)):
            return math.copysign(OVERFLOW, value)
        return value


class Keithley2400Emulator(_KeithleySmu):
    """Keithley 2400 SourceMeter, 2400 series SCPI."""

    MODEL = "2400"
    FIRMWARE = "C32   Oct  4 2010 14:20:11/A02  /K/M"
    ELEMENTS = ("VOLT", "CURR", "RES", "TIME", "STAT")  # the order :READ? always uses
    CURRENT_RANGES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    VOLTAGE_RANGES = (0.2, 2.0, 20.0, 200.0)
    OFF_FRACTION = 0.005
    STATUS_REGISTERS = ("OPERation", "QUEStionable", "MEASurement")

    def __init__(self, name: str, backend: InstrumentBackend, **kwargs):
        super().__init__(name, backend, **kwargs)
        c, s = self.command, self.settings
        c("[:SOURce[1]]:FUNCtion[:MODE]", set=self._set_function, query=self._get_function)
        for function, long in (("VOLT", "VOLTage"), ("CURR", "CURRent")):
            c(f"[:SOURce[1]]:{long}[:LEVel][:IMMediate][:AMPLitude]",
              set=self._level_setter(function), query=self._level_getter(function))
            self._range_commands(f"[:SOURce[1]]:{long}", self.source_range, function)
            self._range_commands(f"[:SENSe[1]]:{long}[:DC]", self.sense_range, function)
            self._nplc_commands(f"[:SENSe[1]]:{long}[:DC]", ("VOLT", "CURR", "RES"))
            s.choice(f"[:SOURce[1]]:{long}:MODE", f"{function}_mode", ("FIXed", "SWEep", "LIST"), "FIX")
        self._range_commands("[:SENSe[1]]:RESistance", self.sense_range, "RES")
        self._nplc_commands("[:SENSe[1]]:RESistance", ("VOLT", "CURR", "RES"))
        # Compliance: the limit on the measured quantity, set on the *sense* side.
        c("[:SENSe[1]]:CURRent[:DC]:PROTection[:LEVel]",
          set=self._limit_setter("VOLT"), query=self._limit_getter("VOLT"))
        c("[:SENSe[1]]:VOLTage[:DC]:PROTection[:LEVel]",
          set=self._limit_setter("CURR"), query=self._limit_getter("CURR"))
        c("[:SENSe[1]]:CURRent[:DC]:PROTection:TRIPped", query=self._tripped("VOLT"))
        c("[:SENSe[1]]:VOLTage[:DC]:PROTection:TRIPped", query=self._tripped("CURR"))
        c("[:SENSe[1]]:FUNCtion:CONCurrent", set=self._set_concurrent,
          query=query(lambda: "1" if self.concurrent else "0"))
        c("[:SENSe[1]]:FUNCtion[:ON]", set=self._sense_on, query=self._get_sense)
        c("[:SENSe[1]]:FUNCtion:OFF", set=self._sense_off, query=self._get_sense_off)
        c("[:SENSe[1]]:FUNCtion[:ON]:ALL", set=lambda p: self._sense_all(p, True))
        c("[:SENSe[1]]:FUNCtion:OFF:ALL", set=lambda p: self._sense_all(p, False))
        c("[:SENSe[1]]:FUNCtion[:ON]:COUNt", query=query(lambda: str(len(self.sense))))
        c("[:SENSe[1]]:FUNCtion:OFF:COUNt", query=query(lambda: str(3 - len(self.sense))))
        c("[:SENSe[1]]:FUNCtion:STATe", query=self._sense_state)
        c(":FORMat:ELEMents[:SENSe[1]]", set=self._set_elements,
          query=query(lambda: ",".join(self.elements)))
        c(":OUTPut[1][:STATe]", set=self._set_output, query=self._get_output)
        c(":OUTPut[1]:SMODe", set=self._off_mode_setter(("VOLT", "CURR")),
          query=self._off_mode_getter(None))
        c("[:SOURce[1]]:CLEar[:IMMediate]", set=self._clear_source)
        c(":READ", query=self._read_query)
        c(":FETCh", query=self._fetch)
        c(":INITiate[:IMMediate]", set=self._initiate)
        c(":MEASure", query=lambda p: self._measure(p, None))
        c(":CONFigure", query=query(lambda: ",".join(f'"{q}"' for q in self._sense_names())))
        for function, long in (("VOLT", "VOLTage[:DC]"), ("CURR", "CURRent[:DC]"), ("RES", "RESistance")):
            c(f":MEASure:{long}", query=lambda p, f=function: self._measure(p, f))
            c(f":CONFigure:{long}", set=action(lambda f=function: self._configure(f)))
        c(":ABORt", set=lambda p: none(p))
        c(":SYSTem:PRESet", set=action(lambda: self.reset()))
        c(":TRACe:CLEar", set=self._trace_clear)
        c(":TRACe:DATA", query=self._trace_data)
        c(":TRACe:POINts:ACTual", query=query(lambda: str(len(self.trace))))
        s.number(":TRACe:POINts", "trace_points", 1, 2500, 100)
        s.choice(":TRACe:FEED", "trace_feed", ("SENSe[1]", "CALCulate[1]", "CALCulate2"), "SENS1")
        s.choice(":TRACe:FEED:CONTrol", "trace_control", ("NEVer", "NEXT"), "NEV")
        s.boolean("[:SOURce[1]]:CLEar:AUTO", "auto_clear", False)
        s.choice("[:SOURce[1]]:CLEar:AUTO:MODE", "auto_clear_mode", ("ALWays", "TCOunt"), "ALW")
        s.number("[:SOURce[1]]:DELay", "source_delay", 0.0, 999.9999, 0.0)
        s.boolean("[:SOURce[1]]:DELay:AUTO", "source_delay_auto", True)
        s.number(":TRIGger[:SEQuence[1]]:COUNt", "trigger_count", 1, 2500, 1)
        s.number(":TRIGger[:SEQuence[1]]:DELay", "trigger_delay", 0.0, 999.9999, 0.0)
        s.choice(":TRIGger[:SEQuence[1]]:SOURce", "trigger_source", ("IMMediate", "TLINk"), "IMM")
        s.number(":ARM[:SEQuence[1]][:LAYer[1]]:COUNt", "arm_count", 1, 2500, 1)
        s.choice(":ARM[:SEQuence[1]][:LAYer[1]]:SOURce", "arm_source",
                 ("IMMediate", "TIMer", "MANual", "BUS", "TLINk", "NSTest", "PSTest", "BSTest"), "IMM")
        s.number(":ARM[:SEQuence[1]][:LAYer[1]]:TIMer", "arm_timer", 0.001, 99999.99, 0.1)
        c(":TRIGger:CLEar", set=lambda p: none(p))
        s.choice(":SYSTem:AZERo[:STATe]", "autozero", ("ON", "OFF", "ONCE", "1", "0"), "ON")
        s.boolean(":SYSTem:RSENse", "remote_sense", False)
        s.number(":SYSTem:LFRequency", "line_frequency", 50, 60, 60)
        s.boolean(":SYSTem:LFRequency:AUTO", "line_frequency_auto", True)
        s.boolean(":SYSTem:BEEPer:STATe", "beeper", True)
        s.action(":SYSTem:BEEPer[:IMMediate]", 2)
        s.boolean("[:SENSe[1]]:AVERage[:STATe]", "filter", False)
        s.choice("[:SENSe[1]]:AVERage:TCONtrol", "filter_type", ("REPeat", "MOVing"), "REP")
        s.number("[:SENSe[1]]:AVERage:COUNt", "filter_count", 1, 100, 10)
        s.choice("[:SENSe[1]]:RESistance:MODE", "ohms_mode", ("MANual", "AUTO"), "MAN")
        s.choice(":ROUTe:TERMinals", "terminals", ("FRONt", "REAR"), "FRON")
        s.boolean(":DISPlay:ENABle", "display", True)
        s.choice(":FORMat[:DATA]", "data_format", ("ASCii", "REAL", "SREal"), "ASC")

    def _reset_state(self) -> None:
        super()._reset_state()
        self.concurrent = True
        self.elements = list(self.ELEMENTS)
        self.trace: list[str] = []
        self._last: str | None = None

    def _nominal(self, value: float) -> float:
        # The 2400 names its ranges by full scale: 105 uA, 21 V.
        return value * self.RANGE_SCALE

    # -- commands ---------------------------------------------------------------------------
    def _set_function(self, params: list[str]) -> None:
        self.function = scpi.choice(one(params), "VOLTage", "CURRent")
        self._apply()

    def _tripped(self, function: str):
        def tripped(params):
            none(params)
            return "1" if self.output and self.function == function and self._read().in_compliance else "0"
        return tripped

    def _set_concurrent(self, params: list[str]) -> None:
        self.concurrent = scpi.boolean(one(params))
        if not self.concurrent and len(self.sense) > 1:
            # one function at a time: the source's measured counterpart stays
            self.sense = {"CURR" if self.function == "VOLT" else "VOLT"}

    def _functions(self, params: list[str]) -> set[str]:
        if not params:
            raise ScpiError(scpi.MISSING_PARAMETER)
        chosen = set()
        for param in params:
            chosen.add(scpi.choice(scpi.string(param), *SENSE_NAMES)[:4])
        return chosen

    def _sense_on(self, params: list[str]) -> None:
        """FUNCtion:ON adds the listed functions to those measured (concurrent ON); with
        concurrent OFF one function is measured at a time, so the last one listed replaces."""
        chosen = self._functions(params)
        if self.concurrent:
            self.sense |= chosen
        elif len(chosen) > 1:
            raise ScpiError(scpi.SETTINGS_CONFLICT)
        else:
            self.sense = chosen

    def _sense_off(self, params: list[str]) -> None:
        self.sense -= self._functions(params)

    def _sense_all(self, params: list[str], on: bool) -> None:
        none(params)
        if on and not self.concurrent:
            raise ScpiError(scpi.SETTINGS_CONFLICT)
        self.sense = {"VOLT", "CURR", "RES"} if on else set()

    def _sense_names(self) -> list[str]:
        names = {"VOLT": "VOLT:DC", "CURR": "CURR:DC", "RES": "RES"}
        return [names[s] for s in ("VOLT", "CURR", "RES") if s in self.sense]

    def _get_sense(self, params: list[str]) -> str:
        none(params)
        return ",".join(f'"{name}"' for name in self._sense_names())

    def _get_sense_off(self, params: list[str]) -> str:
        none(params)
        names = {"VOLT": "VOLT:DC", "CURR": "CURR:DC", "RES": "RES"}
        return ",".join(f'"{names[s]}"' for s in ("VOLT", "CURR", "RES") if s not in self.sense)

    def _sense_state(self, params: list[str]) -> str:
        chosen = self._functions([one(params)])
        return "1" if chosen <= self.sense else "0"

    def _set_elements(self, params: list[str]) -> None:
        if not params:
            raise ScpiError(scpi.MISSING_PARAMETER)
        chosen = {scpi.choice(p, "VOLTage", "CURRent", "RESistance", "TIME", "STATus")
                  for p in params}
        self.elements = [e for e in self.ELEMENTS if e in chosen]

    def _clear_source(self, params: list[str]) -> None:
        none(params)
        self.output = False
        self._apply()

    def _configure(self, function: str) -> None:
        """:CONFigure:<function> (2400 manual 17-2, 17-3): the function measured, its controls
        at their *RST values (range auto, 1 NPLC, its protection level), trigger and arm counts
        1, trigger delay 0, auto-zero on, and the output turns on."""
        if self.concurrent:
            self.sense.add(function)
        else:
            self.sense = {function}
        self.sense_range[function].auto = True
        self.nplc = dict.fromkeys(self.nplc, 1.0)
        if function == "CURR":
            self.limit["VOLT"] = self.DEFAULT_LIMIT["VOLT"]
        elif function == "VOLT":
            self.limit["CURR"] = self.DEFAULT_LIMIT["CURR"]
        self.settings.values.update(trigger_count=1, arm_count=1, trigger_delay=0.0,
                                    autozero="ON", trigger_source="IMM", arm_source="IMM")
        self.output = True
        self._apply()

    def _measure(self, params: list[str], function: str | None) -> str:
        none(params)
        self._configure(function or next(iter(sorted(self.sense)), "CURR"))
        return self._read_query([])

    def _initiate(self, params: list[str]) -> None:
        none(params)
        self._last = self._take_readings()

    def _fetch(self, params: list[str]) -> str:
        none(params)
        if self._last is None:
            raise ScpiError((-230, "Data corrupt or stale"))
        return self._last

    def _read_query(self, params: list[str]) -> str:
        none(params)
        self._last = self._take_readings()
        return self._last

    def _take_readings(self) -> str:
        """One source-measure cycle per trigger x arm count; with auto output-off the output
        is on only during each cycle."""
        auto = self.settings["auto_clear"]
        if not self.output and not auto:
            raise ScpiError(OUTPUT_OFF)
        count = int(self.settings["trigger_count"]) * int(self.settings["arm_count"])
        readings = []
        for _ in range(count):
            if auto and not self.output:
                self.output = True
                self._apply()
                readings.append(self._one_reading())
                pulse = getattr(self.backend, "pulse", None)
                if pulse is not None:  # the output was on for the source delay and one integration
                    pulse(self.name, self.settings["source_delay"]
                          + self.nplc["CURR"] / self.settings["line_frequency"])
                self.output = False
                self._apply()
            else:
                readings.append(self._one_reading())
        if self.settings["trace_control"] == "NEXT":
            room = int(self.settings["trace_points"]) - len(self.trace)
            self.trace.extend(readings[:max(room, 0)])
            if len(self.trace) >= int(self.settings["trace_points"]):
                self.settings.values["trace_control"] = "NEV"
        return ",".join(readings)

    def _one_reading(self) -> str:
        reading = self._read()
        fields = []
        for element in self.elements:
            if element == "VOLT":
                fields.append(self._value(reading, "VOLT"))
            elif element == "CURR":
                fields.append(self._value(reading, "CURR"))
            elif element == "RES":
                fields.append(self._value(reading, "RES"))
            elif element == "TIME":
                fields.append(self.number(self.clock() - self.reset_time))
            else:
                fields.append(self.number(self._status(reading)))
        return ",".join(fields)

    def _value(self, reading: SourceReading, quantity: str) -> str:
        """A measured quantity if it is a sense function; the programmed level if it is only
        sourced; NaN if neither (2400 manual 17-3: "functions not sourced or measured are
        assigned the NAN value")."""
        if quantity in self.sense:
            return self.number(self._sensed(reading, quantity))
        if quantity == self.function:
            return self.number(self.level[quantity])
        return self.number(NAN)

    def _status(self, reading: SourceReading) -> int:
        word = 1 << 2  # front terminals
        overflow = any(abs(self._sensed(reading, q)) == OVERFLOW for q in self.sense)
        if overflow or not (math.isfinite(reading.volts) and math.isfinite(reading.amps)):
            word |= 1 << 0  # OFLO
        if reading.in_compliance:
            word |= 1 << 3
        if "VOLT" in self.sense:
            word |= 1 << 11
        if "CURR" in self.sense:
            word |= 1 << 12
        word |= 1 << 14 if self.function == "VOLT" else 1 << 15
        return word

    def _trace_clear(self, params: list[str]) -> None:
        none(params)
        self.trace.clear()

    def _trace_data(self, params: list[str]) -> str:
        none(params)
        return ",".join(self.trace)


class _Buffer:
    """A 2450 reading buffer: a capacity and its readings (dicts of buffer elements)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.entries: list[dict] = []

    def add(self, entry: dict) -> None:
        self.entries.append(entry)
        del self.entries[:max(0, len(self.entries) - self.capacity)]


class Keithley2450Emulator(_KeithleySmu):
    """Keithley 2450 Interactive SourceMeter, SCPI command set. ``language`` is the command set
    it powers up with (*LANG: 'SCPI', 'TSP' or 'SCPI2400'); only SCPI is emulated: in the other
    two it answers the common commands (*IDN?, *LANG) and ignores everything else, as a 2450 in
    TSP mode ignores SCPI."""

    MODEL = "2450"
    FIRMWARE = "1.7.12b"
    # READ? buffer elements (2450 reference manual, :READ?), long forms.
    ELEMENTS = ("READing", "SOURce", "SOURSTATus", "STATus", "UNIT", "SOURUNIT", "RELative",
                "SEConds", "FRACtional", "TSTamp", "TIME", "DATE", "FORMatted", "SOURFORMatted")
    STAT_READBACK, STAT_LIMIT, STAT_OUTPUT = 1 << 3, 1 << 5, 1 << 7
    CURRENT_RANGES = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    VOLTAGE_RANGES = (0.02, 0.2, 2.0, 20.0, 200.0)
    OFF_FRACTION = 0.1
    LANGUAGES = ("SCPI", "TSP", "SCPI2400")
    STATUS_REGISTERS = ("OPERation", "QUEStionable")

    def __init__(self, name: str, backend: InstrumentBackend, *, language: str = "SCPI", **kwargs):
        if language not in self.LANGUAGES:
            raise ValueError(f"language {language!r} is not one of {self.LANGUAGES}")
        self.language = self.saved_language = language
        super().__init__(name, backend, **kwargs)
        c, s = self.command, self.settings
        self.common("*LANG", set=self._set_language, query=query(lambda: self.language))
        c(":SOURce[1]:FUNCtion[:MODE]", set=self._set_source_function, query=self._get_function)
        for function, long, limit in (("VOLT", "VOLTage", "ILIMit"), ("CURR", "CURRent", "VLIMit")):
            c(f":SOURce[1]:{long}[:LEVel][:IMMediate][:AMPLitude]",
              set=self._level_setter(function), query=self._level_getter(function))
            c(f":SOURce[1]:{long}:{limit}[:LEVel]",
              set=self._limit_setter(function), query=self._limit_getter(function))
            c(f":SOURce[1]:{long}:{limit}[:LEVel]:TRIPped", query=self._tripped(function))
            self._range_commands(f":SOURce[1]:{long}", self.source_range, function, upper="")
            s.number(f":SOURce[1]:{long}:DELay", f"{function}_source_delay", 0.0, 10e3, 0.0)
            s.boolean(f":SOURce[1]:{long}:DELay:AUTO", f"{function}_source_delay_auto", True)
            s.number(f":SOURce[1]:{long}:DELay:USER[1]", f"{function}_source_user_delay", 0.0, 1e4, 0.0)
            s.boolean(f":SOURce[1]:{long}:READ:BACK", f"{function}_readback", True)
            s.boolean(f":SOURce[1]:{long}:HIGH:CAPacitance", f"{function}_high_c", False)
            c(f":OUTPut[1]:{long}:SMODe", set=self._off_mode_setter((function,)),
              query=self._off_mode_getter(function))
        for function, long in (("VOLT", "VOLTage[:DC]"), ("CURR", "CURRent[:DC]"), ("RES", "RESistance")):
            self._range_commands(f"[:SENSe[1]]:{long}", self.sense_range, function, upper="[:UPPer]")
            self._nplc_commands(f"[:SENSe[1]]:{long}", (function,))
            s.boolean(f"[:SENSe[1]]:{long}:RSENse", f"{function}_remote_sense", False)
            s.boolean(f"[:SENSe[1]]:{long}:AZERo[:STATe]", f"{function}_autozero", True)
            s.number(f"[:SENSe[1]]:{long}:DELay:USER[1]", f"{function}_user_delay", 0.0, 1e4, 0.0)
            c(f":MEASure:{long}", query=lambda p, f=function: self._measure(p, f))
        s.choice("[:SENSe[1]]:RESistance:OCOMpensated", "ohms_offset", ("ON", "OFF", "AUTO", "1", "0"), "AUTO")
        s.number("[:SENSe[1]]:COUNt", "count", 1, 300000, 1)
        c("[:SENSe[1]]:FUNCtion[:ON]", set=self._set_sense, query=self._get_sense)
        c(":OUTPut[1][:STATe]", set=self._set_output, query=self._get_output)
        c(":OUTPut[1]:SMODe", set=self._off_mode_setter(("VOLT", "CURR")),
          query=self._off_mode_getter(None))
        c(":READ", query=self._read_query)
        c(":MEASure", query=lambda p: self._measure(p, None))
        c(":FETCh", query=self._fetch)
        c(":INITiate[:IMMediate]", set=self._initiate)
        c(":ABORt", set=lambda p: none(p))
        c(":TRACe:MAKE", set=self._trace_make)
        c(":TRACe:DELete", set=self._trace_delete)
        c(":TRACe:CLEar", set=self._trace_clear)
        c(":TRACe:POINts", set=self._trace_set_points, query=self._trace_points)
        c(":TRACe:ACTual", query=self._trace_actual)
        c(":TRACe:ACTual:STARt", query=lambda p: (self._buffer(p), "1")[1])
        c(":TRACe:ACTual:END", query=self._trace_actual)
        c(":TRACe:DATA", query=self._trace_data)
        c(":TRACe:TRIGger", set=self._trace_trigger)
        for name, fn in (("AVERage", statistics.fmean), ("MAXimum", max), ("MINimum", min),
                         ("STDDev", lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)):
            c(f":TRACe:STATistics:{name}", query=lambda p, f=fn: self._trace_statistic(p, f))
        c(":STATus:CLEar", set=self._clear_status)
        s.action(":SYSTem:CLEar")
        s.action(":SYSTem:BEEPer[:IMMediate]", 2)
        s.number(":SYSTem:LFRequency", "line_frequency", 50, 60, 60)
        s.choice(":ROUTe:TERMinals", "terminals", ("FRONt", "REAR"), "FRON")
        s.choice(":SYSTem:AZERo[:STATe]", "autozero", ("ON", "OFF", "1", "0"), "ON")
        s.action("[:SENSe[1]]:AZERo:ONCE")

    def _reset_state(self) -> None:
        super()._reset_state()
        self.buffers = {"defbuffer1": _Buffer(100_000), "defbuffer2": _Buffer(10)}

    def power_cycle(self) -> None:
        self.language = self.saved_language  # *LANG takes effect at the next power-up
        super().power_cycle()

    def format_error(self, code: int, message: str) -> str:
        # The 2450 appends the event type and a time stamp to the message.
        return f'{code},"{message};{0 if code == 0 else 2};2024/01/01 00:00:00.000"'

    NUMBER = "{:.6E}"

    def handle(self, line: str) -> str | None:
        if self.language != "SCPI":
            return self._non_scpi(line)
        return super().handle(line)

    def _non_scpi(self, line: str) -> str | None:
        """TSP (or the unemulated 2400 mode): the common commands work, SCPI is ignored (a TSP
        instrument reports a syntax error in its own event log, not on SYST:ERR?)."""
        replies = []
        for unit in scpi.split_outside(line, ";"):
            unit = unit.strip()
            if not unit.startswith("*"):
                return ";".join(replies) or None
            try:
                reply, _ = self._execute(unit, [])
            except ScpiError:
                return ";".join(replies) or None
            if reply is not None:
                replies.append(reply)
        return ";".join(replies) or None

    def _set_language(self, params: list[str]) -> None:
        self.saved_language = scpi.choice(one(params), *self.LANGUAGES)

    # -- commands ---------------------------------------------------------------------------
    def _set_source_function(self, params: list[str]) -> None:
        function = scpi.choice(one(params), "VOLTage", "CURRent")
        if function != self.function:
            self.output = False  # the 2450 turns the output off when the source function changes
        self.function = function
        self._apply()

    def _set_sense(self, params: list[str]) -> None:
        self.sense = {scpi.choice(scpi.string(one(params)), *SENSE_NAMES)[:4]}

    def _get_sense(self, params: list[str]) -> str:
        none(params)
        sensed = next(iter(self.sense))
        return '"RES"' if sensed == "RES" else f'"{sensed}:DC"'

    def _tripped(self, function: str):
        def tripped(params: list[str]) -> str:
            none(params)
            limited = self.output and self.function == function and self._read().in_compliance
            return "1" if limited else "0"
        return tripped

    def _buffer(self, params: list[str], index: int = 0) -> _Buffer:
        name = scpi.string(params[index]) if len(params) > index else "defbuffer1"
        if name not in self.buffers:
            raise ScpiError((-285, "Buffer not found"))
        return self.buffers[name]

    def _measure(self, params: list[str], function: str | None) -> str:
        if function is not None:
            self.sense = {function}
        return self._read_query(params)

    def _read_query(self, params: list[str]) -> str:
        buffer = self._buffer(params)
        elements = self._elements(params[1:])
        count = int(self.settings["count"])
        for _ in range(count):
            buffer.add(self._entry())
        return self._format(buffer.entries[-1], elements)

    def _initiate(self, params: list[str]) -> None:
        none(params)
        for _ in range(int(self.settings["count"])):
            self.buffers["defbuffer1"].add(self._entry())

    def _fetch(self, params: list[str]) -> str:
        buffer = self._buffer(params)
        if not buffer.entries:
            raise ScpiError((-230, "Data corrupt or stale"))
        return self._format(buffer.entries[-1], self._elements(params[1:]))

    def _elements(self, params: list[str]) -> list[str]:
        return [scpi.choice(p, *self.ELEMENTS) for p in params] or ["READ"]

    def _entry(self) -> dict:
        """One measurement: what the terminals read (the output-off state's if it is off)."""
        reading = self._read()
        sensed = next(iter(self.sense))
        source = {"VOLT": reading.volts, "CURR": reading.amps}[self.function]
        if not self.settings[f"{self.function}_readback"]:
            source = self.level[self.function]
        status = self.STAT_READBACK if self.settings[f"{self.function}_readback"] else 0
        if reading.in_compliance and self.output:
            status |= self.STAT_LIMIT
        if self.output:
            status |= self.STAT_OUTPUT
        now = self.clock()
        return {"READ": self._sensed(reading, sensed), "SOUR": source if math.isfinite(source) else OVERFLOW,
                "SOURSTAT": status, "STAT": 8, "UNIT": UNITS[sensed], "SOURUNIT": UNITS[self.function],
                "REL": now - self.reset_time, "SEC": time.time()}

    def _format(self, entry: dict, elements: list[str]) -> str:
        fields = []
        for element in elements:
            if element in ("READ", "SOUR", "REL"):
                fields.append(self.number(entry[element]))
            elif element in ("FORM", "SOURFORM"):
                key = "READ" if element == "FORM" else "SOUR"
                unit = entry["UNIT" if key == "READ" else "SOURUNIT"].split()[0][0]
                fields.append(f"{entry[key]:+.5f} {unit}")
            elif element in ("SEC", "FRAC"):
                seconds = entry["SEC"]
                fields.append(str(int(seconds)) if element == "SEC" else f"{seconds % 1:.9f}")
            elif element in ("TST", "TIME", "DATE"):
                stamp = time.gmtime(entry["SEC"])
                fields.append(time.strftime({"TST": "%m/%d/%Y %H:%M:%S", "TIME": "%H:%M:%S",
                                             "DATE": "%m/%d/%Y"}[element], stamp))
            else:
                fields.append(str(entry[element]))
        return ",".join(fields)

    def _trace_make(self, params: list[str]) -> None:
        if len(params) < 2:
            raise ScpiError(scpi.MISSING_PARAMETER)
        name = scpi.string(params[0])
        size = int(scpi.number(params[1], 10, 1e7))
        if name in self.buffers:
            raise ScpiError((-284, "Buffer already exists"))
        self.buffers[name] = _Buffer(size)

    def _trace_delete(self, params: list[str]) -> None:
        name = scpi.string(one(params))
        if name in ("defbuffer1", "defbuffer2") or name not in self.buffers:
            raise ScpiError(scpi.ILLEGAL_PARAMETER)
        del self.buffers[name]

    def _trace_clear(self, params: list[str]) -> None:
        self._buffer(params).entries.clear()

    def _trace_set_points(self, params: list[str]) -> None:
        if not params:
            raise ScpiError(scpi.MISSING_PARAMETER)
        buffer = self._buffer(params, 1)
        buffer.capacity = int(scpi.number(params[0], 1, 1e7))
        buffer.entries.clear()

    def _trace_points(self, params: list[str]) -> str:
        return str(self._buffer(params).capacity)

    def _trace_actual(self, params: list[str]) -> str:
        return str(len(self._buffer(params).entries))

    def _trace_data(self, params: list[str]) -> str:
        if len(params) < 2:
            raise ScpiError(scpi.MISSING_PARAMETER)
        start, end = int(scpi.number(params[0], 1, 1e7)), int(scpi.number(params[1], 1, 1e7))
        buffer = self._buffer(params, 2)
        if end < start or end > len(buffer.entries):
            raise ScpiError(scpi.DATA_OUT_OF_RANGE)
        elements = self._elements(params[3:])
        return ",".join(self._format(e, elements) for e in buffer.entries[start - 1:end])

    def _trace_trigger(self, params: list[str]) -> None:
        self._buffer(params).add(self._entry())

    def _trace_statistic(self, params: list[str], statistic) -> str:
        values = [e["READ"] for e in self._buffer(params).entries]
        if not values:
            return self.number(NAN)
        return self.number(statistic(values))
