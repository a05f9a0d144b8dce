"""A source-measure unit wired to one edge, as the Bench drives it.

Sign conventions (hwlearn.network): edge k runs from node a to node b, its resistor voltage is
v = p[a] - p[b] - s and its series source s has its positive terminal facing a. A unit reports
volts across HI-LO and amps leaving HI; ``polarity`` is +1 when HI is at the a node, -1 when LO
is. Hence, for a unit of polarity P:

    input (in series)      series source s        ->  source volts  P * s
    output, clamp          resistor voltage v      ->  source volts  P * v
    output, current        j from a to b beside    ->  source amps  -P * j   (a current leaving
                           the resistor                               HI enters the a node when
                                                                      P = +1, i.e. j = -I)
    output, open           no drive                ->  0 A with the output on when the unit
                                                       sources current (no relay operation),
                                                       the output off (high impedance) when it
                                                       sources volts

The unit keeps the state the Bench asked for (``requested``) and the state the instrument has
(``applied``); ``apply()`` moves the instrument from one to the other through the driver, which
checks every limit and ramps every level change.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

from drivers.instruments.errors import ComplianceError, ReadingError
from drivers.instruments.exchanges import JoiningTransport
from drivers.instruments.keithley24xx import KeithleySourceMeter, SmuReading
from hwlearn.config.bench import InstrumentConfig, SourceWire
from hwlearn.supervision import ReadingRefused


@dataclass(frozen=True)
class SourceState:
    """What a unit sources: function 'VOLT' or 'CURR', level (V or A at its terminals), on."""

    function: str
    level: float
    on: bool

    def describe(self) -> str:
        if not self.on:
            return "output off"
        unit = "V" if self.function == "VOLT" else "A"
        return f"{self.level:g} {unit}"


# What a unit is after a transition failed half-way: equal to no state, so it is always pending,
# and of no function, so the next transition switches off and configures afresh.
UNKNOWN = SourceState("unknown", math.nan, True)


class SourceUnit:
    """One source-measure unit on one edge. ``role`` is 'input' or 'output'."""

    def __init__(self, role: str, wire: SourceWire, config: InstrumentConfig,
                 driver: KeithleySourceMeter, transport: JoiningTransport):
        self.role = role
        self.wire = wire
        self.config = config
        self.driver = driver
        self.transport = transport
        self.name = config.name
        self.edge = wire.edge
        self.polarity = wire.polarity
        self.compliance = {"VOLT": config["compliance_amps"], "CURR": config["compliance_volts"]}
        # Inputs source volts; outputs start as open current sources if they can, else as an
        # output that is off (a voltage-only output unit).
        function = "VOLT" if role == "input" or self.compliance["CURR"] is None else "CURR"
        self.applied = self.requested = SourceState(function, 0.0, False)
        self.requested = self.rest_state()
        self.last_reading: SmuReading | None = None  # the last check's answer, for displays

    @property
    def label(self) -> str:
        return f"{self.name} ({self.driver.MODEL}, {self.role} {self.wire.edge_name})"

    # -- what the Bench asks for ------------------------------------------------------------
    def rest_state(self) -> SourceState:
        """Inputs at 0 V (a short, still connected); outputs open."""
        return SourceState("VOLT", 0.0, True) if self.role == "input" else self.open_state()

    def open_state(self) -> SourceState:
        """Open keeps the function last asked for: a switch of function costs a configuration."""
        return self.open_state_for(self.requested.function)

    def series_state(self, volts: float) -> SourceState:
        return SourceState("VOLT", self.polarity * volts + 0.0, True)

    def current_state(self, amps: float) -> SourceState:
        return SourceState("CURR", -self.polarity * amps + 0.0, True)

    def clamp_state(self, volts: float) -> SourceState:
        return SourceState("VOLT", self.polarity * volts + 0.0, True)

    def limit_problem(self, state: SourceState) -> str | None:
        """Why ``state`` is not allowed (the driver's own rules, checked before any I/O), or
        None. Also the worst-case power, which the Bench sums over the units."""
        if not state.on:
            return None
        compliance = self.compliance[state.function]
        if compliance is None:
            key = "compliance_amps" if state.function == "VOLT" else "compliance_volts"
            return (f"sourcing {'volts' if state.function == 'VOLT' else 'current'} needs "
                    f"instruments.{self.name}.{key}, which the bench file does not set")
        limit_key, unit = ("max_volts", "V") if state.function == "VOLT" else ("max_amps", "A")
        limit = self.config[limit_key]
        if abs(state.level) > limit:
            return f"{state.level:g} {unit} exceeds {limit_key} = {limit:g} {unit}"
        watts = self.worst_case_watts(state)
        if watts > self.config["max_watts"]:
            return (f"{abs(state.level):g} {unit} x compliance {compliance:g} = {watts:g} W exceeds "
                    f"max_watts = {self.config['max_watts']:g} W")
        return None

    def worst_case_watts(self, state: SourceState) -> float:
        if not state.on:
            return 0.0
        return abs(state.level) * (self.compliance[state.function] or 0.0)

    # -- what the instrument does -----------------------------------------------------------
    @property
    def pending(self) -> bool:
        return self.requested != self.applied

    @property
    def switches_on(self) -> bool:
        """The pending transition closes the output (and, in the high-impedance off state, its
        relay, which then needs time to settle)."""
        return self.requested.on and not self.applied.on

    @property
    def needs_query(self) -> bool:
        """A unit sourcing volts is in compliance when its current reaches the limit, which only
        the unit itself can tell: it must be asked after every measurement's last change."""
        return self.requested.on and self.requested.function == "VOLT"

    def setup(self) -> None:
        """Identity is read before; here: reset to a known state from whatever a previous
        session left (ramped down first), output-off state high impedance, compliance set."""
        d = self.driver
        with self.transport.batch():
            d.safe_state()
            d.reset()
            d.set_output_off_mode("HIMP")
            d.configure(self.applied.function, self.compliance[self.applied.function])

    def doubt(self) -> None:
        """After a timeout on this unit's link: what it holds is not known, so the next apply()
        starts over from a switch-off and a fresh configuration."""
        self.applied = UNKNOWN

    def forget(self) -> None:
        """After setup() on a reconnected instrument: it rests off at 0, and the state asked
        for is still to be applied."""
        self.applied = SourceState(self.applied.function, 0.0, False)

    def apply(self) -> None:
        """Send (into the current batch) what takes the instrument from ``applied`` to
        ``requested``: a ramp, a switch on or off, or a change of source function. If this
        fails half-way, the instrument's state is unknown: the next apply() starts over from
        a switch-off and a fresh configuration."""
        try:
            self._transition()
        except BaseException:
            self.applied = UNKNOWN
            raise
        self.applied = self.requested

    def _transition(self) -> None:
        want, have, d = self.requested, self.applied, self.driver
        if not want.on:
            if have.on or have.level != 0.0:
                d.output_off()
        else:
            if have.function != want.function:
                if have.on:
                    d.output_off()
                d.configure(want.function, self.compliance[want.function])
                have = SourceState(want.function, 0.0, False)
            if have.on:
                d.set_level(want.level)
            else:
                if want.level != have.level:
                    d.set_level(want.level)   # one write: the terminals are open
                d.output_on()                 # at 0, then a ramp to the level

    def confirm(self) -> None:
        """End the batch with the error queue: proves execution and that nothing was refused."""
        self.driver.check_errors()

    def check(self, *, release: bool = False) -> SmuReading:
        """Ask the unit whether it is in compliance (and for volts and amps). With ``release``,
        the same line then switches the output off (ramped): the drive has served its
        measurement, and the next 'open' costs no further exchange."""
        d = self.driver
        function, sourcing = self.applied.function, self.applied.describe()
        try:
            if release:
                # Off once the line has gone out, whatever the reading says.
                self.applied = self.open_state_for(function)
                self.last_reading = d.measure_then_off()
            else:
                self.last_reading = d.measure()
            return self.last_reading
        except ComplianceError as exc:
            raise ReadingRefused(f"measure: {self.label} is in compliance sourcing {sourcing}: {exc}; "
                                 "no value is returned", "compliance") from exc
        except ReadingError as exc:
            raise ReadingRefused(f"measure: {self.label} reads an overrange or NaN value: {exc}; no "
                                 "value is returned", "overrange") from exc

    @staticmethod
    def open_state_for(function: str) -> SourceState:
        return SourceState(function, 0.0, function == "CURR")

    def current_mode_problem(self, resistor_volts: float, margin: float) -> str | None:
        """A unit sourcing current across an output resistor is in compliance exactly when the
        voltage across its terminals, which the scan read across the same resistor, has reached
        its voltage limit. None if the scan proves it is not."""
        limit = self.compliance["CURR"]
        if not math.isfinite(resistor_volts) or abs(resistor_volts) >= (1.0 - margin) * limit:
            return (f"{self.label} sources {self.applied.describe()} and the scan reads "
                    f"{resistor_volts:g} V across it, within {margin:.0%} of its voltage limit "
                    f"{limit:g} V: in compliance")
        return None

    def safe_state(self) -> None:
        """The driver's safe state in one joined line. If it fails (the unit does not answer),
        ``:OUTP OFF`` is still sent on its own, for an instrument that hears but cannot reply."""
        self.transport.discard()
        try:
            with self.transport.batch():
                self.driver.safe_state()
        except BaseException:
            self.applied = UNKNOWN
            with contextlib.suppress(Exception):
                self.driver.output.write(False)
            raise
        self.applied = SourceState(self.applied.function, 0.0, False)
        self.requested = self.rest_state()

