"""The bench file's [crossbar] table: a crossbar on a switch matrix, programmed by pulses.

    [crossbar]
    matrix = "matrix"          # the switch matrix instrument (keithley707b or scpi_switch)
    programmer = "prog"        # the source-measure unit that pulses (a keithley2400)
    ...                        # pulse limits, the device window, the read voltage (CROSSBAR below)

    [crossbar.lines]           # every line the bench reaches: its voltmeter channel (line to
    in0 = { sense = 101, unit = "1A01", prog = "1H01" }   # ground), the matrix channel to its
    out0 = { sense = 109, unit = "2B01" }                 # port unit, the one to the programming bus

Matrix channels are slot-row-column names (``1A01``: slot 1, row A, column 01). A matrix row is
one bus: a port unit's path (the unit and its edge's resistor) or the programming bus (the
programmer's HI; it may be wired to one row of every card); a column is one line's pin, so all
channels of a line share its column. What the wiring allows follows from this table
(docs/crossbar.md): a crosspoint is readable when both its lines are sensed; it is tunable when
one of its lines can reach the programming bus while the other line's unit holds it (an input
unit, or an output unit with compliance_amps, which can clamp). Port lines (a line whose edge is
an input or output) must name their unit channel: the bench connects every port unit through
the matrix when it opens, and disconnects the programming line's while pulses run.

Limits checked here, before any instrument is opened: the half-selected devices of the V/2
scheme see at most half the largest pulse, which must stay below ``disturb_volts``, as must the
read voltage; the programmer and every holding unit can source half the largest pulse; the
programmer's compliance and power fit its limits.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hwlearn.config.schema import REQUIRED, Field, Section
from hwlearn.crossbar import CrossbarLayout, LineAccess, PulseLimits, carriers
from hwlearn.errors import ConfigError, HwlearnError
from hwlearn.network import Network

MATRIX_DRIVERS = ("keithley707b", "scpi_switch")
PROGRAMMER_DRIVERS = ("keithley2400",)  # pulses by source auto clear (drivers/instruments/keithley24xx.py)
MATRIX_CARDS_707B = {"7174A": (8, 12), "7072": (8, 12)}
ROW_LETTERS = "ABCDEFGH"
_CHANNEL = re.compile(r"([1-9])([A-H])(\d\d)$")
_SIZE = re.compile(r"([1-8])x(\d{1,2})$")
NPLC_RANGE = (0.01, 10.0)            # the 2400's integration times
LOWEST_MAINS_HZ = 50.0


def _positive(doc: str, default=REQUIRED, **kw) -> Field:
    return Field("float", default, doc, minimum=0.0, exclusive_minimum=True, **kw)


CROSSBAR = Section({
    "matrix": Field("str", REQUIRED, "the switch matrix (an [instruments] name, driver keithley707b or scpi_switch)"),
    "programmer": Field("str", REQUIRED, "the source-measure unit that sends the pulses (driver keithley2400)"),
    "set_volts": Field("list[float]", REQUIRED, "lowest and highest SET pulse amplitude, device volts",
                       minimum=0.0, exclusive_minimum=True, maximum=210.0),
    "reset_volts": Field("list[float]", REQUIRED, "lowest and highest RESET pulse amplitude (applied negative), "
                         "device volts", minimum=0.0, exclusive_minimum=True, maximum=210.0),
    "step_volts": _positive("amplitude change from one pulse to the next, volts", 0.05, maximum=10.0),
    "pulse_width_s": _positive("width of every pulse: the programmer's source delay plus its integration, seconds",
                               1e-3, maximum=100.0),
    "pulse_nplc": Field("float", 0.01, "the programmer's integration during a pulse, power-line cycles",
                        minimum=NPLC_RANGE[0], maximum=NPLC_RANGE[1]),
    "max_pulses": Field("int", 20, "pulses one write may make", minimum=1, maximum=1000),
    "stall_pulses": Field("int", 4, "pulses at the highest amplitude without progress before a device is "
                          "given up as stuck", minimum=1, maximum=1000),
    "tolerance": Field("float", 0.01, "a write is done within this fraction of the device window of its target",
                       minimum=1e-6, maximum=0.5),
    "read_volts": _positive("device voltage of a verify read, volts", 0.2, maximum=10.0),
    "disturb_volts": _positive("the largest voltage a device may see outside a pulse (below its switching "
                               "threshold): half-selected devices, reads, and every training drive", maximum=210.0),
    "compliance_amps": _positive("the programmer's current limit during pulses and reads", maximum=1.05),
    "g_min": _positive("lowest conductance the bench programs, siemens"),
    "g_max": _positive("highest conductance the bench programs, siemens"),
    "calibration": Field("str", None, "a characterisation's calibration file (hwlearn bench characterise), "
                         "relative to the bench file: per-device windows, and the device model the twin uses"),
}, doc="a crossbar on a switch matrix, programmed by pulses")

LINE = Section({
    "sense": Field("int", None, "the voltmeter channel reading the line to ground (slot x 100 + n)"),
    "unit": Field("str", None, "the matrix channel joining the line to its port unit (slot-row-column)"),
    "prog": Field("str", None, "the matrix channel joining the line to the programming bus"),
})

# [virtual.devices]: the devices of the virtual crossbar (simulator/memristor.py); a real bench
# ignores it.
VIRTUAL_DEVICES = Section({
    "g_min": _positive("lower end of a typical device's window, siemens", 2e-5),
    "g_max": _positive("upper end of a typical device's window, siemens", 2e-4),
    "pulses": _positive("reference pulses that take a device across its window", 40.0),
    "nu_set": Field("float", 3.0, "nonlinearity of SET (0: linear)", minimum=0.0, maximum=30.0),
    "nu_reset": Field("float", 5.0, "nonlinearity of RESET (0: linear)", minimum=0.0, maximum=30.0),
    "c2c": Field("float", 0.005, "cycle-to-cycle std of a reference pulse's change, fraction of the window",
                 minimum=0.0, maximum=0.5),
    "d2d": Field("float", 0.1, "device-to-device log-normal spread of each parameter", minimum=0.0, maximum=1.0),
    "stuck_fraction": Field("float", 0.0, "share of devices stuck at either end", minimum=0.0, maximum=1.0),
    "set_threshold_volts": _positive("SET threshold: below it a pulse does nothing", 1.0),
    "reset_threshold_volts": _positive("RESET threshold (magnitude)", 1.0),
    "reference_volts": _positive("amplitude of the reference pulse (one step)", 1.5),
    "reference_width_s": _positive("width of the reference pulse", 1e-3),
    "exponent": _positive("a pulse's strength grows as ((|v| - threshold) / (reference - threshold))^exponent", 2.0),
    "initial": Field("float", 0.5, "initial conductance, fraction of each device's window", minimum=0.0,
                     maximum=1.0),
    "seed": Field("int", 0, "seed of the device draws and of the cycle-to-cycle noise", minimum=0),
}, doc="the emulated crossbar's devices (virtual bench only)")


@dataclass(frozen=True, order=True)
class MatrixChannel:
    slot: int
    row: int
    column: int

    @property
    def name(self) -> str:
        return f"{self.slot}{ROW_LETTERS[self.row - 1]}{self.column:02d}"


@dataclass(frozen=True)
class LineWire:
    """One line as the bench reaches it. ``unit``: the port unit on the line (an [instruments]
    name) and ``role`` ('input' / 'output'), None for a line without one."""

    line: str
    node: int
    sense: int | None
    unit_channel: str | None
    prog_channel: str | None
    unit: str | None
    role: str | None
    port_edge: int | None


@dataclass(frozen=True)
class CrossbarConfig:
    """A validated [crossbar] table and what follows from it."""

    matrix: str
    programmer: str
    limits: PulseLimits
    pulse_nplc: float
    read_volts: float
    disturb_volts: float
    compliance_amps: float
    g_min: float
    g_max: float
    lines: Mapping[str, LineWire]
    access: Mapping[str, LineAccess]
    readable: tuple[int, ...]
    tunable: tuple[int, ...]
    sensed: Mapping[int, tuple[str | None, str | None]]  # readable edge -> (plus line, minus line)
    layers: Mapping[str, int]
    calibration_path: str | None = None
    calibration: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # edge name -> fitted

    @property
    def channels(self) -> tuple[str, ...]:
        """Every matrix channel the wiring names."""
        return tuple(c for w in self.lines.values() for c in (w.unit_channel, w.prog_channel) if c)

    def window(self, edge_name: str) -> tuple[float, float]:
        """(g_min, g_max) the bench programs edge ``edge_name`` within: the calibration's fitted
        window where it has one (narrowed to the bench's), else the bench's."""
        fitted = self.calibration.get(edge_name)
        if not fitted or fitted.get("stuck"):
            return self.g_min, self.g_max
        return max(self.g_min, float(fitted["g_min"])), min(self.g_max, float(fitted["g_max"]))


def parse_matrix_channel(text) -> MatrixChannel | None:
    match = _CHANNEL.match(text) if isinstance(text, str) else None
    if match is None:
        return None
    return MatrixChannel(int(match.group(1)), ROW_LETTERS.index(match.group(2)) + 1, int(match.group(3)))


def matrix_card_size(model: str, driver: str) -> tuple[int, int] | None:
    if driver == "keithley707b":
        return MATRIX_CARDS_707B.get(model)
    match = _SIZE.match(model)
    if match is None or not 1 <= int(match.group(2)) <= 99:
        return None
    return int(match.group(1)), int(match.group(2))


def check_crossbar(checker, doc, network: Network, instruments, inputs, outputs, dmm_channels: set[int] | None,
                   base_dir: Path) -> CrossbarConfig:
    """Validate [crossbar] (``checker``: the bench file's Validator, for its error messages)."""
    doc = dict(doc) if isinstance(doc, dict) else checker.fail("crossbar", doc, "must be a table")
    lines_doc = doc.pop("lines", None)
    spec = checker.section("crossbar", doc, CROSSBAR)
    try:
        layout = CrossbarLayout.of(network)
    except HwlearnError as exc:
        raise ConfigError(f"{checker.source}: [crossbar] needs a crossbar network (builder = 'crossbar'): {exc}") \
            from None
    matrix = _instrument(checker, "crossbar.matrix", spec["matrix"], instruments, MATRIX_DRIVERS)
    programmer = _instrument(checker, "crossbar.programmer", spec["programmer"], instruments, PROGRAMMER_DRIVERS)
    port_units = {w.smu for w in (*inputs, *outputs)}
    if programmer.name in port_units:
        checker.fail("crossbar.programmer", programmer.name, "the programmer is wired as a port unit in "
                     "[wiring]; it must be a unit of its own, reaching lines only through the matrix")
    limits = _limits(checker, spec)
    sizes = {}
    for slot, model in matrix["slots"].items():
        sizes[slot] = matrix_card_size(model, matrix.driver)
    forbidden = {parse_matrix_channel(t) for t in matrix["forbidden"]}

    ports = {}
    for role, wires in (("input", inputs), ("output", outputs)):
        for wire in wires:
            ends = [int(network.edge_a[wire.edge]), int(network.edge_b[wire.edge])]
            line = next((layout.line_of_node(n) for n in ends if layout.line_of_node(n)), None)
            if line is None:
                checker.fail(f"wiring.{role}s.{wire.edge_name}", wire.smu, "the edge does not end at a line "
                             "terminal of the crossbar")
            ports[line] = (wire.smu, role, wire.edge)
    if not isinstance(lines_doc, dict) or not lines_doc:
        checker.fail("crossbar.lines", lines_doc, "a table of line = { sense, unit, prog }: the lines the "
                     f"bench reaches ({', '.join(list(layout.lines)[:4])} ...)")
    rows: dict[tuple[int, int], tuple[str, str]] = {}    # (slot, row) -> (bus, where)
    columns: dict[tuple[int, int], tuple[str, str]] = {}  # (slot, column) -> (line, where)
    senses: dict[int, str] = {}
    wires: dict[str, LineWire] = {}
    for name, entry in lines_doc.items():
        path = f"crossbar.lines.{name}"
        if name not in layout.lines:
            checker.fail(path, entry, f"the crossbar has no line {name!r} (lines: {', '.join(layout.lines)})")
        if not isinstance(entry, dict):
            checker.fail(path, entry, "must be a table { sense = <voltmeter channel>, unit = '<channel>', "
                         "prog = '<channel>' }")
        entry = checker.section(path, entry, LINE)
        unit, role, port_edge = ports.get(name, (None, None, None))
        if unit is not None and entry["unit"] is None:
            checker.fail(f"{path}.unit", None, f"line {name} is on {unit} ({role}); name the matrix channel that "
                         "joins them")
        if unit is None and entry["unit"] is not None:
            checker.fail(f"{path}.unit", entry["unit"], f"line {name} has no port unit in [wiring]")
        sense = entry["sense"]
        if sense is not None:
            if dmm_channels is None:
                checker.fail(f"{path}.sense", sense, "sense channels need a scanning voltmeter in [instruments]")
            if sense not in dmm_channels:
                checker.fail(f"{path}.sense", sense, f"not a channel of the voltmeter's cards "
                             f"({min(dmm_channels)}-{max(dmm_channels)})")
            if sense in senses:
                checker.fail(f"{path}.sense", sense, f"channel {sense} already reads line {senses[sense]}")
            senses[sense] = name
        pin = None
        for key, bus in (("unit", f"unit {unit}"), ("prog", "the programming bus")):
            text = entry[key]
            if text is None:
                continue
            channel = parse_matrix_channel(text)
            if channel is None:
                checker.fail(f"{path}.{key}", text, "a matrix channel is slot-row-column, e.g. '1A01' (rows A-H)")
            size = sizes.get(channel.slot)
            if size is None or channel.row > size[0] or channel.column > size[1]:
                cards = "; ".join(f"slot {s}: rows A-{ROW_LETTERS[r - 1]}, columns 01-{c:02d}"
                                  for s, (r, c) in sizes.items())
                checker.fail(f"{path}.{key}", text, f"not on the matrix's cards ({cards})")
            if channel in forbidden:
                checker.fail(f"{path}.{key}", text, f"forbidden by instruments.{matrix.name}.forbidden")
            row_key, col_key = (channel.slot, channel.row), (channel.slot, channel.column)
            if row_key in rows and rows[row_key][0] != bus:
                checker.fail(f"{path}.{key}", text, f"row {ROW_LETTERS[channel.row - 1]} of slot {channel.slot} is "
                             f"already {rows[row_key][0]} ({rows[row_key][1]}); a matrix row is one bus")
            rows[row_key] = (bus, path)
            if col_key in columns and columns[col_key][0] != name:
                checker.fail(f"{path}.{key}", text, f"column {channel.column:02d} of slot {channel.slot} is already "
                             f"line {columns[col_key][0]} ({columns[col_key][1]}); a matrix column is one line")
            columns[col_key] = (name, path)
            if pin is not None and pin != col_key:
                checker.fail(f"{path}.{key}", text, f"line {name}'s channels must share its column (slot {pin[0]} "
                             f"column {pin[1]:02d})")
            pin = col_key
        wires[name] = LineWire(name, layout.lines[name].node, sense, entry["unit"], entry["prog"], unit, role,
                               port_edge)
    for line, (unit, role, _) in ports.items():
        if line not in wires:
            checker.fail("crossbar.lines", sorted(lines_doc), f"line {line} is on {unit} ({role}) but has no entry: "
                         "every port line is reached through the matrix")

    access = {}
    need = max(max(limits.set_volts[1], limits.reset_volts[1]) / 2, spec["read_volts"])
    for name, wire in wires.items():
        # A unit holds its line when it sources volts there (an input; an output with a clamp)
        # up to half the largest pulse and the read voltage, within its power.
        unit = instruments[wire.unit] if wire.unit is not None else None
        holds = (unit is not None and unit["compliance_amps"] is not None and need <= unit["max_volts"]
                 and need * unit["compliance_amps"] <= unit["max_watts"])
        access[name] = LineAccess(name, wire.prog_channel is not None, wire.unit_channel is not None, holds)
    readable, tunable, sensed = [], [], {}
    for edge, point in layout.crosspoints.items():
        a, b = wires.get(point.a_line), wires.get(point.b_line)
        if a is not None and b is not None and a.sense is not None and b.sense is not None:
            readable.append(edge)
            sensed[edge] = (point.a_line, point.b_line)
        if carriers(point, access):
            tunable.append(edge)
    for wire in outputs:
        line = next(name for name, w in wires.items() if w.port_edge == wire.edge)
        plus, minus = layout.sensed_nodes(wire.edge)
        if wires[line].sense is None:
            checker.fail(f"crossbar.lines.{line}.sense", None, f"output line {line} must be sensed: the bench reads "
                         "outputs with the scan")
        sensed[wire.edge] = (plus, minus)
    if not tunable:
        checker.fail("crossbar.lines", sorted(wires), f"no crosspoint can be written: a crosspoint needs one line "
                     "with a 'prog' channel and the other on a unit that can hold it at up to "
                     f"{need:g} V (half the largest pulse, the read voltage: compliance_amps set, max_volts and "
                     "max_watts enough)")
    _check_levels(checker, spec, limits, programmer)
    calibration, path = {}, spec["calibration"]
    if path is not None:
        calibration = load_calibration(base_dir / path, f"{checker.source}: crossbar.calibration")
        unknown = sorted(set(calibration) - {network.edge_names[e] for e in tunable})
        if unknown:
            checker.fail("crossbar.calibration", path, f"names devices that are not tunable crosspoints: "
                         f"{', '.join(unknown[:4])}")
    return CrossbarConfig(
        matrix.name, programmer.name, limits, spec["pulse_nplc"], spec["read_volts"], spec["disturb_volts"],
        spec["compliance_amps"], spec["g_min"], spec["g_max"], wires, access, tuple(sorted(readable)),
        tuple(sorted(tunable)), sensed, {name: line.layer for name, line in layout.lines.items()},
        None if path is None else str(base_dir / path), calibration)


def _instrument(checker, key: str, name: str, instruments, drivers):
    inst = instruments.get(name)
    if inst is None or inst.driver not in drivers:
        known = ", ".join(sorted(n for n, i in instruments.items() if i.driver in drivers)) or "none"
        checker.fail(key, name, f"not an instrument with driver {' or '.join(drivers)} (there are: {known})")
    return inst


def _limits(checker, spec) -> PulseLimits:
    for key in ("set_volts", "reset_volts"):
        pair = spec[key]
        if len(pair) != 2 or pair[0] > pair[1]:
            checker.fail(f"crossbar.{key}", pair, "two amplitudes, lowest then highest")
    if not spec["g_min"] < spec["g_max"]:
        checker.fail("crossbar.g_min", spec["g_min"], f"must be below crossbar.g_max = {spec['g_max']!r}")
    integration = spec["pulse_nplc"] / LOWEST_MAINS_HZ
    if spec["pulse_width_s"] < integration:
        checker.fail("crossbar.pulse_width_s", spec["pulse_width_s"], f"a pulse lasts at least its integration, "
                     f"pulse_nplc / 50 Hz = {integration:g} s")
    return PulseLimits(tuple(spec["set_volts"]), tuple(spec["reset_volts"]), spec["step_volts"],
                       spec["pulse_width_s"], spec["max_pulses"], spec["tolerance"] * (spec["g_max"] - spec["g_min"]),
                       spec["stall_pulses"])


def _check_levels(checker, spec, limits: PulseLimits, programmer) -> None:
    """The V/2 scheme within every limit (module docstring)."""
    top = max(limits.set_volts[1], limits.reset_volts[1])
    half = top / 2
    if not half < spec["disturb_volts"]:
        checker.fail("crossbar.set_volts" if limits.set_volts[1] >= limits.reset_volts[1] else "crossbar.reset_volts",
                     list(limits.set_volts if limits.set_volts[1] >= limits.reset_volts[1] else limits.reset_volts),
                     f"a half-selected device sees half the largest pulse, {half:g} V, which must stay below "
                     f"crossbar.disturb_volts = {spec['disturb_volts']:g} V")
    if not spec["read_volts"] < spec["disturb_volts"]:
        checker.fail("crossbar.read_volts", spec["read_volts"], f"must stay below crossbar.disturb_volts = "
                     f"{spec['disturb_volts']:g} V: a read must not change a device")
    if half > programmer["max_volts"]:
        checker.fail("crossbar.set_volts", list(limits.set_volts), f"the programmer sources half the largest pulse, "
                     f"{half:g} V, above instruments.{programmer.name}.max_volts = {programmer['max_volts']:g} V")
    compliance = spec["compliance_amps"]
    if compliance > programmer["max_amps"]:
        checker.fail("crossbar.compliance_amps", compliance, f"above instruments.{programmer.name}.max_amps = "
                     f"{programmer['max_amps']:g} A")
    if half * compliance > programmer["max_watts"]:
        checker.fail("crossbar.compliance_amps", compliance, f"half the largest pulse x this = "
                     f"{half * compliance:g} W, above instruments.{programmer.name}.max_watts = "
                     f"{programmer['max_watts']:g} W")


CALIBRATION_FORMAT = "hwlearn-crossbar-calibration"
DEVICE_KEYS = ("g_min", "g_max", "pulses", "nu_set", "nu_reset", "c2c")


def load_calibration(path: Path, where: str) -> dict[str, dict]:
    """A characterisation's calibration: device (edge name) -> fitted parameters, or
    {'stuck': conductance} for a device that did not respond. Errors name the file and key."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{where} = {str(path)!r}: cannot be read: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{where} = {str(path)!r}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != CALIBRATION_FORMAT or not isinstance(doc.get("devices"), dict):
        raise ConfigError(f"{where} = {str(path)!r}: not a crossbar calibration (format {CALIBRATION_FORMAT!r} with "
                          "a 'devices' table)")
    devices = {}
    for name, entry in doc["devices"].items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: devices.{name}: expected a table of fitted parameters")
        if "stuck" in entry:
            if not _finite_positive(entry["stuck"]):
                raise ConfigError(f"{path}: devices.{name}.stuck = {entry['stuck']!r}: expected a conductance > 0")
            devices[name] = {"stuck": float(entry["stuck"])}
            continue
        for key in DEVICE_KEYS:
            value = entry.get(key)
            if not (_finite_positive(value) or (key in ("nu_set", "nu_reset", "c2c") and value == 0)):
                raise ConfigError(f"{path}: devices.{name}.{key} = {value!r}: expected a finite number > 0")
        if not entry["g_min"] < entry["g_max"]:
            raise ConfigError(f"{path}: devices.{name}: g_min = {entry['g_min']!r} must be below g_max")
        devices[name] = {key: float(entry[key]) for key in DEVICE_KEYS}
    return devices


def _finite_positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
