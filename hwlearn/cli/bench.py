"""hwlearn bench list | check BENCH.toml: find instruments, and check a bench end to end.

The drivers are imported when a command runs: pyvisa's import would slow every other command.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

VISA_LIST_TIMEOUT_S = 5.0


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="list attached instruments, check a bench file's bench",
                       description="Instruments and benches. 'list' shows the VISA resources and "
                       "serial ports this machine sees; 'check' validates a bench file, opens every "
                       "instrument, prints identities, verifies wiring, limits and the safe state.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    listing = verbs.add_parser("list", help="VISA resources and serial ports")
    listing.add_argument("--timeout", type=float, default=VISA_LIST_TIMEOUT_S, metavar="S",
                         help=f"give up on the VISA search after S seconds (default {VISA_LIST_TIMEOUT_S:g})")
    add_visa_library(listing, "pyvisa-py")
    listing.set_defaults(run=run_list)
    check = verbs.add_parser("check", help="open every instrument of a bench file and check it")
    check.add_argument("bench_file", metavar="BENCH.toml")
    check.add_argument("--clear-watchdog", action="store_true",
                       help="acknowledge a tripped board watchdog instead of refusing the bench")
    add_visa_library(check, "the bench file's bench.visa_library")
    check.set_defaults(run=run_check)
    char = verbs.add_parser("characterise", aliases=["characterize"],
                            help="measure a crossbar's devices' response to pulses and fit the device model",
                            description="Open a crossbar bench ([crossbar]) and, for each device, RESET it to its "
                            "floor, then read its conductance after every SET and RESET pulse of one amplitude; fit "
                            "the simulator's device model to each trace, write calibration.json (name it in the "
                            "bench file's [crossbar] calibration: the bench then programs each device within its "
                            "own window, and its simulated twin emulates these devices) and characterisation.png "
                            "(measured against fitted curves).")
    char.add_argument("bench_file", metavar="BENCH.toml")
    char.add_argument("--out", default="characterisation", metavar="DIR",
                      help="folder of calibration.json and characterisation.png (default ./characterisation)")
    char.add_argument("--volts", type=float, metavar="V",
                      help="pulse amplitude, device volts (default: the middle of the SET amplitudes; within both "
                      "crossbar.set_volts and crossbar.reset_volts)")
    char.add_argument("--pulses", type=int, default=60, help="pulses of each polarity per cycle (default 60)")
    char.add_argument("--cycles", type=int, default=1, help="SET then RESET runs per device (default 1)")
    char.add_argument("--floor-pulses", type=int, metavar="N",
                      help="RESET pulses before the first read (default: --pulses)")
    char.add_argument("--devices", metavar="NAMES", help="comma-separated crosspoints (default: all tunable)")
    char.add_argument("--count", type=int, metavar="N", help="the first N tunable crosspoints")
    add_visa_library(char, "the bench file's bench.visa_library")
    char.set_defaults(run=run_characterise)


def add_visa_library(parser, default: str) -> None:
    """``--visa-library NAME|PATH``: which VISA library opens the SCPI instruments."""
    parser.add_argument("--visa-library", metavar="NAME|PATH",
                        help="the VISA library: pyvisa-py, ni-visa (the system's IVI VISA, e.g. "
                        f"NI-VISA) or the path of a VISA library file (default: {default})")


def visa_library(args) -> str | None:
    """The --visa-library value, checked as the bench file's key is; None if not given."""
    from hwlearn.config.bench import check_visa_library
    from hwlearn.errors import ConfigError

    if args.visa_library is None:
        return None
    problem = check_visa_library(args.visa_library)
    if problem:
        raise ConfigError(f"--visa-library {args.visa_library!r}: {problem}")
    return args.visa_library


# ------------------------------------------------------------------------------ list
def run_list(args) -> int:
    library = visa_library(args) or "pyvisa-py"
    visa, note = _visa_resources(args.timeout, library)
    print(f"VISA resources ({library}):")
    for resource in visa:
        print(f"  {resource}")
    if not visa:
        print(f"  none{f' ({note})' if note else ''}")
    print("serial ports:")
    ports = _serial_ports()
    for device, description in ports:
        print(f"  {device}  {description}")
    if not ports:
        print("  none")
    return 0


