"""The bench file (TOML): instruments, addresses, limits, wiring and calibration of one bench.

``load_bench_file(path)`` validates everything before any instrument is opened and returns a
BenchConfig. Every error names the file, the key, the value and what is allowed, e.g.
``bench.toml: wiring.mux.Rh0_1 = 121: the DMM card has channels 101-120``. docs/bench.md lists
every key. Sign conventions are those of hwlearn.network: edge k runs from node ``a`` to node
``b``; ``at_a`` says which instrument terminal (HI or LO) is connected at the edge's ``a`` end.

Roles come from the wiring: input edges carry a source-measure unit in series, output edges one
across their resistor, readable edges are spanned by a multiplexer channel (outputs must be: the
bench reads outputs with the scan, see docs/bench.md), tunable edges are board channels.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwlearn.config.calibration import ChannelCalibration
from hwlearn.config.crossbar import (
    MATRIX_CARDS_707B,
    MATRIX_DRIVERS,
    VIRTUAL_DEVICES,
    CrossbarConfig,
    check_crossbar,
    matrix_card_size,
    parse_matrix_channel,
)
from hwlearn.config.network import build_network, network_section
from hwlearn.config.resources import Resource, check_resource
from hwlearn.config.schema import REQUIRED, Field, Section, Validator, load_toml
from hwlearn.errors import ConfigError
from hwlearn.network import Network

SMU_DRIVERS = ("keithley2400", "keithley2450")
DMM_DRIVERS = ("keysight34970a",)
BOARD_DRIVERS = ("resistor_board",)
DRIVERS = SMU_DRIVERS + DMM_DRIVERS + BOARD_DRIVERS + MATRIX_DRIVERS
SMU_HARDWARE = {"max_volts": 210.0, "max_amps": 1.05}   # both models' largest source levels
SMU_MAX_WATTS = 22.0            # both models' largest output power (2400: 22 W; 2450: 22 W)
MAX_RAMP_STEPS = 500            # from 0 to max_volts (or max_amps): ramp step >= max / 500
MIN_TOTAL_WATTS = 1e-6          # below it no source could be switched on to any useful level
MAX_TOTAL_WATTS = 1000.0
SCPI_TIMEOUT_S = 5.0            # default reply timeout of a SCPI instrument
BOARD_TIMEOUT_S = 1.0           # the board answers within milliseconds at 115200 baud
DMM_CARDS = {"34901A": 20, "34902A": 16, "34908A": 40}  # voltage channels per module
DMM_RANGES = (0.1, 1.0, 10.0, 100.0, 300.0)
DMM_NPLCS = (0.02, 0.2, 1.0, 2.0, 10.0, 20.0, 100.0, 200.0)
BOARD_MAX_CHANNELS = 16  # what the firmware's request parser holds (board_core.h MAX_CHANNELS)
# MCP4251 (Microchip DS22060): terminals A, B, W between VSS and VDD (5 V board, absolute
# maximum VDD + 0.3 V = 5.5 V) and at most 2.5 mA through any terminal.
BOARD_TERMINAL_VOLTS = (5.0, 5.5)    # default, largest allowed
BOARD_TERMINAL_AMPS = 2.5e-3
SINGLE_ENDED_CARDS = ("34908A",)     # every channel switches HI only, one common LO per module
VISA_LIBRARIES = {"pyvisa-py": "@py", "ni-visa": "@ivi", "ivi": "@ivi"}
TERMINALS = ("HI", "LO")
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")


def _positive(doc: str, default=REQUIRED, **kw) -> Field:
    return Field("float", default, doc, minimum=0.0, exclusive_minimum=True, **kw)


def _seconds(doc: str, default, low: float, high: float) -> Field:
    return Field("float", default, doc, minimum=low, maximum=high)


def check_visa_library(value: str) -> str | None:
    """What is wrong with a VISA library name or path, or None."""
    if value in VISA_LIBRARIES:
        return None
    if not Path(value).is_absolute():
        return (f"allowed: {', '.join(repr(k) for k in VISA_LIBRARIES)} (pyvisa-py is pure "
                "Python; ni-visa is the system's IVI VISA, e.g. NI-VISA) or the absolute path of a "
                "VISA library file")
    if not Path(value).is_file():
        return "no such VISA library file"
    return None


def visa_backend(library: str) -> str:
    """The pyvisa ResourceManager argument for a bench file's ``visa_library``."""
    return VISA_LIBRARIES.get(library, library)


BENCH = Section({
    "name": Field("str", REQUIRED, "a label for reports and run metadata"),
    "allow_remote": Field("bool", False, "allow resources on hosts other than 127.0.0.1/localhost"),
    "max_total_watts": Field("float", REQUIRED, "rig-level limit: the sum over every source of its "
                             "worst-case level magnitude x compliance, watts", minimum=MIN_TOTAL_WATTS,
                             maximum=MAX_TOTAL_WATTS),
    "visa_library": Field("str", "pyvisa-py", "the VISA library: 'pyvisa-py', 'ni-visa' (the "
                          "system's IVI VISA) or the path of a VISA library file",
                          check=check_visa_library),
    "compliance_margin": Field("float", 0.02, "a current-mode output whose resistor voltage is "
                               "within this fraction of its voltage limit counts as in compliance",
                               minimum=0.0, maximum=0.5),
    "linearity_tolerance_volts": _positive("the largest residual per reading the probe plan's linearity check "
                                           "accepts (default: the voltmeter's accuracy, propagated)", None),
}, doc="the bench", required=True)

