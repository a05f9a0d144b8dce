"""Keithley source-measure units over SCPI: the 2400 series dialect and the 2450 dialect.

Each dialect declares its manual's quantities (drivers/instruments/declarations.py): the source
function, the level and the compliance of each function, the output and its off state, the
measurement. One base class holds the behaviour (limits, ramps, state, safe_state) and goes
through those declarations only, so the safe state and the bench's verification read the
instrument with the same parsers.

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

First contact:
- 2450: ``*LANG?`` after ``*IDN?``. A 2450 left in the TSP (or 2400-emulation) command set still
  answers ``*IDN?`` but ignores this driver's SCPI, including ``:OUTP OFF``; it is refused with
  the way to switch it.
- 2400: with the high-impedance output-off state the output relay opens at ``:OUTP OFF`` and
  needs about 15 ms to settle after ``:OUTP ON`` (2400 manual, output-off states); nothing is
  measured before that (``wait_settled``).

Safety rules this driver enforces:
- every request is checked against ``SourceLimits`` and the model's hardware range before any
  byte is sent; a violation raises LimitError naming the instrument, quantity, value and limit;
- the compliance is set (configure) before the output may be switched on;
- level changes while the output is on are ramps with steps no larger than the ramp step, sent
  back to back for the instrument to execute in order (the host never paces them by sleeping);
  a ramp has at most MAX_RAMP_STEPS steps;
- the output is switched on only at 0 and then ramped to the programmed level;
- safe_state asks the instrument what it is doing (it may have been left on by a crashed run),
  ramps to 0, and switches off; it always attempts the switch-off even if the ramp fails.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from drivers.instruments.declarations import (
    OVERRANGE,
    Setting,
    boolean,
    done,
    finite_number,
    level_within,
    numbers,
    on_off,
    one_of,
    positive_within,
    text,
    within,
    word,
    zero_one,
)
from drivers.instruments.errors import (
    ComplianceError,
    InstrumentError,
    InstrumentTimeout,
    LimitError,
    ProtocolError,
    ReadingError,
)
from drivers.instruments.scpi import Identity, ScpiErrorQueue, parse_identity
from drivers.instruments.transport import Transport

FUNCTIONS = ("VOLT", "CURR")
OFF_MODES = ("HIMP", "NORM", "ZERO", "GUAR")
# The longest ramp a driver sends: a full swing from -max to +max at the smallest ramp step the
# limits allow (SourceLimits: max / ramp step <= MAX_RAMP_STEPS / 2).
MAX_RAMP_STEPS = 1000


@dataclass(frozen=True)
class SourceLimits:
    """Bench limits of one source-measure unit, in SI units. All finite and > 0.

    max_volts  : largest |V| sourced, and largest voltage compliance when sourcing current.
    max_amps   : largest |I| sourced, and largest current compliance when sourcing volts.
    max_watts  : largest |level| x compliance, the worst-case power into the load.
    ramp_volts : largest step of a voltage level change while the output is on; at least
                 max_volts / (MAX_RAMP_STEPS / 2), so that a ramp has a bounded number of steps.
    ramp_amps  : largest step of a current level change while the output is on (same bound).
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
        for step, top in (("ramp_volts", "max_volts"), ("ramp_amps", "max_amps")):
            smallest = getattr(self, top) / (MAX_RAMP_STEPS // 2)
            if getattr(self, step) < smallest:
                raise LimitError("source limits", f"{step} = {getattr(self, step)!r} would need more "
                                 f"than {MAX_RAMP_STEPS // 2} steps to ramp from 0 to {top} = "
                                 f"{getattr(self, top)!r}; it must be >= {smallest:g}")


@dataclass(frozen=True)
class SmuReading:
    """One measurement at the terminals: volts across HI-LO, amps out of HI."""

    volts: float
    amps: float
    in_compliance: bool


@dataclass(frozen=True)
class SourceStatus:
    """What the instrument says it sources, read by ``read_state()``."""

    function: str   # 'VOLT' or 'CURR'
    level: float    # volts or amps of that function
    output: bool

    @property
    def safe(self) -> bool:
        return not self.output and self.level == 0.0

    def describe(self) -> str:
        unit = "V" if self.function == "VOLT" else "A"
        return f"output {'on' if self.output else 'off'}, level {self.level:g} {unit}"


def ramp_points(start: float, stop: float, step: float, max_steps: int = MAX_RAMP_STEPS) -> list[float]:
    """Levels from ``start`` (excluded) to ``stop`` (included), evenly spaced, with steps no
    larger than ``step``. ValueError if that needs more than ``max_steps`` steps."""
    span = stop - start
    if span == 0:
        return []
    # The small tolerance keeps 0 -> 0.3 in steps of 0.1 at 3 steps despite rounding.
    n = max(1, math.ceil(abs(span) / step - 1e-9))
    if n > max_steps:
        raise ValueError(f"a ramp from {start:g} to {stop:g} in steps of {step:g} needs {n} steps; "
                         f"at most {max_steps} are allowed")
    return [start + span * k / n for k in range(1, n)] + [stop]


class KeithleySourceMeter(ScpiErrorQueue):
    """Behaviour shared by the dialects. Subclasses declare their quantities and read_reading."""

    MODEL = ""                           # what errors call the instrument
    MODELS: frozenset[str] = frozenset() # *IDN? model fields this dialect drives
    HARDWARE = {"VOLT": 210.0, "CURR": 1.05}  # largest source level of the model, V and A
    RESET: tuple[str, ...] = ("*RST", "*CLS")
    SETUP: tuple[str, ...] = ()          # commands after the reset that measure() relies on
    SENSE: dict[str, str] = {}           # sense-function command per source function
    RELAY_SETTLE_S = 0.0                 # after :OUTP ON with the output relay open (HIMP)

    # The quantities both manuals write the same way.
    function = Setting("source function", set=":SOUR:FUNC {value}", query=":SOUR:FUNC?",
                       parse=word(*FUNCTIONS), format=text, check=one_of(FUNCTIONS))
    output = Setting("output", set=":OUTP {value}", query=":OUTP?", parse=zero_one, format=on_off)
    off_mode = Setting("output-off mode", set=":OUTP:SMOD {value}", query=":OUTP:SMOD?",
                       parse=word(*OFF_MODES), format=text, check=one_of(OFF_MODES))
    # The quantities, as the dialect's manual writes them (filled in by each dialect).
    volts: Setting
    amps: Setting
    current_limit: Setting               # the compliance while sourcing volts
    voltage_limit: Setting               # the compliance while sourcing current
    reading: Setting
    # Confirms that the lines before it were executed (both manuals, IEEE 488.2).
    complete = Setting("operation complete", query="*OPC?", parse=done)

    def __init__(self, transport: Transport, limits: SourceLimits, *, name: str | None = None,
                 measure_timeout_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        """``limits`` are checked against the model's hardware range here; ``measure_timeout_s``
        overrides the transport timeout for the measurement query (slow integration times);
        ``clock`` and ``sleep`` time the relay's settling (tests pass fakes)."""
        self.transport = transport
        self.name = name or transport.name
        self.limits = limits
        for function, key in (("VOLT", "max_volts"), ("CURR", "max_amps")):
            if getattr(limits, key) > self.HARDWARE[function]:
                raise LimitError(self.name, f"limits.{key} = {getattr(limits, key)} exceeds what "
                                 f"the {self.MODEL} can source ({self.HARDWARE[function]})")
        self.measure_timeout_s = measure_timeout_s
        self._clock, self._sleep = clock, sleep
        # What the driver knows of the instrument; None until read or set.
        self._function: str | None = None
        self._level: float | None = None
        self._compliance: float | None = None
        self._output: bool | None = None
        self._off_mode: str | None = None
        self._compliance_set = False  # compliance written by this driver for _function
        self._settled_at = 0.0        # clock time the output relay has settled
        self._pulsing = False         # source auto clear on (Keithley2400.configure_pulses)

    # -- the declarations per source function --------------------------------------------------
    def level(self, function: str):
        """The level quantity of ``function`` ('VOLT' -> volts, 'CURR' -> amps), bound."""
        return self.volts if function == "VOLT" else self.amps

    def limit(self, function: str):
        """The compliance quantity of ``function`` (amps when sourcing volts), bound."""
        return self.current_limit if function == "VOLT" else self.voltage_limit

    # -- identity and housekeeping ------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"{self.name} ({self.MODEL})"

    def identify(self) -> Identity:
        """Read ``*IDN?``; raise ProtocolError if the model is not one this dialect drives. The
        reply becomes the transport's re-synchronisation marker."""
        reply = self.transport.query("*IDN?")
        identity = parse_identity(self.label, reply)
        model = identity.model.upper().removeprefix("MODEL").strip()
        if model not in self.MODELS:
            raise ProtocolError(self.label, f"*IDN? names model {identity.model!r}; this driver "
                                            f"drives {sorted(self.MODELS)}")
        self.transport.set_marker("*IDN?", reply)
        self.check_command_set()
        return identity

    def check_command_set(self) -> None:
        """Dialects whose instrument has several command sets check the active one here."""

    def reset(self) -> None:
        """``*RST`` and ``*CLS`` (output off, source volts at 0), then the dialect's setup.
        The compliance must be configured again before the output can be switched on."""
        with self.transport.lock:
            for command in self.RESET + self.SETUP:
                self.transport.write(command)
            self._function, self._level, self._output = "VOLT", 0.0, False
            # *RST selects the normal output-off state (both manuals).
            self._compliance, self._compliance_set, self._off_mode = None, False, "NORM"
            self._pulsing = False  # *RST turns source auto clear off
            self.check_errors()

    # -- source settings -----------------------------------------------------------------------
    def configure(self, function: str, compliance: float) -> None:
        """Select the source ``function`` ('VOLT' or 'CURR') at level 0 and its compliance
        (amps when sourcing volts, volts when sourcing current). The output must be off."""
        function = self.function.checked(function)
        compliance = self._check_compliance(function, compliance, level=0.0)
        with self.transport.lock:
            if self._output_is_on():
                raise InstrumentError(self.label, "the output is on; call safe_state() before "
                                                  "changing the source function")
            self.function.write(function)
            self.level(function).write(0.0)
            self.limit(function).write(compliance)
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
            self.limit(function).write(compliance)
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
                self.level(function).write(level)
            self._level = level

    def output_on(self) -> None:
        """Switch the output on: at level 0, then ramp to the programmed level."""
        function = self._configured()
        with self.transport.lock:
            if self._output_is_on():
                return
            target = self._known_level(function)
            if target != 0.0:
                self.level(function).write(0.0)
            self.output.write(True)
            self._output, self._level = True, 0.0
            self.restart_settling()
            self._ramp(function, 0.0, target)
            self._level = target

    def set_output_off_mode(self, mode: str) -> None:
        """What the terminals are while the output is off (both manuals, ``:OUTPut:SMODe``):
        'HIMP' opens the output relay (an open circuit), 'NORM' (the *RST default) sources 0 V
        with a small current limit, 'ZERO' 0 V, 'GUAR' 0 A. A bench that uses 'output off' as
        an open circuit must select 'HIMP'."""
        with self.transport.lock:
            self._off_mode = self.off_mode.write(mode)

    def output_off(self) -> None:
        """Ramp to 0, then switch the output off. The programmed level stays 0."""
        with self.transport.lock:
            function = self._function or self._read_function()
            if self._output_is_on():
                self._ramp(function, self._known_level(function), 0.0)
            self.output.write(False)
            self._output = False
            if self._known_level(function) != 0.0:
                self.level(function).write(0.0)
            self._level = 0.0

    # -- the output relay -------------------------------------------------------------------------
    @property
    def settle_s(self) -> float:
        """Time the terminals need after ``:OUTP ON`` before a measurement means anything."""
        return self.RELAY_SETTLE_S if self._off_mode in (None, "HIMP") else 0.0

    def restart_settling(self) -> None:
        """Start the settling time now (the bench calls it once a joined line carrying
        ``:OUTP ON`` has been executed, which is later than the driver queued it)."""
        if self._output:
            self._settled_at = self._clock() + self.settle_s

    def wait_settled(self) -> None:
        """Return once the output relay has settled (at once if nothing is settling)."""
        remaining = self._settled_at - self._clock()
        if remaining > 0:
            self._sleep(remaining)

    # -- measuring --------------------------------------------------------------------------
    def measure(self) -> SmuReading:
        """Volts and amps at the terminals in one query. Raises ComplianceError if the source
        was limited by its compliance, ReadingError for an overrange or NaN value."""
        function = self._configured()
        with self.transport.lock:
            if not self._output_is_on():
                raise InstrumentError(self.label, "the output is off; switch it on before "
                                                  "measuring")
            self.wait_settled()
            values = self.reading.read(timeout_s=self.measure_timeout_s)
        return self._reading(values, function)

    def measure_then_off(self) -> SmuReading:
        """One measurement, then the output ramped to 0 and off. Where the transport joins lines
        (drivers/instruments/exchanges.py) the switch-off travels in the same line, after the
        measurement query, so it costs no exchange of its own; elsewhere it follows."""
        function = self._configured()
        capture = getattr(self.transport, "capture", None)
        if capture is None:
            try:
                return self.measure()
            finally:
                self.output_off()
        with self.transport.lock:
            if not self._output_is_on():
                raise InstrumentError(self.label, "the output is off; switch it on before "
                                                  "measuring")
            self.wait_settled()
            with capture() as tail:
                self.output_off()
            reply = self.transport.query(self.reading.setting.query, timeout_s=self.measure_timeout_s,
                                         then=tail)
        return self._reading(self.reading.parse(reply), function)

    def _reading(self, values: list[float], function: str) -> SmuReading:
        """The checks of measure(): ReadingError for overrange or NaN, ComplianceError for a
        reading taken while the source was limited."""
        reading, overflow = self.read_reading(values, function)
        for what, value, unit in (("volts", reading.volts, "V"), ("amps", reading.amps, "A")):
            if math.isnan(value) or abs(value) >= OVERRANGE * 0.99 or overflow:
                raise ReadingError(self.label, f"{what} reading {value:g} {unit} is overrange or "
                                               f"not a number (reply {values})")
        if reading.in_compliance:
            limit = self._compliance
            what = "current compliance" if function == "VOLT" else "voltage compliance"
            unit = "A" if function == "VOLT" else "V"
            raise ComplianceError(self.label, f"reading taken in compliance ({reading.volts:g} V, "
                                              f"{reading.amps:g} A; {what} {limit:g} {unit})",
                                  reading)
        return reading

    def read_reading(self, values: list[float], function: str) -> tuple[SmuReading, bool]:
        """(reading, overflow flag) from the measurement reply's three numbers. Dialect-specific."""
        raise NotImplementedError

    # -- state and safe state -------------------------------------------------------------------
    def read_state(self) -> SourceStatus:
        """Ask the instrument what it sources: function, that function's level, output."""
        with self.transport.lock:
            function = self._read_function()
            level = self.level(function).read()
            output = self.output.read()
        self._output = output
        return SourceStatus(function, level, output)

    def unsafe(self) -> list[str]:
        """What is not safe now, read from the instrument: empty when the output is off at 0."""
        status = self.read_state()
        return [] if status.safe else [f"{self.name}: {status.describe()}"]

    def safe_state(self) -> None:
        """Level to 0 by ramp, output off, confirmed by ``*OPC?`` (a line written is not yet a
        line executed). Reads the instrument's actual state first (a previous run may have left
        it on), skips every limit but the ramp step, always attempts the switch-off, and is
        idempotent."""
        with self.transport.lock:
            try:
                function = self._read_function()
                level = self.level(function).read()
                if self.output.read() and level != 0.0:
                    self._ramp(function, level, 0.0, check=False)
                    level = 0.0
            finally:
                self._output = None  # unknown until the switch-off is known to have been sent
                self.output.write(False)
                self._output = False
            if level != 0.0:
                self.level(function).write(0.0)
            self._level = 0.0
            self.complete.read()

    # -- internals -----------------------------------------------------------------------------
    def _configured(self) -> str:
        if not self._compliance_set or self._function is None:
            raise InstrumentError(self.label, "no source function and compliance configured; "
                                              "call configure() first")
        return self._function

    def _check_compliance(self, function: str, compliance, level: float) -> float:
        compliance = self.limit(function).checked(compliance)
        self._check_power(abs(level) * compliance, level, compliance)
        return compliance

    def _check_level(self, function: str, level) -> float:
        level = self.level(function).checked(level)
        self._check_power(abs(level) * self._compliance, level, self._compliance)
        return level

    def _check_power(self, watts: float, level: float, compliance: float) -> None:
        if watts > self.limits.max_watts:
            raise LimitError(self.label, f"worst-case power |level| x compliance = {abs(level):g} x "
                                         f"{compliance:g} = {watts:g} W exceeds the limit "
                                         f"{self.limits.max_watts:g} W; nothing was sent")

    def _ramp(self, function: str, start: float, stop: float, check: bool = True) -> None:
        """Steps no larger than the ramp step, written back to back: the instrument executes
        them in order at its own pace. ``check=False`` (safe state only) starts from a level
        someone else left, which may lie beyond this bench's limits; such a ramp keeps the
        ramp step unless that would exceed MAX_RAMP_STEPS, and then takes MAX_RAMP_STEPS."""
        step = self.limits.ramp_volts if function == "VOLT" else self.limits.ramp_amps
        if not check:
            step = max(step, abs(stop - start) / MAX_RAMP_STEPS)
        try:
            points = ramp_points(start, stop, step)
        except ValueError as exc:
            raise LimitError(self.label, f"{exc}; nothing was sent") from None
        lines = [self.level(function).command(point, check=check) for point in points]
        for line, point in zip(lines, points):
            self.transport.write(line)
            self._level = point

    def _known_level(self, function: str) -> float:
        if self._level is None:
            self._level = self.level(function).read()
        return self._level

    def _output_is_on(self) -> bool:
        if self._output is None:
            self._output = self.output.read()
        return self._output

    def _read_function(self) -> str:
        function = self.function.read()
        if function != self._function:
            self._function, self._compliance_set, self._level = function, False, None
        return function


class Keithley2400(KeithleySourceMeter):
    """Keithley 2400 SourceMeter (2400 series SCPI)."""

    MODEL = "Keithley 2400"
    MODELS = frozenset({"2400"})
    HARDWARE = {"VOLT": 210.0, "CURR": 1.05}
    # Concurrent V and I measurement, and a :READ? that returns exactly V, I and the status word.
    SETUP = (":SENS:FUNC:CONC ON", ':SENS:FUNC:ON "VOLT","CURR"', ":FORM:ELEM VOLT,CURR,STAT")
    # 2400 manual, output-off states: with HIGH IMPEDANCE the output relay opens at output off,
    # and there is a settling time of about 15 ms for the relay when the output is turned on.
    RELAY_SETTLE_S = 0.015
    volts = Setting("source volts", set=":SOUR:VOLT:LEV {value}", query=":SOUR:VOLT:LEV?",
                    parse=finite_number, unit="V", check=level_within("max_volts", "V"))
    amps = Setting("source amps", set=":SOUR:CURR:LEV {value}", query=":SOUR:CURR:LEV?",
                   parse=finite_number, unit="A", check=level_within("max_amps", "I"))
    # Compliance is the limit on the measured quantity, set on the sense side.
    current_limit = Setting("current compliance", set=":SENS:CURR:PROT {value}",
                            query=":SENS:CURR:PROT?", parse=finite_number, unit="A",
                            check=positive_within("max_amps", "I"))
    voltage_limit = Setting("voltage compliance", set=":SENS:VOLT:PROT {value}",
                            query=":SENS:VOLT:PROT?", parse=finite_number, unit="V",
                            check=positive_within("max_volts", "V"))
    reading = Setting("reading (V, I, status)", query=":READ?", parse=numbers(3))
    STATUS_OVERFLOW = 1 << 0
    STATUS_COMPLIANCE = 1 << 3
    STATUS_RANGE_COMPLIANCE = 1 << 16

    def read_reading(self, values: list[float], function: str) -> tuple[SmuReading, bool]:
        volts, amps, status = values
        if not math.isfinite(status) or status < 0 or status >= 2 ** 24:
            raise ProtocolError(self.label, f"status word {status!r} in {values} is not a "
                                            "24-bit integer")
        word_ = int(status)
        limited = bool(word_ & (self.STATUS_COMPLIANCE | self.STATUS_RANGE_COMPLIANCE))
        return SmuReading(volts, amps, limited), bool(word_ & self.STATUS_OVERFLOW)

    # -- pulses: the output on only for each reading (2400 manual, "source auto clear") ---------
    # With :SOUR:CLE:AUTO ON a :READ? switches the output on, waits the source delay, integrates
    # for NPLC power-line cycles, and switches it off again: a voltage pulse of that width whose
    # reading is the current during the pulse. Between readings the output is off, in the
    # output-off state the bench selects.
    auto_off = Setting("source auto clear", set=":SOUR:CLE:AUTO {value}", query=":SOUR:CLE:AUTO?",
                       parse=zero_one, format=on_off, check=boolean)
    source_delay = Setting("source delay", set=":SOUR:DEL {value}", query=":SOUR:DEL?", parse=finite_number,
                           unit="s", check=within(0.0, 999.9999, "s"))
    nplc = Setting("integration time", set=":SENS:CURR:NPLC {value}", query=":SENS:CURR:NPLC?",
                   parse=finite_number, unit="NPLC", check=within(0.01, 10.0, "NPLC"))
    line_frequency = Setting("power-line frequency", query=":SYST:LFR?", parse=finite_number, unit="Hz")

    def configure_pulses(self, compliance_amps: float, delay_s: float, nplc: float) -> None:
        """Voltage pulses of source delay ``delay_s`` plus ``nplc`` cycles of integration, the
        current limited to ``compliance_amps``; the output off between them. Output off first."""
        compliance = self._check_compliance("VOLT", compliance_amps, level=0.0)
        delay_s = self.source_delay.checked(delay_s)
        nplc = self.nplc.checked(nplc)
        with self.transport.lock:
            if self._output_is_on():
                raise InstrumentError(self.label, "the output is on; call safe_state() before configuring pulses")
            self.function.write("VOLT")
            self.volts.write(0.0)
            self.current_limit.write(compliance)
            self.source_delay.write(delay_s)
            self.nplc.write(nplc)
            self.auto_off.write(True)
            self._function, self._level, self._compliance = "VOLT", 0.0, compliance
            self._compliance_set, self._pulsing = True, True
            self.check_errors()

    def pulse(self, volts: float) -> SmuReading:
        """One pulse of ``volts`` (checked against max_volts and max_watts before any byte; 0 V
        is a current measurement at 0 V): the level, the reading, and the level back to 0, in
        one exchange where the transport joins lines. Returns the reading during the pulse,
        compliance flag included (a limited pulse is data, not an error); ReadingError for an
        overrange or NaN value."""
        if not self._pulsing:
            raise InstrumentError(self.label, "pulses are not configured; call configure_pulses() first")
        volts = self._check_level("VOLT", volts)
        capture = getattr(self.transport, "capture", None)
        with self.transport.lock:
            if capture is None:
                self.volts.write(volts)
                try:
                    reply = self.transport.query(self.reading.setting.query, timeout_s=self.measure_timeout_s)
                finally:
                    self.volts.write(0.0)
            else:
                self.volts.write(volts)
                with capture() as tail:
                    self.volts.write(0.0)
                reply = self.transport.query(self.reading.setting.query, timeout_s=self.measure_timeout_s,
                                             then=tail)
            self._level = 0.0
        reading, overflow = self.read_reading(self.reading.parse(reply), "VOLT")
        for what, value in (("volts", reading.volts), ("amps", reading.amps)):
            if math.isnan(value) or abs(value) >= OVERRANGE * 0.99 or overflow:
                raise ReadingError(self.label, f"pulse {what} reading {value:g} is overrange or not a number")
        return reading


class Keithley2450(KeithleySourceMeter):
    """Keithley 2450 Interactive SourceMeter (its SCPI command set, not the 2400 emulation)."""

    MODEL = "Keithley 2450"
    MODELS = frozenset({"2450"})
    HARDWARE = {"VOLT": 210.0, "CURR": 1.05}
    volts = Setting("source volts", set=":SOUR:VOLT {value}", query=":SOUR:VOLT?",
                    parse=finite_number, unit="V", check=level_within("max_volts", "V"))
    amps = Setting("source amps", set=":SOUR:CURR {value}", query=":SOUR:CURR?",
                   parse=finite_number, unit="A", check=level_within("max_amps", "I"))
    # The source limits (the 2450's name for compliance) belong to the source function.
    current_limit = Setting("current compliance", set=":SOUR:VOLT:ILIM {value}",
                            query=":SOUR:VOLT:ILIM?", parse=finite_number, unit="A",
                            check=positive_within("max_amps", "I"))
    voltage_limit = Setting("voltage compliance", set=":SOUR:CURR:VLIM {value}",
                            query=":SOUR:CURR:VLIM?", parse=finite_number, unit="V",
                            check=positive_within("max_volts", "V"))
    reading = Setting("reading (source, sense, source status)",
                      query=':READ? "defbuffer1",SOUR,READ,SOURSTAT', parse=numbers(3))
    # The command set answering remote commands (2450 reference manual, *LANG; stored in
    # nonvolatile memory, takes effect at the next power-up).
    language = Setting("command set", query="*LANG?", parse=word("SCPI2400", "SCPI", "TSP"))
    # Sense the quantity that is not sourced; the source quantity comes from SOUR (readback).
    SENSE = {"VOLT": ':SENS:FUNC "CURR"', "CURR": ':SENS:FUNC "VOLT"'}
    SOURCE_LIMITED = 1 << 5  # buffer.STAT_LIMIT
    SWITCH_HINT = ("switch it to SCPI on the front panel (MENU > System > Settings > Command Set > "
                   "SCPI) or by sending *LANG SCPI, then power-cycle it: the command set changes "
                   "at the next power-up")

    def check_command_set(self) -> None:
        try:
            language = self.language.read()
        except InstrumentTimeout:
            raise ProtocolError(self.label, "no answer to *LANG?: the 2450 may be in the TSP command "
                                            "set, which ignores this driver's SCPI commands "
                                            f"(including :OUTP OFF); {self.SWITCH_HINT}") from None
        if language != "SCPI":
            raise ProtocolError(self.label, f"*LANG? answers {language!r}: the 2450 runs the "
                                            f"{language} command set, in which it answers *IDN? "
                                            "but ignores this driver's SCPI commands (including "
                                            f":OUTP OFF); {self.SWITCH_HINT}")

    def read_reading(self, values: list[float], function: str) -> tuple[SmuReading, bool]:
        source, sensed, status = values
        if not math.isfinite(status) or status < 0 or status >= 2 ** 16:
            raise ProtocolError(self.label, f"source status {status!r} in {values} is not a "
                                            "16-bit integer")
        limited = bool(int(status) & self.SOURCE_LIMITED)
        if function == "VOLT":
            return SmuReading(volts=source, amps=sensed, in_compliance=limited), False
        return SmuReading(volts=sensed, amps=source, in_compliance=limited), False
