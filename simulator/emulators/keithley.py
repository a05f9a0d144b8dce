"""Emulated Keithley source-measure units: the 2400 (2400 series SCPI) and the 2450 (its own
SCPI command set). Each keeps the front-panel state the real unit keeps (source function, a
level and a limit per function, output, sense functions, the error queue), answers the
manuals' syntax in short or long form and any case, and asks the InstrumentBackend for
everything physical: ``apply_source`` whenever the output setting changes, ``read_source`` for
each measurement.
"""

from __future__ import annotations

import math

from simulator.emulators import scpi
from simulator.emulators.scpi import ScpiDevice, ScpiError
from simulator.instrument_backend import InstrumentBackend, SourceReading, SourceSetting

NAN = 9.91e37        # SCPI "not a number"
OVERFLOW = 9.9e37    # SCPI overflow
# 2400 error for a measurement requested with the output off (2400 manual, error messages).
OUTPUT_OFF = (803, "Not permitted with OUTPUT off")


class _KeithleySmu(ScpiDevice):
    """State and physics shared by both models. Subclasses register their command set."""

    MAKER = "KEITHLEY INSTRUMENTS"
    MODEL = ""
    FIRMWARE = ""
    MAX_LEVEL = {"VOLT": 210.0, "CURR": 1.05}          # source range, V and A
    LIMIT_RANGE = {"VOLT": (1e-9, 1.05), "CURR": (0.02, 210.0)}  # compliance: A when sourcing V
    DEFAULT_LIMIT = {"VOLT": 1.05e-4, "CURR": 21.0}    # *RST compliance (105 uA, 21 V)

    def __init__(self, name: str, backend: InstrumentBackend, *, serial: str = "4096218",
                 **kwargs):
        super().__init__(**kwargs)
        self.name = name
        self.backend = backend
        self.serial = serial
        self._reset_state()
        self._apply()

    # -- state ------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self.function = "VOLT"
        self.level = {"VOLT": 0.0, "CURR": 0.0}
        self.limit = dict(self.DEFAULT_LIMIT)
        self.output = False
        self.sense: set[str] = {"CURR"}
        self.off_mode = "NORM"  # :OUTPut:SMODe; the backend models every output-off state as open
        self.reset_time = self.clock()

    def reset(self) -> None:
        self._reset_state()
        self._apply()

    def identity(self) -> str:
        return f"{self.MAKER},MODEL {self.MODEL},{self.serial},{self.FIRMWARE}"

    @property
    def setting(self) -> SourceSetting:
        """What the front panel would show, in the backend's terms."""
        return SourceSetting(self.function, self.level[self.function], self.limit[self.function],
                             self.output)

    def is_safe(self) -> bool:
        """Output off and the active source level at 0."""
        return not self.output and self.level[self.function] == 0.0

    def _apply(self) -> None:
        self.backend.apply_source(self.name, self.setting)

    # -- shared command bodies -----------------------------------------------------------------
    def _set_function(self, params: list[str]) -> None:
        self.function = scpi.choice(_one(params), "VOLTage", "CURRent")
        self._apply()

    def _get_function(self, params: list[str]) -> str:
        _none(params)
        return self.function

    def _level_setter(self, function: str):
        def set_level(params: list[str]) -> None:
            top = self.MAX_LEVEL[function]
            self.level[function] = scpi.number(_one(params), -top, top, default=0.0)
            self._apply()
        return set_level

    def _level_getter(self, function: str):
        def get_level(params: list[str]) -> str:
            _none(params)
            return self.number(self.level[function])
        return get_level

    def _limit_setter(self, function: str):
        def set_limit(params: list[str]) -> None:
            lo, hi = self.LIMIT_RANGE[function]
            self.limit[function] = scpi.number(_one(params), lo, hi,
                                               default=self.DEFAULT_LIMIT[function])
            self._apply()
        return set_limit

    def _limit_getter(self, function: str):
        def get_limit(params: list[str]) -> str:
            _none(params)
            return self.number(self.limit[function])
        return get_limit

    def _set_output(self, params: list[str]) -> None:
        self.output = scpi.boolean(_one(params))
        self._apply()

    def _get_output(self, params: list[str]) -> str:
        _none(params)
        return "1" if self.output else "0"

    def _set_off_mode(self, params: list[str]) -> None:
        self.off_mode = scpi.choice(_one(params), "HIMPedance", "NORMal", "ZERO", "GUARd")

    def _get_off_mode(self, params: list[str]) -> str:
        _none(params)
        return self.off_mode

    def _read(self) -> SourceReading:
        return self.backend.read_source(self.name)

    @staticmethod
    def number(value: float) -> str:
        raise NotImplementedError