def _visa_resources(timeout_s: float, library: str) -> tuple[list[str], str]:
    """The VISA library's resources, searched in a daemon thread: a discovery that hangs (a LAN
    search, a stuck USB driver) costs at most ``timeout_s`` and never blocks the exit."""
    from hwlearn.config.bench import visa_backend

    found: dict[str, object] = {}

    def search() -> None:
        try:
            import warnings

            import pyvisa

            # pyvisa-py warns about optional discovery packages (psutil, zeroconf); a listing
            # that works without them is still the answer.
            warnings.filterwarnings("ignore", category=UserWarning, module="pyvisa_py")

            manager = pyvisa.ResourceManager(visa_backend(library))
            try:
                found["resources"] = list(manager.list_resources("?*"))
            finally:
                manager.close()
        except Exception as exc:  # a missing VISA backend is an answer too
            found["error"] = exc

    thread = threading.Thread(target=search, name="visa-list", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return [], f"the search did not finish within {timeout_s:g} s"
    if "error" in found:
        return [], f"{library}: {found['error']}"
    return found.get("resources", []), ""


def _serial_ports() -> list[tuple[str, str]]:
    from serial.tools import list_ports

    return [(p.device, p.description or "") for p in sorted(list_ports.comports(), key=lambda p: p.device)]


# ------------------------------------------------------------------------------ check
@dataclass
class Report:
    """Lines of 'what  ok|FAIL  detail'; the exit code is 1 if any line failed."""

    lines: list[tuple[str, bool, str]] = field(default_factory=list)

    def add(self, what: str, ok: bool, detail: str) -> bool:
        self.lines.append((what, ok, detail))
        print(f"  {what:<16} {'ok  ' if ok else 'FAIL'}  {detail}", flush=True)
        return ok

    def finish(self) -> int:
        failed = [what for what, ok, _ in self.lines if not ok]
        print(f"result: {'PASS' if not failed else 'FAIL (' + ', '.join(failed) + ')'}")
        return 1 if failed else 0


def run_check(args) -> int:
    from drivers.bench import open_bench
    from hwlearn.config.bench import load_bench_file
    from hwlearn.errors import HwlearnError
    from hwlearn.rig import RigError

    library = visa_library(args)
    print(f"bench check: {args.bench_file}")
    report = Report()
    try:
        config = load_bench_file(args.bench_file)
    except HwlearnError as exc:
        report.add("bench file", False, str(exc))
        return report.finish()
    net = config.network
    report.add("bench file", True, f"{config.name}: {net.n_edges} edges; inputs "
               f"{_names(net, net.inputs)}; outputs {_names(net, net.outputs)}; "
               f"{len(net.role('readable'))} readable, {len(net.role('tunable'))} tunable")
    try:
        bench = open_bench(config, clear_watchdog=args.clear_watchdog, visa_library=library)
    except (HwlearnError, RigError) as exc:
        report.add("open", False, str(exc))
        return report.finish()
    try:
        _check_instruments(bench, report)
        _check_wiring(bench, report, RigError)
        _check_crossbar(bench, report)
        _check_safe_state(bench, report)
    finally:
        bench.close()
    if bench.safe_state_failures:
        report.add("close", False, "; ".join(bench.safe_state_failures))
    faults = bench.faults.counts
    report.add("link faults", True, ", ".join(f"{n} {kind} on {name}" for (kind, name), n in
                                             sorted(faults.items())) if faults else "none")
    return report.finish()


def _names(net, edges) -> str:
    return ", ".join(net.edge_names[k] for k in edges) or "none"


def _check_instruments(bench, report: Report) -> None:
    cfg = bench.config
    for name, identity in bench.identities.items():
        inst = cfg.instruments[name]
        report.add(name, True, f"{identity}  [{inst.driver} at {inst.resource}]")
    for unit in bench.units:
        limits = ", ".join(f"{k} {unit.config[k]:g}" for k in ("max_volts", "max_amps", "max_watts"))
        compliance = ", ".join(f"{'current limit' if f == 'VOLT' else 'voltage limit'} {c:g}"
                               for f, c in unit.compliance.items() if c is not None)
        report.add(f"{unit.name} setup", True, f"{unit.role} {unit.wire.edge_name} (HI at "
                   f"{'a' if unit.polarity > 0 else 'b'}); {limits}; accepted {compliance}")


def _check_wiring(bench, report: Report, RigError) -> None:
    cfg = bench.config
    try:
        held = bench.board_codes()
        for board, codes in held.items():
            uncovered = {ch: c for ch, c in codes.items() if not cfg.calibration[board][ch].covers(c)}
            report.add(f"{board} codes", not uncovered,
                       f"{len(codes)} wired channels read back, codes {min(codes.values())}.."
                       f"{max(codes.values())}" if codes and not uncovered else
                       f"channels {uncovered} hold codes their calibration does not cover"
                       if uncovered else "no wired channel")
    except RigError as exc:
        report.add("board codes", False, str(exc))
    try:
        volts = bench.scan_idle()
        finite = all(math.isfinite(v) for v in volts.values())
        biggest = max((abs(v) for v in volts.values()), default=0.0)
        report.add("mux scan", finite, f"{len(volts)} channels read finite values with the sources "
                   f"off (largest |V| {biggest:.3g} V)")
    except RigError as exc:
        report.add("mux scan", False, str(exc))
    try:
        bench.set_inputs(None)
        bench.drive_outputs("open")
        volts = bench.measure(bench.capabilities.readable)
        report.add("sources at 0", True, f"inputs at 0 V and outputs open, switched on: no unit in "
                   f"compliance, {len(volts)} readable edges scanned (largest |V| "
                   f"{max(abs(volts)):.3g} V)")
    except RigError as exc:
        report.add("sources at 0", False, str(exc))


def _check_crossbar(bench, report: Report) -> None:
    """A crossbar bench: what its wiring reaches, and its matrix in the measure routing."""
    xb = getattr(bench, "crossbar", None)
    if xb is None:
        return
    health = bench.health().get(xb.matrix, {})
    sensed = sum(1 for w in xb.lines.values() if w.sense is not None)
    report.add("crossbar", health.get("routing") == "measure",
               f"{len(xb.lines)} lines, {sensed} sensed; {len(xb.readable)} crosspoints readable, {len(xb.tunable)} "
               f"tunable; matrix routing {health.get('routing')!r} with {health.get('relays_closed')} relays closed "
               f"({health.get('relay_operations')} relay operations so far)")


def _check_safe_state(bench, report: Report) -> None:
    for attempt in ("safe state", "safe state again"):
        outcome = bench.safe_state()
        problems = bench.safe_state_failures + bench.verify_safe()
        report.add(attempt, not problems, "; ".join(problems) if problems else
                   "every source off at 0, every relay open, every board channel at its safe code "
                   f"and out of shutdown ({outcome.seconds:.2f} s)")


# ------------------------------------------------------------------------------ characterise
def run_characterise(args) -> int:
    from pathlib import Path

    from drivers.bench import open_bench
    from hwlearn.app.characterise import characterise, choose_devices, write_outputs
    from hwlearn.config.bench import load_bench_file
    from hwlearn.errors import ConfigError

    library = visa_library(args)
    config = load_bench_file(args.bench_file)
    names = [n.strip() for n in args.devices.split(",") if n.strip()] if args.devices else None
    edges = choose_devices(config, names, args.count)
    limits = config.crossbar.limits
    volts = args.volts if args.volts is not None else sum(limits.set_volts) / 2
    for (low, high), key in ((limits.set_volts, "set_volts"), (limits.reset_volts, "reset_volts")):
        if not low <= volts <= high:
            raise ConfigError(f"--volts {volts:g}: outside crossbar.{key} = [{low:g}, {high:g}]")
    print(f"characterising {len(edges)} devices of {config.name!r}: {args.cycles} cycle(s) of {args.pulses} SET and "
          f"{args.pulses} RESET pulses of {volts:g} V, {limits.width_s * 1e3:g} ms", flush=True)
    with open_bench(config, visa_library=library) as bench:
        result = characterise(bench, edges, volts, args.pulses, args.cycles, args.floor_pulses)
        operations = bench.take_records()[0]
    write_outputs(result, Path(args.out))
    print(result.table())
    print(f"pulses {operations['pulses']:.0f}, relay operations {operations['relay_operations']:.0f}; the bench is "
          f"{'safe' if bench.last_safe_state.ok else 'NOT safe: ' + bench.last_safe_state.describe()}")
    print(f"wrote {result.calibration_path} and {result.figure_path}; name the calibration in the bench file's "
          f"[crossbar] (calibration = \"{result.calibration_path}\") for the bench and its twin to use it")
    return 0 if bench.last_safe_state.ok else 1