# The shared [network] keys (hwlearn.config.network); a board is described in full, nothing assumed.
NETWORK = network_section("the board's topology and nominal resistances (edge overrides: [network.nominal_ohms])",
                          role_fields={}, defaults={key: REQUIRED for key in ("builder", "rows", "cols", "nodes",
                                                                                "edges")}, required=True)

INSTRUMENT = Section({
    "driver": Field("str", REQUIRED, "which driver talks to it", choices=DRIVERS),
    "resource": Field("str", REQUIRED, "VISA resource (SCPI instruments) or serial port (board)"),
    "timeout_s": _seconds("reply timeout, seconds (default 5; 1 for a resistor board, which "
                          "answers within milliseconds)", None, 0.01, 600.0),
    "retries": Field("int", 1, "query retries after a timeout", minimum=0, maximum=5),
    "serial": Field("str", None, "the serial number *IDN? must report (guards against swapped "
                    "addresses of identical units)"),
    # source-measure units
    "max_volts": _positive("largest |V| sourced and largest voltage compliance"),
    "max_amps": _positive("largest |I| sourced and largest current compliance"),
    "max_watts": _positive("largest worst-case level magnitude x compliance", maximum=SMU_MAX_WATTS),
    "ramp_volts": _positive("largest voltage step while the output is on"),
    "ramp_amps": _positive("largest current step while the output is on"),
    "compliance_amps": _positive("current limit while sourcing volts (inputs, clamps)", None),
    "compliance_volts": _positive("voltage limit while sourcing current (open and current "
                                  "outputs)", None),
    "measure_timeout_s": _seconds("timeout of a measurement (:READ?)", None, 0.01, 3600.0),
    # scanning voltmeter
    "cards": Field("list[str]", ["34901A"], "multiplexer module in slot 1, 2, 3",
                   choices=tuple(DMM_CARDS)),
    "volt_range": Field("str|float", "AUTO", "DC volts range: 'AUTO' or one of "
                        f"{', '.join(f'{r:g}' for r in DMM_RANGES)}"),
    "nplc": Field("float", 1.0, "integration time, power-line cycles", choices=DMM_NPLCS),
    "read_timeout_s": _seconds("least timeout of one scan (READ?); the driver derives one from "
                               "the channels and nplc and never uses less", None, 0.01, 3600.0),
    # resistor board
    "channels": Field("int", REQUIRED, "channels the board has (INFO? must report them)",
                      minimum=1, maximum=BOARD_MAX_CHANNELS),
    "model": Field("str", None, "the model *IDN? must report, e.g. 'RB16-MCP4251' (a board), '708B' (a matrix)"),
    "baudrate": Field("int", 115200, "serial baud rate", minimum=300, maximum=2_000_000),
    "watchdog_s": _seconds("the board's watchdog timeout (INFO? WDT must not be shorter)", 2.0,
                           0.05, 60.0),
    "heartbeat_s": _positive("period of the heartbeat that feeds the board's watchdog "
                             "(default: a quarter of watchdog_s; at most half of it)", None),
    "boot_wait_s": _seconds("longest wait for the board's boot announcement after its port "
                            "opens (an Arduino restarts then); 0 for a board without auto-reset",
                            2.0, 0.0, 10.0),
    "max_terminal_volts": _positive("largest voltage across a board channel (MCP4251: within "
                                    f"VDD, at most {BOARD_TERMINAL_VOLTS[1]:g} V)",
                                    BOARD_TERMINAL_VOLTS[0], maximum=BOARD_TERMINAL_VOLTS[1]),
    "max_terminal_amps": _positive("largest current through a board channel (MCP4251: "
                                   f"{BOARD_TERMINAL_AMPS:g} A)", BOARD_TERMINAL_AMPS,
                                   maximum=BOARD_TERMINAL_AMPS),
    # switch matrix
    "slots": Field("list[str]", REQUIRED, "the matrix card in slot 1, 2, ...: a 707B card (7174A, 7072), or rows "
                   "x columns for a generic SCPI matrix ('8x12')"),
    "forbidden": Field("list[str]", [], "matrix channels never to close (slot-row-column, e.g. '1A01'); the 707B "
                       "is told too"),
}, variant_key="driver", variants={
    **{d: ("max_volts", "max_amps", "max_watts", "ramp_volts", "ramp_amps", "compliance_amps",
           "compliance_volts", "measure_timeout_s") for d in SMU_DRIVERS},
    "keysight34970a": ("cards", "volt_range", "nplc", "read_timeout_s"),
    "resistor_board": ("channels", "model", "baudrate", "watchdog_s", "heartbeat_s", "boot_wait_s",
                       "max_terminal_volts", "max_terminal_amps"),
    **{d: ("slots", "forbidden", "model") for d in MATRIX_DRIVERS},
    "*": ("resource", "timeout_s", "retries", "serial"),
})

SOURCE_WIRE = Section({
    "smu": Field("str", REQUIRED, "the source-measure unit (an [instruments] name)"),
    "at_a": Field("str", "HI", "the unit's terminal at the edge's a node", choices=TERMINALS),
})
MUX_WIRE = Section({
    "channel": Field("int", REQUIRED, "the multiplexer channel (slot x 100 + n)"),
    "at_a": Field("str", "HI", "the channel's terminal at the a end of the edge's resistor",
                  choices=TERMINALS),
})
BOARD_WIRE = Section({
    "board": Field("str", REQUIRED, "the resistor board (an [instruments] name)"),
    "channel": Field("int", REQUIRED, "the board channel, from 0", minimum=0),
})
CALIBRATION = Section({
    "levels": Field("int", 256, "linear model: code steps across the end-to-end resistance",
                    minimum=1),
    "wiper_ohms": Field("float", 75.0, "linear model: resistance at code 0", minimum=0.0),
    "end_to_end_ohms": _positive("linear model: resistance added by `levels` codes", 10_000.0),
    "code_min": Field("int", 0, "lowest code the bench may write", minimum=0),
    "code_max": Field("int", None, "highest code the bench may write (default: levels)",
                      minimum=0),
    "table": Field("list[float]", None, "explicit ohms of codes code_min..code_max (instead of "
                   "the linear model)", minimum=0.0, exclusive_minimum=True),
})