class Keithley2400Emulator(_KeithleySmu):
    """Keithley 2400 SourceMeter, 2400 series SCPI."""

    MODEL = "2400"
    FIRMWARE = "C32   Oct  4 2010 14:20:11/A02  /K/M"
    ELEMENTS = ("VOLT", "CURR", "RES", "TIME", "STAT")  # the order :READ? always uses

    def __init__(self, name: str, backend: InstrumentBackend, **kwargs):
        super().__init__(name, backend, **kwargs)
        c = self.command
        c("[:SOURce[1]]:FUNCtion[:MODE]", set=self._set_function, query=self._get_function)
        for function, long in (("VOLT", "VOLTage"), ("CURR", "CURRent")):
            c(f"[:SOURce[1]]:{long}[:LEVel][:IMMediate][:AMPLitude]",
              set=self._level_setter(function), query=self._level_getter(function))
        # Compliance: the limit on the measured quantity, set on the *sense* side.
        c("[:SENSe[1]]:CURRent[:DC]:PROTection[:LEVel]",
          set=self._limit_setter("VOLT"), query=self._limit_getter("VOLT"))
        c("[:SENSe[1]]:VOLTage[:DC]:PROTection[:LEVel]",
          set=self._limit_setter("CURR"), query=self._limit_getter("CURR"))
        c("[:SENSe[1]]:FUNCtion:CONCurrent", set=self._set_concurrent,
          query=lambda p: "1" if self.concurrent else "0")
        c("[:SENSe[1]]:FUNCtion[:ON]", set=self._set_sense, query=self._get_sense)
        c(":FORMat:ELEMents[:SENSe[1]]", set=self._set_elements,
          query=lambda p: ",".join(self.elements))
        c(":OUTPut[1][:STATe]", set=self._set_output, query=self._get_output)
        c(":OUTPut[1]:SMODe", set=self._set_off_mode, query=self._get_off_mode)
        c(":READ", query=self._read_query)
        c(":ABORt", set=lambda p: None)

    def _reset_state(self) -> None:
        super()._reset_state()
        self.concurrent = True
        self.elements = list(self.ELEMENTS)

    @staticmethod
    def number(value: float) -> str:
        return f"{value + 0.0:+.6E}"

    def _set_concurrent(self, params: list[str]) -> None:
        self.concurrent = scpi.boolean(_one(params))

    def _set_sense(self, params: list[str]) -> None:
        if not params:
            raise ScpiError(scpi.MISSING_PARAMETER)
        chosen = set()
        for param in params:
            if not param.startswith(('"', "'")):
                raise ScpiError(scpi.DATA_TYPE_ERROR)
            chosen.add(scpi.choice(param, "VOLTage", "VOLTage:DC", "CURRent", "CURRent:DC",
                                   "RESistance")[:4])
        if not self.concurrent and len(chosen) > 1:
            raise ScpiError(scpi.SETTINGS_CONFLICT)
        self.sense = chosen

    def _get_sense(self, params: list[str]) -> str:
        _none(params)
        names = {"VOLT": '"VOLT:DC"', "CURR": '"CURR:DC"', "RES": '"RES"'}
        return ",".join(names[s] for s in sorted(self.sense))

    def _set_elements(self, params: list[str]) -> None:
        if not params:
            raise ScpiError(scpi.MISSING_PARAMETER)
        chosen = {scpi.choice(p, "VOLTage", "CURRent", "RESistance", "TIME", "STATus")
                  for p in params}
        self.elements = [e for e in self.ELEMENTS if e in chosen]

    def _read_query(self, params: list[str]) -> str | None:
        _none(params)
        if not self.output:
            raise ScpiError(OUTPUT_OFF)
        reading = self._read()
        fields = []
        for element in self.elements:
            if element == "VOLT":
                fields.append(self._value(reading.volts, "VOLT"))
            elif element == "CURR":
                fields.append(self._value(reading.amps, "CURR"))
            elif element == "RES":
                fields.append(self.number(NAN))
            elif element == "TIME":
                fields.append(self.number(self.clock() - self.reset_time))
            else:
                fields.append(self.number(self._status(reading)))
        return ",".join(fields)

    def _value(self, measured: float, quantity: str) -> str:
        """A measured quantity if it is a sense function; the programmed level if it is only
        sourced; NaN if neither (what the 2400 returns for an element it did not measure)."""
        if quantity in self.sense:
            return self.number(measured if math.isfinite(measured) else NAN)
        if quantity == self.function:
            return self.number(self.level[quantity])
        return self.number(NAN)

    def _status(self, reading: SourceReading) -> int:
        word = 1 << 2  # front terminals
        if not (math.isfinite(reading.volts) and math.isfinite(reading.amps)):
            word |= 1 << 0  # OFLO
        if reading.in_compliance:
            word |= 1 << 3
        if "VOLT" in self.sense:
            word |= 1 << 11
        if "CURR" in self.sense:
            word |= 1 << 12
        word |= 1 << 14 if self.function == "VOLT" else 1 << 15
        return word


