"""Keithley source-measure units over SCPI: the 2400 series dialect and the 2450 dialect.

One base class holds the behaviour (limits, ramps, state, safe_state); each dialect is a table
of its manual's commands plus the parsing of its measurement reply, so the class reads beside
the manual line by line.

Measuring (one query returns volts, amps and the compliance flag):
- 2400: ``:FORM:ELEM VOLT,CURR,STAT`` once, then ``:READ?`` -> ``V,I,status``; status word bit 3
  is "in real compliance" and bit 16 "in range compliance" (2400 manual, FORMat:ELEMents STATus),
  bit 0 (OFLO) a measurement made in overrange.
- 2450: ``:READ? "defbuffer1",SOUR,READ,SOURSTAT`` -> ``source,reading,sourcestatus``. SOUR is the
  source readback, READ the sense function (current when sourcing volts, volts when sourcing
  current); SOURSTAT bit 5 (32, STAT_LIMIT) is "the source level was limited" (2450 reference
  manual, READ? buffer elements / buffer status bits for source). One query, unlike
  ``:SOUR:VOLT:ILIM:TRIP?``, which would need a second exchange and could describe a later
  moment than the reading.

Safety rules this driver enforces:
- every request is checked against ``SourceLimits`` and the model's hardware range before any
  byte is sent; a violation raises LimitError naming the instrument, quantity, value and limit;
- the compliance is set (configure) before the output may be switched on;
- level changes while the output is on are ramps with steps no larger than the ramp step;
- the output is switched on only at 0 and then ramped to the programmed level;
- safe_state asks the instrument what it is doing (it may have been left on by a crashed run),
  ramps to 0, and switches off; it always attempts the switch-off even if the ramp fails.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from drivers.instruments import validators as v
from drivers.instruments.errors import (
    ComplianceError,
    InstrumentError,
    LimitError,
    ProtocolError,
    ReadingError,
)
from drivers.instruments.scpi import Identity, ScpiErrorQueue, parse_identity, scpi_number
from drivers.instruments.transport import Transport

FUNCTIONS = ("VOLT", "CURR")
# SCPI's "overflow" (9.9E37) and "not a number" (9.91E37) codes come back as ordinary numbers.
OVERRANGE = 9.9e37


@dataclass(frozen=True)
class SourceLimits:
    """Bench limits of one source-measure unit, in SI units. All finite and > 0.

    max_volts  : largest |V| sourced, and largest voltage compliance when sourcing current.
    max_amps   : largest |I| sourced, and largest current compliance when sourcing volts.
    max_watts  : largest |level| x compliance, the worst-case power into the load.
    ramp_volts : largest step of a voltage level change while the output is on.
    ramp_amps  : largest step of a current level change while the output is on.
    """

    max_volts: float
    max_amps: float
    max_watts: float
    ramp_volts: float
    ramp_amps: float

    def __post_init__(self):
        for key in ("max_volts", "max_amps", "max_watts", "ramp_volts", "ramp_amps"):
            value = getattr(self, key)
            if (isinstance(value, bool) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or value <= 0):
                raise LimitError("source limits", f"{key} = {value!r}, expected a finite number > 0")


@dataclass(frozen=True)
class SmuReading:
    """One measurement at the terminals: volts across HI-LO, amps out of HI."""

    volts: float
    amps: float
    in_compliance: bool


def ramp_points(start: float, stop: float, step: float) -> list[float]:
    """Levels from ``start`` (excluded) to ``stop`` (included), evenly spaced, with steps no
    larger than ``step``."""
    span = stop - start
    if span == 0:
        return []
    # The small tolerance keeps 0 -> 0.3 in steps of 0.1 at 3 steps despite rounding.
    n = max(1, math.ceil(abs(span) / step - 1e-9))
    return [start + span * k / n for k in range(1, n)] + [stop]


class KeithleySourceMeter(ScpiErrorQueue):
    """Behaviour shared by the dialects. Subclasses fill the command table and parse_reading."""

    MODEL = ""                           # what errors call the instrument
    MODELS: frozenset[str] = frozenset() # *IDN? model fields this dialect drives
    HARDWARE = {"VOLT": 210.0, "CURR": 1.05}  # largest source level of the model, V and A
    # Command table (manual syntax, short forms). {value} is always a scpi_number.
    RESET: tuple[str, ...] = ("*RST", "*CLS")
    SETUP: tuple[str, ...] = ()
    FUNCTION = ":SOUR:FUNC {function}"
    FUNCTION_QUERY = ":SOUR:FUNC?"
    LEVEL: dict[str, str] = {}
    LEVEL_QUERY: dict[str, str] = {}
    COMPLIANCE: dict[str, str] = {}
    SENSE: dict[str, str] = {}
    OUTPUT = ":OUTP {state}"
    OUTPUT_QUERY = ":OUTP?"
    OUTPUT_OFF_MODE = ":OUTP:SMOD {mode}"
    OFF_MODES = ("HIMP", "NORM", "ZERO", "GUAR")
    MEASURE = ":READ?"
    ERROR_QUERY = ":SYST:ERR?"

    def __init__(self, transport: Transport, limits: SourceLimits, *, name: str | None = None,
                 ramp_dwell_s: float = 0.0, measure_timeout_s: float | None = None):
        """``limits`` are checked against the model's hardware range here; ``ramp_dwell_s`` is
        the pause after each ramp step (0: as fast as the link allows); ``measure_timeout_s``
        overrides the transport timeout for :READ? (slow integration times)."""
        self.transport = transport
        self.name = name or transport.name
        self.limits = limits
        for function, key in (("VOLT", "max_volts"), ("CURR", "max_amps")):
            if getattr(limits, key) > self.HARDWARE[function]:
                raise LimitError(self.name, f"limits.{key} = {getattr(limits, key)} exceeds what "
                                 f"the {self.MODEL} can source ({self.HARDWARE[function]})")
        self.ramp_dwell_s = float(ramp_dwell_s)
        self.measure_timeout_s = measure_timeout_s
        # What the driver knows of the instrument; None until read or set.
        self._function: str | None = None
        self._level: float | None = None
        self._compliance: float | None = None
        self._output: bool | None = None
        self._compliance_set = False  # compliance written by this driver for _function

    # -- identity and housekeeping ------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"{self.name} ({self.MODEL})"

    def identify(self) -> Identity:
        """Read ``*IDN?``; raise ProtocolError if the model is not one this dialect drives."""
        identity = parse_identity(self.label, self.transport.query("*IDN?"))
        model = identity.model.upper().removeprefix("MODEL").strip()
        if model not in self.MODELS:
            raise ProtocolError(self.label, f"*IDN? names model {identity.model!r}; this driver "
                                            f"drives {sorted(self.MODELS)}")
        return identity

    def reset(self) -> None:
        """``*RST`` and ``*CLS`` (output off, source volts at 0), then the dialect's setup.
        The compliance must be configured again before the output can be switched on."""
        with self.transport.lock:
            for command in self.RESET + self.SETUP:
                self.transport.write(command)
            self._function, self._level, self._output = "VOLT", 0.0, False
            self._compliance, self._compliance_set = None, False
            self.check_errors()

    # -- source settings -----------------------------------------------------------------------
    def configure(self, function: str, compliance: float) -> None:
        """Select the source ``function`` ('VOLT' or 'CURR') at level 0 and its compliance
        (amps when sourcing volts, volts when sourcing current). The output must be off."""
        if function not in FUNCTIONS:
            raise LimitError(self.label, f"source function {function!r} is not one of "
                                         f"{FUNCTIONS}; nothing was sent")
        compliance = self._check_compliance(function, compliance, level=0.0)
        with self.transport.lock:
            if self._output_is_on():
                raise InstrumentError(self.label, "the output is on; call safe_state() before "
                                                  "changing the source function")
            self.transport.write(self.FUNCTION.format(function=function))
            self.transport.write(self.LEVEL[function].format(value=scpi_number(0.0)))
            self.transport.write(self.COMPLIANCE[function].format(value=scpi_number(compliance)))
            if function in self.SENSE:
                self.transport.write(self.SENSE[function])
            self._function, self._level, self._compliance = function, 0.0, compliance
            self._compliance_set = True
            self.check_errors()

    def set_compliance(self, compliance: float) -> None:
        """Change the compliance of the configured function (allowed with the output on)."""
        function = self._configured()
        compliance = self._check_compliance(function, compliance, level=self._level or 0.0)
        with self.transport.lock:
            self.transport.write(self.COMPLIANCE[function].format(value=scpi_number(compliance)))
            self._compliance = compliance

    def set_level(self, level: float) -> None:
        """Go to ``level`` (volts or amps per the configured function): a ramp with steps no
        larger than the ramp step while the output is on, one write while it is off (the
        terminals are open, nothing to ramp)."""
        function = self._configured()
        level = self._check_level(function, level)
        with self.transport.lock:
            if self._output_is_on():
                self._ramp(function, self._known_level(function), level)
            else:
                self.transport.write(self.LEVEL[function].format(value=scpi_number(level)))
            self._level = level

    def output_on(self) -> None:
        """Switch the output on: at level 0, then ramp to the programmed level."""
        function = self._configured()
        with self.transport.lock:
            if self._output_is_on():
                return
            target = self._known_level(function)
            if target != 0.0:
                self.transport.write(self.LEVEL[function].format(value=scpi_number(0.0)))
            self.transport.write(self.OUTPUT.format(state="ON"))
            self._output, self._level = True, 0.0
            self._ramp(function, 0.0, target)
            self._level = target

    def set_output_off_mode(self, mode: str) -> None:
        """What the terminals are while the output is off (both manuals, ``:OUTPut:SMODe``):
        'HIMP' opens the output relay (an open circuit), 'NORM' (the *RST default) sources 0 V
        with a small current limit, 'ZERO' 0 V, 'GUAR' 0 A. A bench that uses 'output off' as
        an open circuit must select 'HIMP'."""
        if mode not in self.OFF_MODES:
            raise LimitError(self.label, f"output-off mode {mode!r} is not one of "
                                         f"{self.OFF_MODES}; nothing was sent")
        with self.transport.lock:
            self.transport.write(self.OUTPUT_OFF_MODE.format(mode=mode))

    def output_off(self) -> None:
        """Ramp to 0, then switch the output off. The programmed level stays 0."""
        with self.transport.lock:
            function = self._function or self._query_function()
            if self._output_is_on():
                self._ramp(function, self._known_level(function), 0.0)
            self.transport.write(self.OUTPUT.format(state="OFF"))
            self._output = False
            if self._known_level(function) != 0.0:
                self.transport.write(self.LEVEL[function].format(value=scpi_number(0.0)))
            self._level = 0.0

    # -- measuring --------------------------------------------------------------------------
    def measure(self) -> SmuReading:
        """Volts and amps at the terminals in one query. Raises ComplianceError if the source
        was limited by its compliance, ReadingError for an overrange or NaN value."""
        function = self._configured()
        with self.transport.lock:
            if not self._output_is_on():
                raise InstrumentError(self.label, "the output is off; switch it on before "
                                                  "measuring")
            reply = self.transport.query(self.MEASURE, timeout_s=self.measure_timeout_s)
        return self.reading_from_reply(reply, function)

    def reading_from_reply(self, reply: str, function: str) -> SmuReading:
        """The checks of measure() on a MEASURE reply obtained elsewhere (a bench that sends
        MEASURE inside a longer command line): ReadingError for overrange or NaN,
        ComplianceError for a reading taken while the source was limited."""
        reading, overflow = self.parse_reading(reply, function)
        for what, value, unit in (("volts", reading.volts, "V"), ("amps", reading.amps, "A")):
            if math.isnan(value) or abs(value) >= OVERRANGE * 0.99 or overflow:
                raise ReadingError(self.label, f"{what} reading {value:g} {unit} is overrange or "
                                               f"not a number (reply {reply!r})")
        if reading.in_compliance:
            limit = self._compliance
            what = "current compliance" if function == "VOLT" else "voltage compliance"
            unit = "A" if function == "VOLT" else "V"
            raise ComplianceError(self.label, f"reading taken in compliance ({reading.volts:g} V, "
                                              f"{reading.amps:g} A; {what} {limit:g} {unit})",
                                  reading)
        return reading

    def parse_reading(self, reply: str, function: str) -> tuple[SmuReading, bool]:
        """(reading, overflow flag) from the MEASURE reply. Dialect-specific."""
        raise NotImplementedError

    # -- safe state -------------------------------------------------------------------------
    def safe_state(self) -> None:
        """Level to 0 by ramp, output off. Reads the instrument's actual state first (a previous
        run may have left it on), skips every limit but the ramp step, always attempts the
        switch-off, and is idempotent."""
        with self.transport.lock:
            try:
                function = self._query_function()
                level = self._query_number(self.LEVEL_QUERY[function])
                if self._query_output() and level != 0.0:
                    self._ramp(function, level, 0.0)
                    level = 0.0
            finally:
                self._output = None  # unknown until the switch-off is known to have been sent
                self.transport.write(self.OUTPUT.format(state="OFF"))
                self._output = False
            if level != 0.0:
                self.transport.write(self.LEVEL[function].format(value=scpi_number(0.0)))
            self._level = 0.0

    # -- internals -----------------------------------------------------------------------------
    def _configured(self) -> str:
        if not self._compliance_set or self._function is None:
            raise InstrumentError(self.label, "no source function and compliance configured; "
                                              "call configure() first")
        return self._function

    def _check_compliance(self, function: str, compliance, level: float) -> float:
        if function == "VOLT":
            compliance = v.real(self.label, "current compliance", compliance, "A")
            v.positive(self.label, "current compliance", compliance, "A")
            v.at_most(self.label, "current compliance", compliance, self.limits.max_amps, "A", "I")
        else:
            compliance = v.real(self.label, "voltage compliance", compliance, "V")
            v.positive(self.label, "voltage compliance", compliance, "V")
            v.at_most(self.label, "voltage compliance", compliance, self.limits.max_volts, "V", "V")
        self._check_power(abs(level) * compliance, level, compliance)
        return compliance

    def _check_level(self, function: str, level) -> float:
        if function == "VOLT":
            level = v.real(self.label, "source volts", level, "V")
            v.at_most(self.label, "source volts", level, self.limits.max_volts, "V", "V")
        else:
            level = v.real(self.label, "source amps", level, "A")
            v.at_most(self.label, "source amps", level, self.limits.max_amps, "A", "I")
        self._check_power(abs(level) * self._compliance, level, self._compliance)
        return level

    def _check_power(self, watts: float, level: float, compliance: float) -> None:
        if watts > self.limits.max_watts:
            raise LimitError(self.label, f"worst-case power |level| x compliance = {abs(level):g} x "
                                         f"{compliance:g} = {watts:g} W exceeds the limit "
                                         f"{self.limits.max_watts:g} W; nothing was sent")

    def _ramp(self, function: str, start: float, stop: float) -> None:
        step = self.limits.ramp_volts if function == "VOLT" else self.limits.ramp_amps
        for point in ramp_points(start, stop, step):
            self.transport.write(self.LEVEL[function].format(value=scpi_number(point)))
            self._level = point
            if self.ramp_dwell_s > 0:
                time.sleep(self.ramp_dwell_s)

    def _known_level(self, function: str) -> float:
        if self._level is None:
            self._level = self._query_number(self.LEVEL_QUERY[function])
        return self._level

    def _query_number(self, command: str) -> float:
        reply = self.transport.query(command)
        try:
            value = float(reply)
        except ValueError:
            raise ProtocolError(self.label, f"{command} reply {reply!r} is not a number") from None
        if not math.isfinite(value) or abs(value) >= OVERRANGE * 0.99:
            raise ProtocolError(self.label, f"{command} reply {reply!r} is not a finite level")
        return value

    def _output_is_on(self) -> bool:
        if self._output is None:
            self._output = self._query_output()
        return self._output

    def _query_output(self) -> bool:
        reply = self.transport.query(self.OUTPUT_QUERY).strip()
        if reply not in ("0", "1"):
            raise ProtocolError(self.label, f"{self.OUTPUT_QUERY} reply {reply!r} is not 0 or 1")
        return reply == "1"

    def _query_function(self) -> str:
        reply = self.transport.query(self.FUNCTION_QUERY).strip().strip('"').upper()
        for function in FUNCTIONS:
            if reply.startswith(function):
                if function != self._function:
                    self._function, self._compliance_set, self._level = function, False, None
                return function
        raise ProtocolError(self.label, f"{self.FUNCTION_QUERY} reply {reply!r} is not VOLT or CURR")

    def _numbers(self, reply: str, count: int) -> list[float]:
        try:
            values = [float(field) for field in reply.split(",")]
        except ValueError:
            raise ProtocolError(self.label, f"{self.MEASURE} reply {reply!r} is not "
                                            f"{count} numbers") from None
        if len(values) != count:
            raise ProtocolError(self.label, f"{self.MEASURE} reply {reply!r} has {len(values)} "
                                            f"fields, expected {count}")
        return values


class Keithley2400(KeithleySourceMeter):
    """Keithley 2400 SourceMeter (2400 series SCPI)."""

    MODEL = "Keithley 2400"
    MODELS = frozenset({"2400"})
    HARDWARE = {"VOLT": 210.0, "CURR": 1.05}
    # Concurrent V and I measurement, and a :READ? that returns exactly V, I and the status word.
    SETUP = (":SENS:FUNC:CONC ON", ':SENS:FUNC:ON "VOLT","CURR"', ":FORM:ELEM VOLT,CURR,STAT")
    LEVEL = {"VOLT": ":SOUR:VOLT:LEV {value}", "CURR": ":SOUR:CURR:LEV {value}"}
    LEVEL_QUERY = {"VOLT": ":SOUR:VOLT:LEV?", "CURR": ":SOUR:CURR:LEV?"}
    COMPLIANCE = {"VOLT": ":SENS:CURR:PROT {value}", "CURR": ":SENS:VOLT:PROT {value}"}
    MEASURE = ":READ?"
    STATUS_OVERFLOW = 1 << 0
    STATUS_COMPLIANCE = 1 << 3
    STATUS_RANGE_COMPLIANCE = 1 << 16

    def parse_reading(self, reply: str, function: str) -> tuple[SmuReading, bool]:
        volts, amps, status = self._numbers(reply, 3)
        if not math.isfinite(status) or status < 0 or status >= 2 ** 24:
            raise ProtocolError(self.label, f"status word {status!r} in {reply!r} is not a "
                                            "24-bit integer")
        word = int(status)
        limited = bool(word & (self.STATUS_COMPLIANCE | self.STATUS_RANGE_COMPLIANCE))
        return SmuReading(volts, amps, limited), bool(word & self.STATUS_OVERFLOW)


class Keithley2450(KeithleySourceMeter):
    """Keithley 2450 Interactive SourceMeter (its SCPI command set, not the 2400 emulation)."""

    MODEL = "Keithley 2450"
    MODELS = frozenset({"2450"})
    HARDWARE = {"VOLT": 210.0, "CURR": 1.05}
    LEVEL = {"VOLT": ":SOUR:VOLT {value}", "CURR": ":SOUR:CURR {value}"}
    LEVEL_QUERY = {"VOLT": ":SOUR:VOLT?", "CURR": ":SOUR:CURR?"}
    COMPLIANCE = {"VOLT": ":SOUR:VOLT:ILIM {value}", "CURR": ":SOUR:CURR:VLIM {value}"}
    # Sense the quantity that is not sourced; the source quantity comes from SOUR (readback).
    SENSE = {"VOLT": ':SENS:FUNC "CURR"', "CURR": ':SENS:FUNC "VOLT"'}
    MEASURE = ':READ? "defbuffer1",SOUR,READ,SOURSTAT'
    SOURCE_LIMITED = 1 << 5  # buffer.STAT_LIMIT

    def parse_reading(self, reply: str, function: str) -> tuple[SmuReading, bool]:
        source, sensed, status = self._numbers(reply, 3)
        if not math.isfinite(status) or status < 0 or status >= 2 ** 16:
            raise ProtocolError(self.label, f"source status {status!r} in {reply!r} is not a "
                                            "16-bit integer")
        limited = bool(int(status) & self.SOURCE_LIMITED)
        if function == "VOLT":
            return SmuReading(volts=source, amps=sensed, in_compliance=limited), False
        return SmuReading(volts=sensed, amps=source, in_compliance=limited), False