def _rate(doc: str) -> Field:
    return Field("float", 0.0, doc, minimum=0.0, maximum=1.0)


# [virtual.faults]: read by the virtual bench only (simulator/emulators/faults.py); a real bench
# ignores it. Rates are probabilities per reply (the first five) or per device event.
FAULTS = Section({
    "timeout": _rate("a reply is dropped"),
    "late": _rate("a reply is sent late_s seconds late"),
    "garbled": _rate("a reply has a bit flipped or is cut short"),
    "disconnect": _rate("the connection is closed instead of a reply"),
    "reboot": _rate("the instrument power-cycles instead of replying"),
    "stuck": _rate("at a board write, one written channel stops following writes"),
    "drift": _rate("at a scan, one tunable edge starts drifting"),
    "late_s": _positive("delay of a late reply, seconds", 3.0),
    "drift_per_read": Field("float", 1e-3, "relative change of a drifting edge per scan",
                            minimum=-0.5, maximum=0.5),
    "seed": Field("int", 0, "seed of the fault draws", minimum=0),
}, doc="fault injection of the virtual bench")
VIRTUAL = Section({"faults": FAULTS, "devices": VIRTUAL_DEVICES}, doc="settings of the virtual bench only")
REPLY_FAULTS = ("timeout", "late", "garbled", "disconnect", "reboot")

TOP_LEVEL = ("bench", "network", "instruments", "wiring", "calibration")
OPTIONAL_TOP_LEVEL = ("virtual", "crossbar")
WIRING_TABLES = ("inputs", "outputs", "mux", "board")


# ------------------------------------------------------------------------------ the result
@dataclass(frozen=True)
class InstrumentConfig:
    """One [instruments.<name>] table, validated; ``settings`` holds the driver's keys."""

    name: str
    driver: str
    resource: str
    link: Resource
    timeout_s: float
    retries: int
    serial: str | None
    settings: Mapping[str, object]

    @property
    def kind(self) -> str:
        return ("smu" if self.driver in SMU_DRIVERS else
                "dmm" if self.driver in DMM_DRIVERS else
                "matrix" if self.driver in MATRIX_DRIVERS else "board")

    def __getitem__(self, key: str):
        return self.settings[key]


@dataclass(frozen=True)
class SourceWire:
    """A source-measure unit on an edge: in series (input) or across the resistor (output)."""

    edge: int
    edge_name: str
    smu: str
    at_a: str

    @property
    def polarity(self) -> int:
        """+1 if HI is at the a node: the unit's volts are then the edge's (v = p[a] - p[b])."""
        return 1 if self.at_a == "HI" else -1


@dataclass(frozen=True)
class MuxWire:
    edge: int
    edge_name: str
    channel: int
    at_a: str

    @property
    def polarity(self) -> int:
        return 1 if self.at_a == "HI" else -1


@dataclass(frozen=True)
class BoardWire:
    edge: int
    edge_name: str
    board: str
    channel: int


@dataclass(frozen=True)
class BenchConfig:
    """A validated bench file. ``network`` carries the roles the wiring implies; wiring tuples
    are in edge order; ``calibration[board][channel]`` maps codes to ohms."""

    source: str
    name: str
    allow_remote: bool
    visa_library: str
    max_total_watts: float
    compliance_margin: float
    network: Network
    instruments: Mapping[str, InstrumentConfig]
    inputs: tuple[SourceWire, ...]
    outputs: tuple[SourceWire, ...]
    mux: tuple[MuxWire, ...]
    board_wiring: tuple[BoardWire, ...]
    calibration: Mapping[str, Mapping[int, ChannelCalibration]]
    virtual_faults: Mapping[str, float] = dataclasses.field(default_factory=dict)
    linearity_tolerance_volts: float | None = None
    crossbar: CrossbarConfig | None = None      # [crossbar]: a crossbar on a switch matrix
    virtual_devices: Mapping[str, float] = dataclasses.field(default_factory=dict)  # [virtual.devices]

    def of_kind(self, kind: str) -> list[InstrumentConfig]:
        return [i for i in self.instruments.values() if i.kind == kind]

    @property
    def dmm(self) -> InstrumentConfig | None:
        found = self.of_kind("dmm")
        return found[0] if found else None

    def with_resources(self, resources: Mapping[str, str]) -> BenchConfig:
        """A copy whose instruments are reached at ``resources`` (name -> resource string),
        e.g. the ephemeral ports of a virtual twin. Each is checked like the file's."""
        instruments = dict(self.instruments)
        for name, text in resources.items():
            old = instruments[name]
            try:
                link = check_resource(text, "serial" if old.kind == "board" else "scpi",
                                      self.allow_remote)
            except ValueError as exc:
                raise ConfigError(f"{name}: resource {text!r}: {exc}") from None
            instruments[name] = dataclasses.replace(old, resource=text, link=link)
        return dataclasses.replace(self, instruments=instruments)