class Keithley2450Emulator(_KeithleySmu):
    """Keithley 2450 Interactive SourceMeter, SCPI command set."""

    MAKER = "KEITHLEY INSTRUMENTS"
    MODEL = "2450"
    FIRMWARE = "1.7.12b"
    # READ? buffer elements (2450 reference manual, :READ?), long forms.
    ELEMENTS = ("READing", "SOURce", "SOURSTATus", "STATus", "UNIT", "SOURUNIT")
    STAT_READBACK, STAT_LIMIT, STAT_OUTPUT = 1 << 3, 1 << 5, 1 << 7

    def __init__(self, name: str, backend: InstrumentBackend, **kwargs):
        super().__init__(name, backend, **kwargs)
        c = self.command
        c(":SOURce[1]:FUNCtion[:MODE]", set=self._set_source_function, query=self._get_function)
        for function, long, limit in (("VOLT", "VOLTage", "ILIMit"), ("CURR", "CURRent", "VLIMit")):
            c(f":SOURce[1]:{long}[:LEVel][:IMMediate][:AMPLitude]",
              set=self._level_setter(function), query=self._level_getter(function))
            c(f":SOURce[1]:{long}:{limit}[:LEVel]",
              set=self._limit_setter(function), query=self._limit_getter(function))
            c(f":SOURce[1]:{long}:{limit}[:LEVel]:TRIPped", query=self._tripped(function))
        c("[:SENSe[1]]:FUNCtion[:ON]", set=self._set_sense, query=self._get_sense)
        c(":OUTPut[1][:STATe]", set=self._set_output, query=self._get_output)
        c(":OUTPut[1]:SMODe", set=self._set_off_mode, query=self._get_off_mode)
        c(":READ", query=self._read_query)
        c(":ABORt", set=lambda p: None)

    # Remote command sets (2450 reference manual, *LANG): kept in nonvolatile memory, so a unit
    # left in TSP by someone else still answers *IDN? but ignores SCPI, :OUTP OFF included. A
    # new setting takes effect at the next power-up (``power_cycle``).
    LANGUAGES = ("SCPI", "TSP", "SCPI2400")

    def _reset_state(self) -> None:
        super()._reset_state()
        if not hasattr(self, "language"):
            self.language = self.language_at_power_up = "SCPI"

    def power_cycle(self) -> None:
        self.language = self.language_at_power_up
        self.reset()

    def handle(self, line: str) -> str | None:
        if self.language != "SCPI":
            head = line.strip().split(" ", 1)[0].split(";", 1)[0].upper()
            if head not in ("*IDN?", "*LANG?", "*LANG"):
                return None  # not this command set's syntax: nothing happens, nothing answers
        return super().handle(line)

    def _common(self, head: str, is_query: bool, params: list[str]) -> str | None:
        if head == "*LANG":
            if is_query:
                if params:
                    raise ScpiError(scpi.PARAMETER_NOT_ALLOWED)
                return self.language
            self.language_at_power_up = scpi.choice(_one(params), *self.LANGUAGES)
            return None
        return super()._common(head, is_query, params)

    def format_error(self, code: int, message: str) -> str:
        # The 2450 appends the event type and a time stamp to the message.
        return f'{code},"{message};{0 if code == 0 else 2};2024/01/01 00:00:00.000"'

    @staticmethod
    def number(value: float) -> str:
        return f"{value + 0.0:.6E}"

    def _set_source_function(self, params: list[str]) -> None:
        function = scpi.choice(_one(params), "VOLTage", "CURRent")
        if function != self.function:
            self.output = False  # the 2450 turns the output off when the source function changes
        self.function = function
        self._apply()

    def _set_sense(self, params: list[str]) -> None:
        param = _one(params)
        if not param.startswith(('"', "'")):
            raise ScpiError(scpi.DATA_TYPE_ERROR)
        self.sense = {scpi.choice(param, "VOLTage", "VOLTage:DC", "CURRent", "CURRent:DC",
                                  "RESistance")[:4]}

    def _get_sense(self, params: list[str]) -> str:
        _none(params)
        sensed = next(iter(self.sense))
        return '"RES"' if sensed == "RES" else f'"{sensed}:DC"'

    def _tripped(self, function: str):
        def tripped(params: list[str]) -> str:
            _none(params)
            limited = self.output and self.function == function and self._read().in_compliance
            return "1" if limited else "0"
        return tripped

    def _read_query(self, params: list[str]) -> str:
        if params and params[0].strip("\"'") not in ("defbuffer1", "defbuffer2"):
            raise ScpiError(scpi.ILLEGAL_PARAMETER)
        elements = [scpi.choice(p, *self.ELEMENTS) for p in params[1:]] or ["READ"]
        reading = self._read()
        sensed = next(iter(self.sense))
        values = {"VOLT": reading.volts, "CURR": reading.amps}
        fields = []
        for element in elements:
            if element == "READ":
                value = values.get(sensed, NAN)
                fields.append(self.number(value if math.isfinite(value) else OVERFLOW))
            elif element == "SOUR":
                value = values[self.function] if self.output else self.level[self.function]
                fields.append(self.number(value if math.isfinite(value) else OVERFLOW))
            elif element == "SOURSTAT":
                status = self.STAT_READBACK
                if reading.in_compliance:
                    status |= self.STAT_LIMIT
                if self.output:
                    status |= self.STAT_OUTPUT
                fields.append(str(status))
            elif element == "STAT":
                fields.append("8")  # front terminals
            elif element == "UNIT":
                fields.append({"VOLT": "Volt DC", "CURR": "Amp DC"}.get(sensed, "Ohm"))
            else:
                fields.append("Volt DC" if self.function == "VOLT" else "Amp DC")
        return ",".join(fields)


def _one(params: list[str]) -> str:
    if not params:
        raise ScpiError(scpi.MISSING_PARAMETER)
    if len(params) > 1:
        raise ScpiError(scpi.PARAMETER_NOT_ALLOWED)
    return params[0]


def _none(params: list[str]) -> None:
    if params:
        raise ScpiError(scpi.PARAMETER_NOT_ALLOWED)
