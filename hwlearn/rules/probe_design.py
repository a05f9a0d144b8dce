"""How hard the probe plan drives each unit, and how well the voltmeter reads.

Probe amplitudes (hwlearn.rules.probe). A rig that states its limits (a bench: ProbeLimits from
the bench file, hwlearn.config.probe) is probed as hard as those limits allow, times
``headroom``: a larger probe puts the voltmeter's error into the unit responses with a smaller
weight (docs/bench.md, "Noise"). Every bound below holds before anything is measured, from the
resistances the host knows, so no probe can put a unit in compliance or the voltmeter out of
range:

- A probe's *spread* B bounds every resistor voltage it causes: a series source of A volts or a
  clamp of C volts spreads the node potentials over at most A (C), a current J beside output
  resistor r over at most J r (the maximum principle of a resistor network driven at one port);
  spreads of simultaneous sources add (superposition).
- A unit sourcing volts on edge j whose ends see the rest of the network through conductances
  G_a, G_b (the edges leaving each end, ends joined by clamped outputs merged: a cut bound on the
  rest's conductance) carries at most B / (r_j + 1 / min(G_a, G_b)); a clamp on output m at most
  B (g_m + min(G_a, G_b)); a unit sourcing current on an output reads at most B across it.
- Those, at SAFETY of each compliance (and an output's compliance margin), the voltmeter's
  largest reading, and each unit's own |level|, |level| x compliance and the bench's total power,
  give every probe's largest amplitude; the probe is driven at ``headroom`` times that.

A rig without stated limits (the simulated rig) is probed at the largest level the per-sample
plan applies to each unit in the batch.

Reading accuracy (ReadingAccuracy): the largest error of one reading, used by the linearity
check. The default for a bench is the 34970A's DC-volts specification (1 year, 23 +- 5 C, at
1 NPLC or more, switching errors included), per range: fraction of reading + fraction of range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from hwlearn.network import Network
from hwlearn.ports import Ports

# Fraction of a compliance a bound may reach: the bounds are strict, this covers calibration.
SAFETY = 0.9
# A reading's random error counted this many standard deviations in a tolerance.
NOISE_SIGMAS = 5.0
# Keysight 34970A internal DMM, DC volts, 1-year accuracy: (range volts, fraction of reading,
# fraction of range). 10 V: 0.0035 % + 0.0005 % as in the data sheet's worked example.
DCV_34970A = ((0.1, 50e-6, 40e-6), (1.0, 40e-6, 7e-6), (10.0, 35e-6, 5e-6), (100.0, 45e-6, 6e-6),
              (300.0, 45e-6, 20e-6))
# A reading is autoranged up beyond 120 % of a range.
OVERRANGE = 1.2


@dataclass(frozen=True)
class ReadingAccuracy:
    """The largest error of one voltmeter reading of v volts:
    relative(range) |v| + offset(range) x range + floor_volts + NOISE_SIGMAS x noise_volts / sqrt(repeats),
    the range being ``volt_range`` if fixed, else the smallest of ``table`` holding |v| (120 %).

    table         : ((range volts, fraction of reading, fraction of range), ...); empty: exact.
    noise_volts   : random error (standard deviation) of one reading, e.g. a simulation's read noise.
    residual_volts: a fixed bound on the linearity check's residual per reading (the bench file's
                    ``bench.linearity_tolerance_volts``), used instead of the model when given.
    """

    table: tuple[tuple[float, float, float], ...] = ()
    volt_range: float | None = None
    floor_volts: float = 0.0
    noise_volts: float = 0.0
    residual_volts: float | None = None

    @classmethod
    def exact(cls, noise_volts: float = 0.0) -> ReadingAccuracy:
        """Readings exact up to rounding (a simulation), plus ``noise_volts`` of read noise."""
        return cls(((np.inf, 1e-9, 0.0),), floor_volts=1e-12, noise_volts=noise_volts)

    @classmethod
    def keysight_34970a(cls, volt_range: float | str = "AUTO", residual_volts: float | None = None) -> ReadingAccuracy:
        return cls(DCV_34970A, None if isinstance(volt_range, str) else float(volt_range),
                   residual_volts=residual_volts)

    def bound(self, volts, repeats: int = 1) -> np.ndarray:
        """Largest error (volts) of readings ``volts`` (any shape), each an average of ``repeats``."""
        v = np.abs(np.asarray(volts, dtype=float))
        error = np.full(v.shape, self.floor_volts + NOISE_SIGMAS * self.noise_volts / np.sqrt(repeats))
        if self.table:
            ranges = np.array([row[0] for row in self.table])
            if self.volt_range is not None:
                slot = np.full(v.shape, int(np.argmin(np.abs(ranges - self.volt_range))))
            else:
                slot = np.minimum(np.searchsorted(ranges * OVERRANGE, v), len(ranges) - 1)
            relative = np.array([row[1] for row in self.table])[slot]
            offset = np.array([row[2] * (row[0] if np.isfinite(row[0]) else 0.0) for row in self.table])[slot]
            error = error + relative * v + offset
        return error

    def describe(self) -> str:
        if self.residual_volts is not None:
            return f"{self.residual_volts:g} V per reading (bench.linearity_tolerance_volts)"
        if self.table and np.isfinite(self.table[0][0]):
            where = f"{self.volt_range:g} V range" if self.volt_range is not None else "autorange"
            return f"the voltmeter's DC-volts accuracy ({where}) propagated through the prediction"
        return "reading rounding" + (f" and {NOISE_SIGMAS:g} x {self.noise_volts:g} V read noise"
                                     if self.noise_volts else "")


@dataclass(frozen=True)
class UnitLimits:
    """One source-measure unit's limits (SI), as the bench file states them."""

    name: str
    max_volts: float
    max_amps: float
    max_watts: float
    compliance_amps: float | None = None
    compliance_volts: float | None = None