def _lo_node(net: Network, wire: MuxWire, inputs: set[int]) -> str:
    """The electrical node a mux channel's LO terminal is wired to. A channel spans an edge's
    resistor; on an input edge the resistor's a end is the junction with the series source."""
    a, b = net.node_names[net.edge_a[wire.edge]], net.node_names[net.edge_b[wire.edge]]
    if wire.at_a == "HI":
        return f"node {b}"
    return f"the junction of {wire.edge_name}'s source and resistor" if wire.edge in inputs else f"node {a}"


# ------------------------------------------------------------------------------ loading
def load_bench_file(path: str | Path) -> BenchConfig:
    """Read and validate a bench file; raises ConfigError naming file, key, value, allowed."""
    path = Path(path)
    return validate_bench(load_toml(path), str(path), base_dir=path.parent)


def validate_bench(doc: dict, source: str, base_dir: Path = Path(".")) -> BenchConfig:
    return _Checker(source, base_dir).bench(doc)


def parse_faults(text: str, seed: int | None = None, source: str = "--faults") -> dict:
    """``timeout=0.01,late=0.01,late_s=2`` (the command line's form of [virtual.faults]),
    validated like the bench file's table; ``seed`` overrides its seed."""
    doc: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise ConfigError(f"{source}: {item!r} is not key=value; keys: {', '.join(FAULTS.fields)}")
        try:
            doc[key] = int(value) if key == "seed" else float(value)
        except ValueError:
            raise ConfigError(f"{source}: {key} = {value.strip()!r}: expected a number") from None
    if seed is not None:
        doc["seed"] = seed
    checker = _Checker(source, Path("."))
    return checker.faults(checker.section("", doc, FAULTS), "")


