"""The probe plan: a whole batch's estimate from d_in + d_out unit responses measured on the rig.

At fixed resistances a resistor network is linear: every free state is a combination of the
responses to each input alone, and every later phase adds a combination of the responses to
each output drive alone. The probe plan measures those responses once per step and forms the
batch's outputs and any phase-based rule's estimate from them (hwlearn.rules.linear, the same
arithmetic as the simulator's whole-batch path), each edge's estimate still from quantities
measured at that edge plus the output error. One step, in phases (each a scan of the outputs
and the edges to update, ``repeats`` times, averaged):

1. one per input: that input at A_k volts, the others at 0 V, outputs open;
2. for each output drive the rule's phases use ('current' for current and series phases,
   'clamp' for clamped ones), one per output: inputs at 0 V, that output driven at its
   amplitude, the others at 0 (0 A, or clamped at 0 V);
3. the linearity check, per output drive: one random combination of all of them at once,
   compared with its prediction reading by reading (``CombinationCheck``).

Clamped phases (docs/theory.md, "The probe plan"): with clamp responses Vc the state clamped to
c with inputs x is (Vx - Vc H) x + Vc c, so a rule's clamp phase needs no current source.

The plan returns a ProbeOutcome; it programs nothing. Whether the check passed decides whether
its estimate may be used (hwlearn.training.rig_substrate). Amplitudes: hwlearn.rules.probe_design.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hwlearn.messages import Msg, Plan
from hwlearn.ports import Ports
from hwlearn.rules.linear import LinearResponse
from hwlearn.rules.phases import as_columns
from hwlearn.rules.probe_design import ProbeDesign, ReadingAccuracy

# The experiment file's ``plan`` and ``probe.on_nonlinear`` (hwlearn.config.experiment).
PLANS = ("auto", "probe", "per-sample")
ON_NONLINEAR = ("per-sample", "pause", "fail")
# Output drive probed for each phase mode: a series nudge is driven in Norton form.
PROBED_MODE = {"current": "current", "series": "current", "clamp": "clamp"}
# Amplitudes of a rig without limits when the batch applies nothing to a unit (volts, amps).
FALLBACK_LEVEL = {"input": 1.0, "current": 1e-3, "clamp": 1.0}


def probe_refusal(rule) -> str | None:
    """Why ``rule``'s estimate cannot be formed from unit responses, or None when it can: a rule
    given by its phases and terms (hwlearn.rules.base.BilinearRule) whose drives are current
    sources, series sources or clamps on the outputs."""
    phases, terms = getattr(rule, "phases", None), getattr(rule, "terms", None)
    if phases is None or terms is None:
        return (f"rule '{rule.name}' is not given by phases and terms of branch currents (it reprograms "
                "edges and compares losses), so its estimate cannot be formed from unit responses")
    for phase in phases:
        if phase.mode not in PROBED_MODE:
            return (f"rule '{rule.name}': phase '{phase.name}' drives the outputs as {phase.mode!r}, "
                    "which no probe measures")
    return None


def probe_modes(rule) -> tuple[str, ...]:
    """The output drives to probe for ``rule``, in the order its phases first use them."""
    return tuple(dict.fromkeys(PROBED_MODE[p.mode] for p in rule.phases))


def probe_phases(rule, d_in: int, d_out: int) -> int:
    """Source states the probe plan measures per step (each scanned ``repeats`` times, but the
    checks once): d_in + d_out per probed output drive, and one check per drive."""
    modes = probe_modes(rule)
    return d_in + len(modes) * (d_out + 1)


@dataclass(frozen=True)
class ProbeSet:
    """Readings of one kind of probe: ``volts`` (n_measured, n_probes) averaged over ``repeats``
    scans, the probe j at ``amplitudes[j]`` (volts or amps)."""

    kind: str                 # 'input', 'current' or 'clamp'
    amplitudes: np.ndarray
    volts: np.ndarray
    repeats: int

    @property
    def per_unit(self) -> np.ndarray:
        """Responses per volt (amp) of each probe."""
        return self.volts / self.amplitudes[None, :]


@dataclass(frozen=True)
class CombinationCheck:
    """One measured combination against its prediction. ``inputs`` volts and ``drive`` (volts or
    amps, ``mode``) applied; per reading: ``measured``, ``predicted`` and the ``bound`` the
    residual may reach."""

    mode: str
    inputs: np.ndarray
    drive: np.ndarray | None
    measured: np.ndarray
    predicted: np.ndarray
    bound: np.ndarray

    @property
    def residual(self) -> np.ndarray:
        return self.measured - self.predicted

    @property
    def ratios(self) -> np.ndarray:
        return np.abs(self.residual) / self.bound

    @property
    def passed(self) -> bool:
        return bool(np.all(np.isfinite(self.measured)) and np.all(self.ratios <= 1.0))

    def summary(self, names: Sequence[str]) -> dict:
        worst = int(np.argmax(self.ratios))
        return {"mode": self.mode, "passed": self.passed, "max_ratio": float(self.ratios[worst]),
                "worst_edge": names[worst], "residual_volts": float(self.residual[worst]),
                "bound_volts": float(self.bound[worst]),
                "rms_residual_volts": float(np.sqrt(np.mean(self.residual ** 2))),
                "inputs_volts": [float(v) for v in self.inputs],
                "drive": None if self.drive is None else [float(v) for v in self.drive]}


@dataclass
class ProbeOutcome:
    """What a probe plan found. ``gradient`` (k,) and ``outputs`` (d_out, B) are the batch's
    estimate and free outputs (None for an outputs-only probe); usable only when ``linear``."""

    inputs: ProbeSet
    drives: dict[str, ProbeSet]
    checks: list[CombinationCheck]
    measured_edges: np.ndarray
    summary: dict = field(default_factory=dict)
    gradient: np.ndarray | None = None
    outputs: np.ndarray | None = None

    @property
    def linear(self) -> bool:
        return all(check.passed for check in self.checks)

    def failed_check(self) -> CombinationCheck | None:
        return next((check for check in self.checks if not check.passed), None)


# ====================================================================== the plan
def probe_plan(rule, ports: Ports, edges: np.ndarray, x, y, known_ohms: np.ndarray, design: ProbeDesign,
               accuracy: ReadingAccuracy, rng: np.random.Generator, inputs: ProbeSet | None = None) -> Plan:
    """The probe plan of one step for ``rule`` on inputs x (d_in, B), targets y (d_out, B),
    updating ``edges``: the input probes (unless ``inputs``, measured at the same resistances,
    are given), the output probes of every drive the rule uses, a linearity check per drive.
    Returns a ProbeOutcome with the estimate (k,) and the predicted free outputs (d_out, B)."""
    x = as_columns(x, ports.n_inputs, "inputs")
    y = as_columns(y, ports.n_outputs, "targets")
    known = np.asarray(known_ohms, dtype=float)
    edges = np.asarray(edges, dtype=np.int64)
    measured = np.concatenate((ports.outputs, edges))
    reused = inputs is not None
    if inputs is None:
        inputs = yield from _input_probes(ports, measured, _input_amplitudes(design, ports, x), design.repeats)
    d_out = ports.n_outputs
    H = inputs.per_unit[:d_out] * ports.gain
    y_hat = H @ x
    drives = {}
    for mode in probe_modes(rule):
        amplitudes = design.amplitudes(mode)
        if amplitudes is None:
            amplitudes = _batch_level(rule, mode, y_hat, y, known[ports.outputs])
        drives[mode] = yield from _drive_probes(ports, measured, mode, amplitudes, design.repeats)
    checks = []
    for mode in drives:
        checks.append((yield from _check(ports, measured, inputs, drives[mode], design, accuracy, rng,
                                         known[ports.outputs])))
    yield Msg("drive_outputs", ("open", None))
    edge_rows = slice(d_out, None)
    per = {mode: probes.per_unit for mode, probes in drives.items()}
    response = LinearResponse.from_responses(
        ports, edges, known, Vx=inputs.per_unit[edge_rows] * ports.gain, H=H,
        Vj=per["current"][edge_rows] if "current" in per else None,
        R=per["current"][:d_out] if "current" in per else None,
        Vc=per["clamp"][edge_rows] if "clamp" in per else None)
    outcome = ProbeOutcome(inputs, drives, checks, measured, gradient=response.gradient(rule, x, y), outputs=y_hat)
    outcome.summary = summarize(outcome, ports, design, accuracy, reused)
    return outcome


def outputs_probe_plan(ports: Ports, edges: np.ndarray, x, design: ProbeDesign, accuracy: ReadingAccuracy,
                       rng: np.random.Generator) -> Plan:
    """The input probes and a check of a combination of inputs alone (outputs open): enough for
    the free outputs of any number of samples x (d_in, B). ``edges`` are measured too, so a
    following probe_plan at the same resistances can reuse the probes. Returns a ProbeOutcome."""
    x = as_columns(x, ports.n_inputs, "inputs")
    measured = np.concatenate((ports.outputs, np.asarray(edges, dtype=np.int64)))
    inputs = yield from _input_probes(ports, measured, _input_amplitudes(design, ports, x), design.repeats)
    check = yield from _check(ports, measured, inputs, None, design, accuracy, rng, None)
    outcome = ProbeOutcome(inputs, {}, [check], measured,
                           outputs=inputs.per_unit[:ports.n_outputs] * ports.gain @ x)
    outcome.summary = summarize(outcome, ports, design, accuracy, False)
    return outcome


def _scan(measured: np.ndarray, repeats: int) -> Plan:
    total = 0.0
    for _ in range(repeats):
        volts = yield Msg("measure", (measured,))
        total = total + np.asarray(volts, dtype=float)[:, 0]
    return total / repeats


def _input_probes(ports: Ports, measured: np.ndarray, amplitudes: np.ndarray, repeats: int) -> Plan:
    yield Msg("note", ("probe inputs",))
    yield Msg("drive_outputs", ("open", None))
    d_in = ports.n_inputs
    volts = np.empty((len(measured), d_in))
    for k in range(d_in):
        level = np.zeros((d_in, 1))
        level[k] = amplitudes[k]
        yield Msg("set_inputs", (level,))
        volts[:, k] = yield from _scan(measured, repeats)
    return ProbeSet("input", amplitudes, volts, repeats)


def _drive_probes(ports: Ports, measured: np.ndarray, mode: str, amplitudes: np.ndarray, repeats: int) -> Plan:
    yield Msg("note", (f"probe {mode}",))
    yield Msg("set_inputs", (None,))
    d_out = ports.n_outputs
    volts = np.empty((len(measured), d_out))
    for m in range(d_out):
        level = np.zeros((d_out, 1))
        level[m] = amplitudes[m]
        yield Msg("drive_outputs", (mode, level))
        volts[:, m] = yield from _scan(measured, repeats)
    return ProbeSet(mode, np.asarray(amplitudes, dtype=float), volts, repeats)


def _check(ports: Ports, measured: np.ndarray, inputs: ProbeSet, drive: ProbeSet | None, design: ProbeDesign,
           accuracy: ReadingAccuracy, rng: np.random.Generator, output_ohms: np.ndarray | None) -> Plan:
    """Apply a random combination inside the probes' amplitudes, the spread and the power the
    design allows; compare each reading with the prediction from the probes."""
    mode = "open" if drive is None else drive.kind
    yield Msg("note", (f"linearity check ({mode})",))
    d_in, d_out = ports.n_inputs, ports.n_outputs
    weights = rng.uniform(-1.0, 1.0, d_in + (0 if drive is None else d_out))
    w = weights[:d_in] * inputs.amplitudes
    u = None if drive is None else weights[d_in:] * drive.amplitudes
    spread = np.sum(np.abs(w)) + (0.0 if u is None else
                                  np.sum(np.abs(u) * (output_ohms if mode == "current" else 1.0)))
    watts = (0.0 if design.input_watts_per_volt is None else np.sum(np.abs(w) * design.input_watts_per_volt))
    if u is not None and mode in design.output_watts_per_level:
        watts += np.sum(np.abs(u) * design.output_watts_per_level[mode])
    scale = min(1.0, design.spread_volts.get(mode, np.inf) / spread if spread > 0 else 1.0,
                design.max_total_watts / watts if watts > 0 else 1.0)
    w = w * scale
    u = None if u is None else u * scale
    yield Msg("set_inputs", (w[:, None],))
    if drive is None:
        yield Msg("drive_outputs", ("open", None))
    else:
        yield Msg("drive_outputs", (mode, u[:, None]))
    volts = yield Msg("measure", (measured,))
    got = np.asarray(volts, dtype=float)[:, 0]
    predicted, bound = _predict(inputs, drive, w, u, d_out, accuracy)
    return CombinationCheck(mode, w, u, got, predicted, bound)


def _predict(inputs: ProbeSet, drive: ProbeSet | None, w: np.ndarray, u, d_out: int,
             accuracy: ReadingAccuracy) -> tuple[np.ndarray, np.ndarray]:
    """The prediction of a combination (inputs w volts, drive u) and each reading's bound: the
    measured reading's error plus each probe reading's error times its weight in the prediction."""
    cx = w / inputs.amplitudes
    predicted = inputs.volts @ cx
    err_x = accuracy.bound(inputs.volts, inputs.repeats)
    bound = err_x @ np.abs(cx)
    if drive is not None:
        if drive.kind == "clamp":
            # clamped: (Px - Pc H) w + Pc u; the clamps hold the outputs, so the probes' own
            # output readings enter only through H
            cd = (u - inputs.volts[:d_out] @ cx) / drive.amplitudes
            bound = bound + np.abs(drive.per_unit) @ (err_x[:d_out] @ np.abs(cx))
        else:
            cd = u / drive.amplitudes
        predicted = predicted + drive.volts @ cd
        bound = bound + accuracy.bound(drive.volts, drive.repeats) @ np.abs(cd)
    if accuracy.residual_volts is not None:
        return predicted, np.full(predicted.shape, accuracy.residual_volts)
    return predicted, bound + accuracy.bound(predicted)


def _input_amplitudes(design: ProbeDesign, ports: Ports, x: np.ndarray) -> np.ndarray:
    if design.input_volts is not None:
        return np.asarray(design.input_volts, dtype=float)
    level = np.max(np.abs(ports.gain * x), axis=1)
    fallback = float(np.max(level)) if np.max(level) > 0 else FALLBACK_LEVEL["input"]
    return np.where(level > 0, level, fallback)


def _batch_level(rule, mode: str, y_hat: np.ndarray, y: np.ndarray, output_ohms: np.ndarray) -> np.ndarray:
    """Each output's largest drive in ``mode`` over the batch and the rule's phases."""
    level = np.zeros(y.shape[0])
    for phase in rule.phases:
        if PROBED_MODE[phase.mode] == mode:
            _, values = phase.rig_drive(y_hat, y, output_ohms)
            level = np.maximum(level, np.max(np.abs(values), axis=1))
    fallback = float(np.max(level)) if np.max(level) > 0 else FALLBACK_LEVEL[mode]
    return np.where(level > 0, level, fallback)


# ====================================================================== the record
def summarize(outcome: ProbeOutcome, ports: Ports, design: ProbeDesign, accuracy: ReadingAccuracy,
              reused: bool) -> dict:
    """What the plan chose and found, JSON-able: amplitudes (and the limit that set each), phases
    and scans, the weakest probe's largest reading against the voltmeter's error, the checks."""
    net = ports.network
    names = [net.edge_names[k] for k in outcome.measured_edges]
    sets = [outcome.inputs, *outcome.drives.values()]
    unit = {"input": "V", "current": "A", "clamp": "V"}
    amplitudes = {}
    for probes in sets:
        labels = ports.input_names if probes.kind == "input" else ports.output_names
        amplitudes[probes.kind] = {label: float(a) for label, a in zip(labels, probes.amplitudes)}
    weakest = None
    for probes in sets:
        labels = ports.input_names if probes.kind == "input" else ports.output_names
        peaks = np.max(np.abs(probes.volts), axis=0)
        snr = peaks / accuracy.bound(peaks, probes.repeats)
        j = int(np.argmin(snr))
        if weakest is None or snr[j] < weakest["reading_over_error"]:
            weakest = {"probe": f"{probes.kind} {labels[j]}", "largest_reading_volts": float(peaks[j]),
                       "reading_over_error": float(snr[j])}
    phases = len(outcome.inputs.amplitudes) * (not reused) + sum(len(p.amplitudes) for p in outcome.drives.values())
    return {
        "plan": "probe",
        "input_probes_reused": reused,
        "phases": phases + len(outcome.checks),
        "scans": phases * outcome.inputs.repeats + len(outcome.checks),
        "repeats": outcome.inputs.repeats,
        "amplitudes": amplitudes,
        "units": {kind: unit[kind] for kind in amplitudes},
        "headroom": design.headroom,
        "bound_by": dict(design.bound_by),
        "weakest_probe": weakest,
        "tolerance": accuracy.describe(),
        "checks": [check.summary(names) for check in outcome.checks],
    }
