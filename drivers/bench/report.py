"""What a Bench tells its run's records and an operator's display about its instruments.

``setup(config, identities)`` is static: what each instrument is, where it is wired and the
limits in force (read from the validated bench file), with the board's network. It goes into
the run's start document (Bench.describe), so a viewer in another process knows the bench.

``health(bench)`` is the live part: connection, output state, last reading and compliance flag
of each source-measure unit, the last scan, the codes held, exchange counts. It is read from what
the Bench already holds, without I/O, and published as 'instruments' events (Rig.health).
"""

from __future__ import annotations

import math

from hwlearn.config.bench import BenchConfig
from hwlearn.network_file import network_to_dict

# The limits of each instrument kind an operator must see (bench file keys, SI units).
LIMIT_KEYS = {
    "smu": ("max_volts", "max_amps", "max_watts", "ramp_volts", "ramp_amps", "compliance_amps",
            "compliance_volts"),
    "dmm": ("volt_range", "nplc"),
    "board": ("channels", "heartbeat_s"),
    "matrix": ("slots", "forbidden"),
}


def _wired(config: BenchConfig, name: str) -> list[str]:
    """What an instrument is connected to, in words: 'input Rv0_0', 'mux 101 Rh0_0', ..."""
    wires = [f"input {w.edge_name}" for w in config.inputs if w.smu == name]
    wires += [f"output {w.edge_name}" for w in config.outputs if w.smu == name]
    if config.dmm is not None and config.dmm.name == name:
        wires += [f"{len(config.mux)} mux channels"]
    boards = [w for w in config.board_wiring if w.board == name]
    if boards:
        wires += [f"{len(boards)} board channels"]
    xb = config.crossbar
    if xb is not None:
        if name == xb.matrix:
            wires += [f"{len(xb.channels)} matrix channels to {len(xb.lines)} crossbar lines"]
        elif name == xb.programmer:
            wires += [f"the programming bus ({sum(1 for w in xb.lines.values() if w.prog_channel)} lines)"]
        elif config.dmm is not None and config.dmm.name == name:
            wires += [f"{sum(1 for w in xb.lines.values() if w.sense is not None)} crossbar lines sensed"]
    return wires


def setup(config: BenchConfig, identities: dict[str, str]) -> dict:
    """The static description: bench limits, each instrument's driver, resource, identity,
    wiring and limits, and the board's network (hwlearn.network_file's document)."""
    instruments = {}
    for name, inst in config.instruments.items():
        limits = {key: inst.settings.get(key) for key in LIMIT_KEYS[inst.kind]}
        limits.update(timeout_s=inst.timeout_s, retries=inst.retries)
        instruments[name] = {"kind": inst.kind, "driver": inst.driver, "resource": inst.resource,
                             "identity": identities.get(name), "wired": _wired(config, name),
                             "limits": limits}
    limits = {"max_total_watts": config.max_total_watts, "compliance_margin": config.compliance_margin}
    if config.crossbar is not None:
        xb = config.crossbar
        limits.update(set_volts=list(xb.limits.set_volts), reset_volts=list(xb.limits.reset_volts),
                      pulse_width_s=xb.limits.width_s, max_pulses=xb.limits.max_pulses,
                      disturb_volts=xb.disturb_volts, read_volts=xb.read_volts,
                      programmer_compliance_amps=xb.compliance_amps)
    return {"limits": limits,
            "setup": instruments, "network": network_to_dict(config.network)}


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def health(bench) -> dict[str, dict]:
    """Instrument name -> its live state, from the Bench's own bookkeeping."""
    connected = not bench._closed
    exchanges = bench.round_trips.by_instrument
    out: dict[str, dict] = {}
    for unit in bench.units:
        reading = unit.last_reading
        state = unit.applied
        out[unit.name] = {
            "connected": connected,
            "role": unit.role,
            # what it sources: volts or amps at its terminals, None when its state is unknown
            "output_on": bool(state.on) if state.function in ("VOLT", "CURR") else None,
            "output_volts": _number(state.level) if state.function == "VOLT" else None,
            "output_amps": _number(state.level) if state.function == "CURR" else None,
            "last_volts": None if reading is None else _number(reading.volts),
            "last_amps": None if reading is None else _number(reading.amps),
            "in_compliance": None if reading is None else bool(reading.in_compliance),
            "exchanges": exchanges.get(unit.name, 0),
        }
    dmm = bench.config.dmm
    if dmm is not None:
        scan = bench.last_scan
        out[dmm.name] = {
            "connected": connected,
            "last_scan_channels": len(scan),
            "last_scan_max_abs_volts": max((abs(v) for v in scan.values()), default=None),
            "exchanges": exchanges.get(dmm.name, 0),
        }
    for name, held in bench._held.items():
        out[name] = {"connected": connected, "codes_held": len(held),
                     "codes_range": [min(held.values()), max(held.values())] if held else None,
                     "exchanges": exchanges.get(name, 0)}
    for failure in bench.safe_state_failures:
        who = failure.split(":", 1)[0]
        if who in out:
            out[who]["safe_state_failure"] = failure
    return out