class _Checker(Validator):
    def __init__(self, source: str, base_dir: Path):
        super().__init__(source)
        self.base_dir = base_dir

    def bench(self, doc: dict) -> BenchConfig:
        if not isinstance(doc, dict):
            self.fail("document", doc, "must be a table")
        for key in doc:
            if key not in TOP_LEVEL + OPTIONAL_TOP_LEVEL:
                raise ConfigError(f"{self.source}: unknown table [{key}]; allowed: "
                                  f"{', '.join(TOP_LEVEL + OPTIONAL_TOP_LEVEL)}")
        for key in TOP_LEVEL:
            if key not in doc:
                raise ConfigError(f"{self.source}: missing table [{key}]")
        bench = self.section("bench", doc["bench"], BENCH)
        network = self.network(doc["network"])
        instruments = self.instruments(doc["instruments"], bench["allow_remote"])
        is_crossbar = "crossbar" in doc
        wiring = self.wiring(doc["wiring"], network, instruments, crossbar=is_crossbar)
        calibration = self.calibration(doc["calibration"], instruments, wiring["board"])
        inputs, outputs, mux, board = (wiring[k] for k in WIRING_TABLES)
        crossbar = None
        if is_crossbar:
            crossbar = check_crossbar(self, doc["crossbar"], network, instruments, inputs, outputs,
                                      self.dmm_channels(instruments), self.base_dir)
            self.crossbar_instruments_wired(instruments, crossbar)
        file_path = doc["network"].get("path") if doc["network"].get("builder") == "file" else None
        network = self.roles(network, inputs, outputs, mux, board, file_path, crossbar)
        virtual = self.section("virtual", doc.get("virtual", {}), VIRTUAL)
        faults = self.faults(virtual["faults"], "virtual.faults")
        config = BenchConfig(self.source, bench["name"], bench["allow_remote"], bench["visa_library"],
                             bench["max_total_watts"], bench["compliance_margin"], network,
                             instruments, inputs, outputs, mux, board, calibration, faults,
                             bench["linearity_tolerance_volts"], crossbar,
                             virtual["devices"] if "devices" in doc.get("virtual", {}) else {})
        self.power(config)
        return config

    def dmm_channels(self, instruments) -> set[int] | None:
        dmm = next((i for i in instruments.values() if i.kind == "dmm"), None)
        if dmm is None:
            return None
        return {100 * slot + n for slot, card in dmm["cards"].items() for n in range(1, DMM_CARDS[card] + 1)}

    def crossbar_instruments_wired(self, instruments, crossbar: CrossbarConfig) -> None:
        """On a crossbar bench the matrix, the programmer and the voltmeter are wired by
        [crossbar]: every other declared instrument must be a port unit."""
        sensed = any(w.sense is not None for w in crossbar.lines.values())
        for name, inst in instruments.items():
            if inst.kind == "dmm" and not sensed:
                self.fail(f"instruments.{name}", inst.driver, "declared but not wired: no crossbar line is sensed")
            if inst.kind == "matrix" and name != crossbar.matrix:
                self.fail(f"instruments.{name}", inst.driver, f"a crossbar bench has one switch matrix, "
                          f"crossbar.matrix = {crossbar.matrix!r}")

    def faults(self, faults: dict, path: str) -> dict:
        total = sum(faults[k] for k in REPLY_FAULTS)
        if total > 1.0:
            self.fail(f"{path}.timeout" if path else "timeout", faults["timeout"],
                      f"the rates per reply ({', '.join(REPLY_FAULTS)}) sum to {total:g}; at most 1")
        return faults

    # -- [network] ----------------------------------------------------------------------------
    def network(self, doc) -> Network:
        if not isinstance(doc, dict):
            self.fail("network", doc, "must be a table")
        doc = dict(doc)
        nominal = doc.pop("nominal_ohms", {})
        spec = self.section("network", doc, NETWORK)
        net = self.build(spec)
        if not isinstance(nominal, dict):
            self.fail("network.nominal_ohms", nominal, "must be a table of edge name = ohms")
        if nominal:
            ohms = net.resistance.copy()
            for name, value in nominal.items():
                key = f"network.nominal_ohms.{name}"
                value = self.value(key, value, _positive(""))
                ohms[self.edge(key, name, net)] = value
            net = net.with_resistances(ohms)
        return net

    def build(self, spec: dict) -> Network:
        return build_network(spec, self.source, base_dir=self.base_dir)

    def edge(self, key: str, name: str, net: Network) -> int:
        lookup = {n.lower(): k for k, n in enumerate(net.edge_names)}
        if name.lower() not in lookup:
            example = ", ".join(net.edge_names[:4])
            self.fail(key, name, f"the network has no edge named {name!r} "
                                 f"({net.n_edges} edges, e.g. {example})")
        return lookup[name.lower()]

    # -- [instruments] -------------------------------------------------------------------------
    def instruments(self, doc, allow_remote: bool) -> dict[str, InstrumentConfig]:
        if not isinstance(doc, dict) or not doc:
            self.fail("instruments", doc, "must be a table of [instruments.<name>] tables")
        found = {}
        for name, table in doc.items():
            if not NAME.fullmatch(name):
                self.fail(f"instruments.{name}", table, "an instrument name is a letter followed "
                                                        "by up to 31 letters, digits or _")
            found[name] = self.instrument(name, table, allow_remote)
        seen: dict[tuple, str] = {}
        for name, inst in found.items():
            other = seen.setdefault(inst.link.address, name)
            if other != name:
                self.fail(f"instruments.{name}.resource", inst.resource,
                          f"the same instrument as instruments.{other}.resource = "
                          f"{found[other].resource!r}; two instruments cannot share one address "
                          "(the second would be neither configured nor made safe)")
        dmms = [n for n, i in found.items() if i.kind == "dmm"]
        if len(dmms) > 1:
            self.fail(f"instruments.{dmms[1]}.driver", found[dmms[1]].driver,
                      f"a bench has one scanning voltmeter; {dmms[0]} is one already")
        return found

    def instrument(self, name: str, table, allow_remote: bool) -> InstrumentConfig:
        path = f"instruments.{name}"
        spec = self.section(path, table, INSTRUMENT)
        driver = spec.pop("driver")
        common = {k: spec.pop(k) for k in ("resource", "timeout_s", "retries", "serial")}
        if common["timeout_s"] is None:
            common["timeout_s"] = BOARD_TIMEOUT_S if driver in BOARD_DRIVERS else SCPI_TIMEOUT_S
        link_kind = "serial" if driver in BOARD_DRIVERS else "scpi"
        try:
            link = check_resource(common["resource"], link_kind, allow_remote)
        except ValueError as exc:
            self.fail(f"{path}.resource", common["resource"], str(exc))
        if driver in SMU_DRIVERS:
            self.smu_settings(path, spec)
        elif driver in DMM_DRIVERS:
            self.dmm_settings(path, spec)
        elif driver in MATRIX_DRIVERS:
            self.matrix_settings(path, spec, driver)
        else:
            self.board_settings(path, spec)
        return InstrumentConfig(name, driver, common["resource"], link, common["timeout_s"],
                                common["retries"], common["serial"], spec)

    def smu_settings(self, path: str, spec: dict) -> None:
        for key, top in SMU_HARDWARE.items():
            if spec[key] > top:
                self.fail(f"{path}.{key}", spec[key], f"the 2400 and 2450 source at most {top:g}")
        for step, top in (("ramp_volts", "max_volts"), ("ramp_amps", "max_amps")):
            smallest = spec[top] / MAX_RAMP_STEPS
            if spec[step] < smallest:
                self.fail(f"{path}.{step}", spec[step], f"a ramp from 0 to {top} = {spec[top]!r} would "
                          f"take more than {MAX_RAMP_STEPS} steps; must be >= {smallest:g}")
            if spec[step] > spec[top]:
                self.fail(f"{path}.{step}", spec[step], f"must be <= {top} = {spec[top]!r}")
        for key, limit in (("compliance_amps", "max_amps"), ("compliance_volts", "max_volts")):
            if spec[key] is not None and spec[key] > spec[limit]:
                self.fail(f"{path}.{key}", spec[key], f"must be <= {limit} = {spec[limit]!r}")

    def dmm_settings(self, path: str, spec: dict) -> None:
        cards = spec["cards"]
        if not 1 <= len(cards) <= 3:
            self.fail(f"{path}.cards", cards, "the 34970A has slots 1-3: list 1 to 3 modules")
        spec["cards"] = {slot: card for slot, card in enumerate(cards, start=1)}
        volt_range = spec["volt_range"]
        if isinstance(volt_range, str):
            if volt_range.upper() != "AUTO":
                self.fail(f"{path}.volt_range", volt_range,
                          f"'AUTO' or one of {', '.join(f'{r:g}' for r in DMM_RANGES)} volts")
            spec["volt_range"] = "AUTO"
        elif volt_range not in DMM_RANGES:
            self.fail(f"{path}.volt_range", volt_range,
                      f"'AUTO' or one of {', '.join(f'{r:g}' for r in DMM_RANGES)} volts")

    def matrix_settings(self, path: str, spec: dict, driver: str) -> None:
        slots = spec["slots"]
        most = 1 if (spec["model"] or "").upper() == "708B" else 6
        if not 1 <= len(slots) <= most:
            self.fail(f"{path}.slots", slots, f"list 1 to {most} cards (the {'708B' if most == 1 else '707B'} "
                      f"has {most} slot{'s' if most > 1 else ''})")
        for slot, model in enumerate(slots, start=1):
            if matrix_card_size(model, driver) is None:
                allowed = (f"one of {', '.join(MATRIX_CARDS_707B)}" if driver == "keithley707b" else
                           "rows x columns, e.g. '8x12' (1-8 rows, 1-99 columns)")
                self.fail(f"{path}.slots[{slot - 1}]", model, allowed)
        spec["slots"] = {slot: model for slot, model in enumerate(slots, start=1)}
        for k, text in enumerate(spec["forbidden"]):
            channel = parse_matrix_channel(text)
            size = None if channel is None else matrix_card_size(spec["slots"].get(channel.slot, ""), driver)
            if channel is None or size is None or channel.row > size[0] or channel.column > size[1]:
                self.fail(f"{path}.forbidden[{k}]", text, "a channel of the cards, slot-row-column (e.g. '1A01')")

    def board_settings(self, path: str, spec: dict) -> None:
        heartbeat, watchdog = spec["heartbeat_s"], spec["watchdog_s"]
        if heartbeat is not None and heartbeat > watchdog / 2:
            self.fail(f"{path}.heartbeat_s", heartbeat, f"must be <= watchdog_s / 2 = {watchdog / 2:g} s "
                      f"(the board's watchdog, watchdog_s = {watchdog:g} s, must be fed well before it "
                      "fires; set watchdog_s if the board's firmware has another timeout)")

    def power(self, config: BenchConfig) -> None:
        """The total power limit must let every input take one ramp step at once: below that
        the bench could never drive its inputs."""
        needed = sum(config.instruments[w.smu]["ramp_volts"] * config.instruments[w.smu]["compliance_amps"]
                     for w in config.inputs)
        if config.max_total_watts < needed:
            self.fail("bench.max_total_watts", config.max_total_watts,
                      f"must be >= {needed:g} W, the power of every input unit at one ramp step "
                      "(ramp_volts x compliance_amps): below it no input could be driven")
        if config.crossbar is not None:
            limits = config.crossbar.limits
            pulse = max(limits.set_volts[1], limits.reset_volts[1]) / 2 * config.crossbar.compliance_amps
            if config.max_total_watts < pulse:
                self.fail("bench.max_total_watts", config.max_total_watts,
                          f"must be >= {pulse:g} W, the programmer's largest pulse (half the largest amplitude x "
                          "crossbar.compliance_amps)")

    # -- [wiring] ------------------------------------------------------------------------------
    def wiring(self, doc, net: Network, instruments: dict[str, InstrumentConfig], crossbar: bool = False) -> dict:
        """The [wiring] tables. On a crossbar bench ([crossbar]) the lines are sensed and the
        devices programmed through [crossbar]: [wiring.mux] and [wiring.board] stay empty, and the
        matrix, the programmer and the voltmeter are checked there."""
        if not isinstance(doc, dict):
            self.fail("wiring", doc, "must be a table")
        for key in doc:
            if key not in WIRING_TABLES:
                raise ConfigError(f"{self.source}: unknown table [wiring.{key}]; allowed: "
                                  f"{', '.join(WIRING_TABLES)}")
        tables = {key: doc.get(key, {}) for key in WIRING_TABLES}
        for key, table in tables.items():
            if not isinstance(table, dict):
                self.fail(f"wiring.{key}", table, "must be a table of edge name = wiring")
        used_smus: dict[str, str] = {}
        inputs = self.sources("inputs", tables["inputs"], net, instruments, used_smus)
        outputs = self.sources("outputs", tables["outputs"], net, instruments, used_smus)
        if not outputs:
            self.fail("wiring.outputs", tables["outputs"], "a bench needs at least one output edge")
        both = {w.edge_name for w in inputs} & {w.edge_name for w in outputs}
        if both:
            name = sorted(both)[0]
            self.fail(f"wiring.outputs.{name}", tables["outputs"][name],
                      f"edge {name} is also an input (wiring.inputs.{name}); inputs and outputs "
                      "are disjoint")
        if crossbar:
            for key in ("mux", "board"):
                if tables[key]:
                    self.fail(f"wiring.{key}", tables[key], "a crossbar bench senses its lines and programs its "
                              "devices through [crossbar]; leave this table out")
        mux = self.mux(tables["mux"], net, instruments, {w.edge for w in inputs})
        on_mux = {w.edge for w in mux}
        for wire in outputs if not crossbar else ():
            if wire.edge not in on_mux:
                self.fail(f"wiring.outputs.{wire.edge_name}", tables["outputs"][wire.edge_name],
                          f"output edge {wire.edge_name} is not spanned by a multiplexer channel "
                          f"(wiring.mux.{wire.edge_name}); the bench reads outputs with the scan")
        board = self.board(tables["board"], net, instruments)
        for name, inst in instruments.items():
            if crossbar and inst.kind in ("dmm", "matrix", "smu") and name not in used_smus:
                continue  # wired by [crossbar] (checked there): the voltmeter, the matrix, the programmer
            wired = (name in used_smus if inst.kind == "smu" else
                     bool(mux) if inst.kind == "dmm" else any(w.board == name for w in board))
            if not wired:
                self.fail(f"instruments.{name}", inst.driver, "declared but not wired: no "
                                                              "[wiring] entry uses it")
        return {"inputs": inputs, "outputs": outputs, "mux": mux, "board": board}

    def sources(self, kind, table, net, instruments, used) -> tuple[SourceWire, ...]:
        wires = []
        for edge_name, entry in table.items():
            path = f"wiring.{kind}.{edge_name}"
            edge = self.edge(path, edge_name, net)
            spec = self.section(path, {"smu": entry} if isinstance(entry, str) else entry,
                                SOURCE_WIRE)
            smu = spec["smu"]
            inst = instruments.get(smu)
            if inst is None or inst.kind != "smu":
                known = ", ".join(sorted(n for n, i in instruments.items() if i.kind == "smu"))
                self.fail(f"{path}.smu", smu, f"not a source-measure unit of [instruments] "
                                              f"(they are: {known or 'none'})")
            if smu in used:
                self.fail(f"{path}.smu", smu, f"{smu} already drives {used[smu]}; a unit sits on "
                                              "one edge")
            used[smu] = f"wiring.{kind}.{edge_name}"
            if kind == "inputs" and inst["compliance_amps"] is None:
                self.fail(f"instruments.{smu}.compliance_amps", None, "an input unit sources volts "
                                                                      "and needs a current limit")
            if kind == "outputs" and inst["compliance_amps"] is None and inst["compliance_volts"] is None:
                self.fail(f"instruments.{smu}.compliance_volts", None, "an output unit needs "
                          "compliance_volts (open and current drives) or compliance_amps (clamps)")
            wires.append(SourceWire(edge, net.edge_names[edge], smu, spec["at_a"]))
        return tuple(sorted(wires, key=lambda w: w.edge))

    def mux(self, table, net, instruments, inputs: set[int]) -> tuple[MuxWire, ...]:
        if not table:
            return ()
        dmm = next((i for i in instruments.values() if i.kind == "dmm"), None)
        if dmm is None:
            self.fail("wiring.mux", table, "mux channels need a scanning voltmeter in "
                                           "[instruments] (driver = 'keysight34970a')")
        cards = dmm["cards"]
        valid = {100 * slot + n for slot, card in cards.items()
                 for n in range(1, DMM_CARDS[card] + 1)}
        spans = "; ".join(f"slot {slot} {card} has {100 * slot + 1}-{100 * slot + DMM_CARDS[card]}"
                          for slot, card in cards.items())
        wires, seen = [], {}
        for edge_name, entry in table.items():
            path = f"wiring.mux.{edge_name}"
            edge = self.edge(path, edge_name, net)
            spec = self.section(path, {"channel": entry} if not isinstance(entry, dict) else entry,
                                MUX_WIRE)
            channel = spec["channel"]
            where = path if not isinstance(entry, dict) else f"{path}.channel"
            if channel not in valid:
                card_text = (f"the DMM card has channels {min(valid)}-{max(valid)}"
                             if len(cards) == 1 else f"the DMM cards have: {spans}")
                self.fail(where, channel, card_text)
            if channel in seen:
                self.fail(where, channel, f"channel {channel} already spans {seen[channel]}")
            seen[channel] = edge_name
            wires.append(MuxWire(edge, net.edge_names[edge], channel, spec["at_a"]))
        self.common_lo(table, net, cards, wires, inputs)
        return tuple(sorted(wires, key=lambda w: w.edge))

    def common_lo(self, table, net: Network, cards, wires, inputs: set[int]) -> None:
        """A single-ended module (34908A) switches HI only: every channel's LO is one wire. Two
        channels with LO on different nodes would short those nodes through the card."""
        for slot, card in cards.items():
            if card not in SINGLE_ENDED_CARDS:
                continue
            lows: dict[str, MuxWire] = {}
            for wire in (w for w in wires if w.channel // 100 == slot):
                node = _lo_node(net, wire, inputs)
                lows.setdefault(node, wire)
                if len(lows) > 1:
                    first = next(iter(lows.values()))
                    entry = table[wire.edge_name]
                    where = f"wiring.mux.{wire.edge_name}" + (".channel" if isinstance(entry, dict) else "")
                    self.fail(where, wire.channel, f"slot {slot} holds a {card}, single-ended: all its "
                              f"channels share one LO. Channel {wire.channel} has its LO at {node}, "
                              f"channel {first.channel} ({first.edge_name}) at {_lo_node(net, first, inputs)}: "
                              "the card would short them. Use a 34901A or 34902A (two-wire) for "
                              "channels that span a resistor, or wire every LO to one node")

    def board(self, table, net, instruments) -> tuple[BoardWire, ...]:
        boards = {n: i for n, i in instruments.items() if i.kind == "board"}
        if table and not boards:
            self.fail("wiring.board", table, "board channels need a resistor board in "
                                             "[instruments] (driver = 'resistor_board')")
        wires, seen = [], {}
        for edge_name, entry in table.items():
            path = f"wiring.board.{edge_name}"
            edge = self.edge(path, edge_name, net)
            if not isinstance(entry, dict):
                if len(boards) != 1:
                    self.fail(path, entry, f"with {len(boards)} boards, write "
                                           "{ board = '<name>', channel = <n> }")
                entry = {"board": next(iter(boards)), "channel": entry}
            spec = self.section(path, entry, BOARD_WIRE)
            board, channel = spec["board"], spec["channel"]
            if board not in boards:
                self.fail(f"{path}.board", board, f"not a resistor board of [instruments] "
                                                  f"(they are: {', '.join(sorted(boards))})")
            count = boards[board]["channels"]
            if channel >= count:
                where = f"{path}.channel" if isinstance(table[edge_name], dict) else path
                self.fail(where, channel, f"board {board} has channels 0-{count - 1}")
            if (board, channel) in seen:
                self.fail(path, channel, f"{board} channel {channel} is already "
                                         f"{seen[(board, channel)]}")
            seen[(board, channel)] = edge_name
            wires.append(BoardWire(edge, net.edge_names[edge], board, channel))
        return tuple(sorted(wires, key=lambda w: w.edge))

    # -- [calibration] -------------------------------------------------------------------------
    def calibration(self, doc, instruments, board_wiring) -> dict[str, dict[int, ChannelCalibration]]:
        if not isinstance(doc, dict):
            self.fail("calibration", doc, "must be a table of [calibration.<board>] tables")
        boards = {n for n, i in instruments.items() if i.kind == "board"}
        for name in doc:
            if name not in boards:
                self.fail(f"calibration.{name}", doc[name], f"not a resistor board of "
                                                            f"[instruments] ({', '.join(sorted(boards)) or 'none'})")
        result: dict[str, dict[int, ChannelCalibration]] = {}
        for board in sorted({w.board for w in board_wiring}):
            if board not in doc:
                raise ConfigError(f"{self.source}: missing table [calibration.{board}]: every "
                                  "board channel wired to an edge needs a code -> ohms map")
            table = dict(doc[board]) if isinstance(doc[board], dict) else doc[board]
            if not isinstance(table, dict):
                self.fail(f"calibration.{board}", table, "must be a table")
            overrides = table.pop("channels", {})
            if not isinstance(overrides, dict):
                self.fail(f"calibration.{board}.channels", overrides, "must be a table of "
                                                                      "channel = { ... }")
            count = instruments[board]["channels"]
            # The board's own keys first, so that an error in them is reported where written.
            default = self.channel_calibration(f"calibration.{board}", table, own=table)
            per_channel = {}
            for key, entry in overrides.items():
                path = f"calibration.{board}.channels.{key}"
                if not (isinstance(key, str) and key.isdigit() and int(key) < count):
                    self.fail(path, entry, f"board {board} has channels 0-{count - 1}")
                if not isinstance(entry, dict):
                    self.fail(path, entry, "must be a table of calibration keys")
                # A channel's own table replaces the board's model; other keys refine it.
                inherited = ({"code_min": table["code_min"]} if "code_min" in table else {}) \
                    if "table" in entry else {k: v for k, v in table.items() if k != "table"}
                per_channel[int(key)] = self.channel_calibration(path, {**inherited, **entry},
                                                                 own=entry)
            wired = [w.channel for w in board_wiring if w.board == board]
            result[board] = {ch: per_channel.get(ch, default) for ch in wired}
        return result

    def channel_calibration(self, path: str, table: dict, own: dict) -> ChannelCalibration:
        """``table``: the keys that apply (inherited and own); ``own``: the keys written at
        ``path`` itself, which error messages name."""
        spec = self.section(path, table, CALIBRATION)
        code_min = spec["code_min"]
        if spec["table"] is not None:
            ohms = spec["table"]
            explicit = {"levels", "wiper_ohms", "end_to_end_ohms"} & set(own)
            if explicit:
                key = sorted(explicit)[0]
                self.fail(f"{path}.{key}", own[key], "a channel is calibrated by a table or "
                                                     "by the linear model, not both")
            if len(ohms) < 2:
                self.fail(f"{path}.table", ohms, "a table lists the ohms of at least 2 codes")
            if spec["code_max"] is not None and spec["code_max"] != code_min + len(ohms) - 1:
                self.fail(f"{path}.code_max", spec["code_max"],
                          f"the table lists codes {code_min}..{code_min + len(ohms) - 1}")
            return ChannelCalibration.table(ohms, code_min=code_min)
        code_max = spec["levels"] if spec["code_max"] is None else spec["code_max"]
        if code_max <= code_min:
            self.fail(f"{path}.code_max", code_max, f"must be above code_min = {code_min}")
        return ChannelCalibration.linear(wiper_ohms=spec["wiper_ohms"],
                                         end_to_end_ohms=spec["end_to_end_ohms"],
                                         levels=spec["levels"], code_min=code_min,
                                         code_max=code_max)

    # -- roles ---------------------------------------------------------------------------------
    def roles(self, net: Network, inputs, outputs, mux, board, file_path: str | None,
              crossbar: CrossbarConfig | None = None) -> Network:
        """The wiring decides the roles. A network file's own roles are a statement about the
        board, so they must agree with it (a builder's default roles are not). On a crossbar
        bench [crossbar] decides what is readable and tunable."""
        if crossbar is not None:
            readable = sorted(set(crossbar.readable) | {w.edge for w in outputs})
            return net.with_roles(input=np.array([w.edge for w in inputs], dtype=np.int64),
                                  output=np.array([w.edge for w in outputs], dtype=np.int64),
                                  readable=np.array(readable, dtype=np.int64),
                                  tunable=np.array(crossbar.tunable, dtype=np.int64))
        if file_path is not None:
            for role, wired, table in (("input", {w.edge for w in inputs}, "wiring.inputs"),
                                       ("output", {w.edge for w in outputs}, "wiring.outputs"),
                                       ("tunable", {w.edge for w in board}, "wiring.board")):
                missing = sorted(set(np.flatnonzero(net.roles[role]).tolist()) - wired)
                if missing:
                    name = net.edge_names[missing[0]]
                    self.fail("network.path", file_path, f"the network file marks edge {name} "
                                                         f"{role}, but {table} has no entry for it")
        readable = sorted({w.edge for w in mux} | {w.edge for w in outputs})
        return net.with_roles(input=np.array([w.edge for w in inputs], dtype=np.int64),
                              output=np.array([w.edge for w in outputs], dtype=np.int64),
                              readable=np.array(readable, dtype=np.int64),
                              tunable=np.array(sorted(w.edge for w in board), dtype=np.int64))
