"""Characterising a crossbar's devices: measure, fit, save a calibration, draw the curves.

``hwlearn bench characterise BENCH.toml`` (hwlearn/cli/bench.py) opens the crossbar bench and,
for every device chosen, measures its conductance after each pulse of one amplitude (RESET to
the floor, then SET and RESET runs: conductance against pulse number, both polarities;
CrossbarBench.characterise), fits the simulator's device model to each trace
(simulator/memristor_fit.py), and writes:

- ``calibration.json``: per device its fitted window, pulses across it (in pulses of the
  characterisation's amplitude and width), nonlinearities and cycle-to-cycle spread, or the
  conductance a stuck device stayed at; the population's medians and spreads. Name it in the
  bench file's ``[crossbar] calibration`` and the bench programs each device within its own
  window, and the bench's simulated twin (``--dry-run``, ``hwlearn virtual-bench --twin``)
  emulates these devices;
- ``characterisation.png``: measured conductance against pulse number beside the fitted model
  run through the same pulses from the first read (no noise), for the devices characterised.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwlearn.config.bench import BenchConfig
from hwlearn.config.crossbar import CALIBRATION_FORMAT
from hwlearn.errors import ConfigError
from simulator.memristor import step
from simulator.memristor_fit import Fit, Trace, fit_trace, population


@dataclass
class Characterisation:
    """What one characterisation found: device name -> (trace, fit), and where it was written."""

    bench: str
    volts: float
    width_s: float
    traces: dict[str, Trace]
    fits: dict[str, Fit]
    calibration_path: Path | None = None
    figure_path: Path | None = None

    def calibration(self) -> dict:
        devices = {}
        for name, fit in self.fits.items():
            if fit.parameters is None:
                devices[name] = {"stuck": fit.level}
            else:
                p = fit.parameters
                devices[name] = {"g_min": p.g_min, "g_max": p.g_max, "pulses": p.pulses, "nu_set": p.nu_set,
                                 "nu_reset": p.nu_reset, "c2c": p.c2c, "rms_residual": fit.rms_residual,
                                 "steps": fit.steps}
        return {"format": CALIBRATION_FORMAT, "version": 1, "bench": self.bench,
                "pulse": {"volts": self.volts, "width_s": self.width_s},
                "population": population(list(self.fits.values())), "devices": devices}

    def table(self) -> str:
        lines = [f"{'device':<10} {'g_min uS':>9} {'g_max uS':>9} {'pulses':>7} {'nu_set':>7} {'nu_reset':>8} "
                 f"{'c2c %':>6} {'rms %':>6}"]
        for name, fit in self.fits.items():
            p = fit.parameters
            if p is None:
                lines.append(f"{name:<10} stuck at {fit.level * 1e6:.3g} uS (no response)")
                continue
            lines.append(f"{name:<10} {p.g_min * 1e6:9.3f} {p.g_max * 1e6:9.3f} {p.pulses:7.2f} {p.nu_set:7.3f} "
                         f"{p.nu_reset:8.3f} {100 * p.c2c:6.3f} {100 * fit.rms_residual:6.3f}")
        pop = population(list(self.fits.values()))
        lines.append(f"population: {pop['devices']} devices, {pop['stuck']} stuck; median g_min "
                     f"{pop['g_min'] * 1e6:.4g} uS, g_max {pop['g_max'] * 1e6:.4g} uS, pulses {pop['pulses']:.4g}, "
                     f"nu_set {pop['nu_set']:.4g}, nu_reset {pop['nu_reset']:.4g}, c2c {100 * pop['c2c']:.3g} % "
                     f"(device-to-device spread of g_min {pop['g_min_d2d']:.3g}, pulses {pop['pulses_d2d']:.3g})")
        return "\n".join(lines)


def choose_devices(config: BenchConfig, names: list[str] | None, count: int | None) -> list[int]:
    """The tunable crosspoints to characterise: those named, else the first ``count``, else all."""
    xb = config.crossbar
    if xb is None:
        raise ConfigError(f"{config.source}: characterisation needs a crossbar bench ([crossbar])")
    tunable = list(xb.tunable)
    if names:
        lookup = {config.network.edge_names[e]: e for e in tunable}
        missing = [n for n in names if n not in lookup]
        if missing:
            raise ConfigError(f"--devices {','.join(missing)}: not tunable crosspoints of {config.source} "
                              f"(e.g. {', '.join(list(lookup)[:3])})")
        return [lookup[n] for n in names]
    return tunable if count is None else tunable[:count]


def characterise(bench, edges: list[int], volts: float, pulses: int, cycles: int = 1,
                 floor_pulses: int | None = None) -> Characterisation:
    """Measure and fit ``edges`` on an open CrossbarBench."""
    raw = bench.characterise(edges, volts, pulses, cycles, floor_pulses)
    names = bench.network.edge_names
    traces = {names[e]: Trace(*raw[e]) for e in edges}
    fits = {name: fit_trace(trace) for name, trace in traces.items()}
    return Characterisation(bench.config.name, volts, bench.config.crossbar.limits.width_s, traces, fits)


def write_outputs(result: Characterisation, out: Path, figure_devices: int = 8) -> None:
    """calibration.json and characterisation.png into ``out`` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    result.calibration_path = out / "calibration.json"
    tmp = result.calibration_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.calibration(), indent=1) + "\n")
    tmp.replace(result.calibration_path)
    result.figure_path = out / "characterisation.png"
    draw(result, result.figure_path, figure_devices)


def model_curve(fit: Fit, trace: Trace) -> np.ndarray:
    """The fitted model run through the trace's pulses from its first read, without noise."""
    if fit.parameters is None:
        return np.full(trace.siemens.size, fit.level)
    g = [float(trace.siemens[0])]
    for polarity in trace.polarity:
        g.append(step(fit.parameters, g[-1], int(polarity)))
    return np.array(g)


def draw(result: Characterisation, path: Path, devices: int = 8) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result.fits)[:devices]
    cols = min(4, len(names)) or 1
    rows = math.ceil(len(names) / cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False, sharex=True)
    for ax, name in zip(axes.flat, names):
        trace, fit = result.traces[name], result.fits[name]
        n = np.arange(trace.siemens.size)
        ax.plot(n, trace.siemens * 1e6, ".", ms=2.5, color="tab:blue", label="measured")
        ax.plot(n, model_curve(fit, trace) * 1e6, "-", lw=1.2, color="tab:red", label="fitted model")
        title = name if fit.parameters is not None else f"{name} (stuck)"
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("pulse number", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("conductance (uS)", fontsize=8)
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"{result.bench}: SET then RESET pulses of {result.volts:g} V, {result.width_s * 1e3:g} ms",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