@dataclass(frozen=True)
class ProbeLimits:
    """What a bench allows: the unit on each input and output edge (edge index -> limits), the
    bench's total power, the outputs' compliance margin and the voltmeter's largest reading."""

    units: Mapping[int, UnitLimits]
    max_total_watts: float = np.inf
    compliance_margin: float = 0.0
    read_volts: float = np.inf


@dataclass(frozen=True)
class ProbeDesign:
    """Amplitudes of one step's probes. None: at the batch's own largest level (a rig without
    stated limits). ``spread_volts[mode]``: the largest spread a combination may reach with the
    outputs in that mode ('open' for inputs alone); ``watts_per_level``: each unit's worst-case
    watts per volt or amp sourced (its compliance), by mode, for the bench's total power.
    ``bound_by``: probe name -> the limit that set its amplitude."""

    input_volts: np.ndarray | None
    current_amps: np.ndarray | None = None
    clamp_volts: np.ndarray | None = None
    repeats: int = 1
    headroom: float = 1.0
    spread_volts: Mapping[str, float] = field(default_factory=dict)
    input_watts_per_volt: np.ndarray | None = None
    output_watts_per_level: Mapping[str, np.ndarray] = field(default_factory=dict)
    max_total_watts: float = np.inf
    bound_by: Mapping[str, str] = field(default_factory=dict)

    def amplitudes(self, mode: str) -> np.ndarray | None:
        return {"input": self.input_volts, "current": self.current_amps, "clamp": self.clamp_volts}[mode]


def cut_conductance(network: Network, ohms: np.ndarray, edge: int, merged=()) -> float:
    """An upper bound on the conductance the rest of the network presents between the ends of
    ``edge`` (without the edge itself): the conductance of the edges leaving the lighter of its
    two ends, ends joined through the ``merged`` edges (clamped outputs) counted as one node."""
    parent = list(range(network.n_nodes))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for k in merged:
        if k != edge:
            parent[find(int(network.edge_a[k]))] = find(int(network.edge_b[k]))
    group = np.array([find(n) for n in range(network.n_nodes)])
    ga, gb = group[network.edge_a], group[network.edge_b]
    a, b = group[network.edge_a[edge]], group[network.edge_b[edge]]
    conductance = 1.0 / np.asarray(ohms, dtype=float)
    crossing = (ga != gb) & (np.arange(network.n_edges) != edge)
    if a == b:
        return np.inf
    leaving_a = np.sum(conductance[crossing & ((ga == a) | (gb == a))])
    leaving_b = np.sum(conductance[crossing & ((ga == b) | (gb == b))])
    return float(min(leaving_a, leaving_b))


def design_probes(limits: ProbeLimits | None, ports: Ports, known_ohms: np.ndarray, modes, *,
                  headroom: float = 0.5, repeats: int = 1) -> ProbeDesign:
    """The probes of one step: inputs, and outputs in each of ``modes`` ('current', 'clamp').
    Without limits every amplitude is left to the batch (None)."""
    if limits is None:
        return ProbeDesign(None, repeats=repeats, headroom=1.0,
                           bound_by={"all": "the batch's largest level (no limits stated)"})
    net, ohms = ports.network, np.asarray(known_ohms, dtype=float)
    inputs, outputs = [int(k) for k in ports.input_index], [int(k) for k in ports.outputs]
    missing = [net.edge_names[k] for k in inputs + outputs if k not in limits.units]
    if missing:
        raise ValueError(f"probe limits: no source unit stated for edges {', '.join(missing)}")
    unit = limits.units
    name = net.edge_names
    def spread_caps(clamped: bool) -> list[tuple[float, str]]:
        """Caps on a probe's spread (volts), each with the limit that sets it; ``clamped``: the
        outputs are clamps (their ends joined for the cut bounds, their currents limited)."""
        merged = outputs if clamped else ()
        caps = [(limits.read_volts, "the voltmeter's largest reading")]
        for k in inputs:
            u = unit[k]
            if u.compliance_amps is not None:
                rest = cut_conductance(net, ohms, k, merged)
                caps.append((SAFETY * u.compliance_amps * (ohms[k] + 1.0 / rest),
                             f"{u.name}'s compliance_amps (input {name[k]})"))
        for m in outputs:
            u = unit[m]
            if u.compliance_volts is not None:  # a current-sourcing output reads the spread across it
                caps.append((SAFETY * (1.0 - limits.compliance_margin) * u.compliance_volts,
                             f"{u.name}'s compliance_volts (output {name[m]})"))
            if clamped and u.compliance_amps is not None:
                rest = cut_conductance(net, ohms, m, merged)
                caps.append((SAFETY * u.compliance_amps / (1.0 / ohms[m] + rest),
                             f"{u.name}'s compliance_amps (output {name[m]} clamped)"))
        return caps

    spread = {"open": min(spread_caps(False)), "current": min(spread_caps(False)), "clamp": min(spread_caps(True))}
    bound_by: dict[str, str] = {}

    def amplitude(label: str, own: list[tuple[float, str]]) -> float:
        value, why = min(own)
        bound_by[label] = why
        return headroom * value

    def own_caps(u: UnitLimits, level_key: str, compliance: float | None) -> list[tuple[float, str]]:
        level = u.max_volts if level_key == "max_volts" else u.max_amps
        caps = [(level, f"{u.name}'s {level_key}")]
        if compliance:
            caps += [(u.max_watts / compliance, f"{u.name}'s max_watts"),
                     (limits.max_total_watts / compliance, "bench.max_total_watts")]
        return caps

    input_volts = np.array([amplitude(name[k], own_caps(unit[k], "max_volts", unit[k].compliance_amps)
                                      + [spread["open"]]) for k in inputs])
    current = clamp = None
    per_level = {}
    if "current" in modes:
        current = np.array([amplitude(f"{name[m]} current", own_caps(unit[m], "max_amps", unit[m].compliance_volts)
                                      + [(spread["current"][0] / ohms[m], spread["current"][1])]) for m in outputs])
        per_level["current"] = np.array([unit[m].compliance_volts or 0.0 for m in outputs])
    if "clamp" in modes:
        clamp = np.array([amplitude(f"{name[m]} clamp", own_caps(unit[m], "max_volts", unit[m].compliance_amps)
                                    + [spread["clamp"]]) for m in outputs])
        per_level["clamp"] = np.array([unit[m].compliance_amps or 0.0 for m in outputs])
    return ProbeDesign(input_volts, current, clamp, repeats, headroom,
                       {mode: headroom * cap for mode, (cap, _) in spread.items()},
                       np.array([unit[k].compliance_amps or 0.0 for k in inputs]), per_level,
                       headroom * limits.max_total_watts, bound_by)
