"""The probe plan (hwlearn.rules.probe): a step's estimate from d_in + d_out unit responses.

Pinned here: the estimate and outputs equal the per-sample plan's for every phase-based rule
(clamped phases included); rules without phases and terms are refused with the reason; 'auto'
probes only where it measures fewer phases; the plan runs on the simulated rig through the
engine and agrees with the fast path; training with probes ends where per-sample training ends;
no probe or check exceeds a bench limit; the reading tolerance follows the 34970A's specification;
the linearity check trips on a voltage-dependent edge and nothing from that step is programmed.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwlearn.app.launch import simulated_substrate
from hwlearn.builders import crossbar, lattice
from hwlearn.config import load_experiment
from hwlearn.config.bench import load_bench_file
from hwlearn.config.probe import probe_limits, reading_accuracy
from hwlearn.documents import Checkpoint
from hwlearn.engine import RunEngine
from hwlearn.errors import ConfigError
from hwlearn.experiment import build_experiment
from hwlearn.messages import PlanError
from hwlearn.ports import Ports
from hwlearn.rig import Capabilities
from hwlearn.rules import RULES, CoupledLearning, FiniteDifference, LinearResponse, Omega, SolverExecutor, TwoPhase
from hwlearn.rules.probe import probe_modes, probe_phases, probe_plan, probe_refusal
from hwlearn.rules.probe_design import SAFETY, ProbeLimits, ReadingAccuracy, UnitLimits, design_probes
from hwlearn.rules.simulate import per_sample_gradient_and_outputs
from hwlearn.solver import KirchhoffSolver
from hwlearn.training.probing import LinearityError, ProbeSettings, choose_plan
from hwlearn.training.rig_substrate import RigSubstrate
from hwlearn.training.session import settings_from
from hwlearn.training.substrate import StepDiscarded
from hwlearn.training.trainer import Trainer
from simulator.devices import DeviceModel
from simulator.nonlinear import VoltageDependentEdges
from simulator.rig import SimulatedRig
from tests.bench_helpers import EXAMPLE

PROBED_RULES = [cls() for cls in RULES.values() if probe_refusal(cls()) is None]


def _network(seed=0, builder="lattice"):
    rng = np.random.default_rng(seed)
    net = lattice(4, 4, inputs=2, outputs=3) if builder == "lattice" else crossbar(3, 2)
    net = net.with_resistances(1000.0 * np.exp(0.4 * rng.standard_normal(net.n_edges)))
    ports = Ports.from_roles(net, gain=0.4)
    x = rng.standard_normal((ports.n_inputs, 12))
    y = 0.1 * rng.standard_normal((ports.n_outputs, 12))
    return net, ports, x, y


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("builder", ["lattice", "crossbar"])
@pytest.mark.parametrize("rule", PROBED_RULES, ids=lambda r: r.name)
def test_the_probe_estimate_equals_the_per_sample_plan_for_every_phase_based_rule(rule, builder):
    net, ports, x, y = _network(1, builder)
    fz = KirchhoffSolver(net).factorize()
    edges = net.role("tunable")
    design = design_probes(None, ports, net.resistance, probe_modes(rule))
    outcome = SolverExecutor(fz, ports).run(probe_plan(rule, ports, edges, x, y, net.resistance, design,
                                                       ReadingAccuracy.exact(), np.random.default_rng(0)))
    gradient, outputs = per_sample_gradient_and_outputs(fz, ports, rule, x, y, edges)
    assert outcome.linear, outcome.summary["checks"]
    assert _rel(outcome.gradient, gradient) < 1e-9
    assert _rel(outcome.outputs, outputs) < 1e-12
    assert outcome.summary["phases"] == probe_phases(rule, ports.n_inputs, ports.n_outputs)


def test_a_clamped_phase_from_clamp_probes_equals_the_current_drive_form():
    """(Vx - Vc H) x + Vc c, with Vc measured by clamping, against Vx x + Vj R^-1 (c - H x)."""
    net, ports, x, y = _network(2)
    fz = KirchhoffSolver(net).factorize()
    edges = net.role("tunable")
    solved = LinearResponse(fz, ports, edges)
    eye = np.eye(ports.n_outputs)
    clamped = fz.solve(ports.excitation(None, drive=("clamp", eye)))
    by_clamps = LinearResponse.from_responses(ports, edges, net.resistance, Vx=solved.Vx, H=solved.H,
                                              Vc=clamped.edge_voltages(edges))
    rule = CoupledLearning(0.3)
    assert _rel(by_clamps.gradient(rule, x, y), solved.gradient(rule, x, y)) < 1e-12
    np.testing.assert_allclose(clamped.edge_voltages(ports.outputs), eye, atol=1e-12)


def test_rules_without_phases_and_terms_are_refused_naming_why():
    rule = FiniteDifference()
    net, ports, _, _ = _network()
    caps = Capabilities(frozenset({"open", "current", "clamp"}), net.role("readable"), net.role("tunable"))
    assert "reprograms edges" in probe_refusal(rule)
    with pytest.raises(PlanError, match="plan = 'probe': rule 'finite_difference'.*per-sample"):
        choose_plan("probe", rule, caps, ports, 40)
    plan, why = choose_plan("auto", rule, caps, ports, 40)
    assert plan == "per-sample" and "finite_difference" in why
    config = load_experiment(EXAMPLE.parent / "iris-finite-difference.toml")
    config["plan"] = "probe"
    with pytest.raises(ConfigError, match="plan = 'probe'.*finite_difference"):
        build_experiment(config, "exp.toml")


def test_auto_probes_where_it_measures_fewer_phases_and_where_the_rig_has_the_drives():
    net, ports, _, _ = _network()
    caps = Capabilities(frozenset({"open", "current", "clamp"}), net.role("readable"), net.role("tunable"))
    rule = Omega()  # 2 + 3 current probes + 1 check = 6 phases, per sample 2
    assert choose_plan("auto", rule, caps, ports, 3)[0] == "per-sample"
    assert choose_plan("auto", rule, caps, ports, 4)[0] == "probe"
    assert choose_plan("auto", rule, caps, ports, 4, repeats=3)[0] == "per-sample"
    no_clamps = Capabilities(frozenset({"open", "current"}), net.role("readable"), net.role("tunable"))
    plan, why = choose_plan("auto", CoupledLearning(), no_clamps, ports, 40)
    assert plan == "per-sample" and "clamp" in why


def _simulated(net, ports, plan, rule, device=None, nonlinearity=None, on_nonlinear="per-sample", limits=None):
    device = device or DeviceModel(r_min=100.0, r_max=1e5)
    rig = SimulatedRig(net, device, np.random.default_rng(0), nonlinearity=nonlinearity)
    settings = ProbeSettings(plan, "test", on_nonlinear=on_nonlinear, limits=limits)
    return rig, RigSubstrate(rig, ports, net.role("tunable"), rule, probe=settings)


@pytest.mark.parametrize("rule", [Omega(), TwoPhase(0.05), CoupledLearning(0.2)], ids=lambda r: r.name)
def test_the_probe_plan_on_the_simulated_rig_agrees_with_the_fast_path(rule):
    net, ports, x, y = _network(3)
    rig, substrate = _simulated(net, ports, "probe", rule)
    gradient, outputs = substrate.gradient(rule, x, y)
    fast = LinearResponse(rig.circuit.factorization(), ports, net.role("tunable"))
    assert _rel(gradient, fast.gradient(rule, x, y)) < 1e-9
    assert _rel(outputs, fast.outputs(x)) < 1e-12
    assert substrate.step_scalars["linearity_ratio"] < 1.0
    assert substrate.engine.counts["measure"] == probe_phases(rule, ports.n_inputs, ports.n_outputs)


@pytest.mark.parametrize("example", ["omega", "ep", "coupled"])
def test_full_batch_training_with_probes_ends_where_per_sample_training_ends(example):
    """On the simulated rig with ideal, continuous devices (no code steps to absorb differences)."""
    config = load_experiment(EXAMPLE.parent / f"bench-teacher-{example}.toml")
    config["training"].update(batch_size=40, epochs=4)
    ends = {}
    for plan in ("per-sample", "probe"):
        exp = build_experiment(config, "exp.toml", network=load_bench_file(EXAMPLE).network)
        rig = SimulatedRig(exp.network, DeviceModel(r_min=100.0, r_max=8900.0), exp.rngs["device"], exp.initial_ohms)
        substrate = RigSubstrate(rig, exp.ports, exp.learnable, exp.rule, bounds=(100.0, 8900.0),
                                 probe=ProbeSettings(plan, "test"))
        start = rig.resistances()
        result = Trainer(substrate, exp.task, exp.rule, settings_from(config), exp.rngs).run()
        ends[plan] = (rig.resistances(), result.metrics["train_loss"])
    moved = np.max(np.abs(np.log(ends["probe"][0] / start)))
    assert moved > 0.05, "the run must move the resistances for the comparison to mean something"
    assert _rel(ends["probe"][0], ends["per-sample"][0]) < 1e-9
    assert abs(ends["probe"][1] - ends["per-sample"][1]) < 1e-9 * ends["per-sample"][1]


class _LimitWatcher(SolverExecutor):
    """Runs a plan on the solver and records, at every measurement, each source unit's current
    or voltage against its bench limit (the fraction reached)."""

    def __init__(self, fz, ports, limits):
        super().__init__(fz, ports)
        self.limits, self.worst = limits, {}

    def answer(self, msg):
        if msg.verb == "measure":
            state = self._factorization().solve(self.ports.sources(self._inputs, drive=self._drive))
            ports, units = self.ports, self.limits.units
            volts = np.abs(state.edge_voltages()[:, 0])
            self._note("voltmeter", np.max(volts) / self.limits.read_volts)
            for k in ports.input_index:
                self._note(units[k].name, abs(state.edge_currents([k])[0, 0]) / units[k].compliance_amps)
            for m in ports.outputs:
                u = units[m]
                self._note(u.name + " volts", volts[m] / ((1 - self.limits.compliance_margin) * u.compliance_volts))
            if self._drive is not None and self._drive[0] == "clamp":
                for m, amps in zip(ports.outputs, state.clamp_currents[:, 0]):
                    self._note(units[m].name + " clamp", abs(amps) / units[m].compliance_amps)
            if self._inputs is not None:
                levels = np.abs(np.asarray(self._inputs)[:, 0])
                watts = sum(a * units[k].compliance_amps for a, k in zip(levels, ports.input_index))
                self._note("total watts", watts / self.limits.max_total_watts)
        return super().answer(msg)

    def _note(self, what, fraction):
        self.worst[what] = max(self.worst.get(what, 0.0), float(fraction))


@pytest.mark.parametrize("rule", [Omega(), CoupledLearning()], ids=lambda r: r.name)
@pytest.mark.parametrize("seed", [0, 1])
def test_no_probe_and_no_check_reaches_a_bench_limit_whatever_the_resistances(rule, seed):
    config = load_bench_file(EXAMPLE)
    limits = probe_limits(config)
    rng = np.random.default_rng(seed)
    net = config.network
    ohms = net.resistance.copy()
    tunable = net.role("tunable")
    ohms[tunable] = np.exp(rng.uniform(np.log(100.0), np.log(8900.0), tunable.size))  # the board's span
    net = net.with_resistances(ohms)
    ports = Ports.from_roles(net, gain=0.4)
    design = design_probes(limits, ports, ohms, probe_modes(rule), headroom=1.0)
    watcher = _LimitWatcher(KirchhoffSolver(net).factorize(), ports, limits)
    x, y = rng.standard_normal((2, 8)), 0.1 * rng.standard_normal((3, 8))
    for check_seed in range(5):
        outcome = watcher.run(probe_plan(rule, ports, tunable, x, y, ohms, design, ReadingAccuracy.exact(),
                                         np.random.default_rng(check_seed)))
        assert outcome.linear
    assert max(watcher.worst.values()) <= SAFETY + 1e-12, watcher.worst
    # and the probes are not timid: some limit is what set them
    assert max(watcher.worst.values()) > 0.2, watcher.worst


def test_the_tolerance_follows_the_34970a_specification_by_range():
    acc = ReadingAccuracy.keysight_34970a(10.0)
    # the data sheet's worked example: 9 V on the 10 V range, 1 year: 365 uV
    assert acc.bound(9.0) == pytest.approx(365e-6, rel=1e-12)
    auto = ReadingAccuracy.keysight_34970a("AUTO")
    assert auto.bound(0.5) == pytest.approx(40e-6 * 0.5 + 7e-6 * 1.0, rel=1e-12)     # 1 V range
    assert auto.bound(1.1) == pytest.approx(40e-6 * 1.1 + 7e-6 * 1.0, rel=1e-12)     # 120 % of it
    assert auto.bound(1.3) == pytest.approx(35e-6 * 1.3 + 5e-6 * 10.0, rel=1e-12)    # 10 V range
    fixed = reading_accuracy(load_bench_file(EXAMPLE))
    assert fixed.residual_volts is None and fixed.volt_range is None


def _nonlinear_lattice():
    net, ports, x, y = _network(4)
    tunable = tuple(int(k) for k in net.role("tunable"))
    return net, ports, x, y, VoltageDependentEdges(tunable, knee_volts=3.0)


def test_the_linearity_check_trips_on_voltage_dependent_edges_and_passes_on_ohmic_ones():
    net, ports, x, y, edges = _nonlinear_lattice()
    rule = Omega()
    design = design_probes(None, ports, net.resistance, probe_modes(rule))
    for nonlinearity, linear in ((None, True), (edges, False)):
        rig = SimulatedRig(net, DeviceModel(r_min=100.0, r_max=1e5), np.random.default_rng(0),
                           nonlinearity=nonlinearity)
        substrate = RigSubstrate(rig, ports, net.role("tunable"), rule)
        outcome = substrate.run(probe_plan(rule, ports, net.role("tunable"), 5 * x, y, net.resistance, design,
                                           ReadingAccuracy.exact(), np.random.default_rng(0)))
        assert outcome.linear is linear, outcome.summary["checks"]


def test_a_failed_check_programs_nothing_and_fails_the_run_when_asked():
    net, ports, x, y, edges = _nonlinear_lattice()
    rig, substrate = _simulated(net, ports, "probe", Omega(), nonlinearity=edges, on_nonlinear="fail")
    before = rig.resistances()
    with pytest.raises(LinearityError, match="residual .* nothing measured by them is used.*'fail'"):
        substrate.gradient(Omega(), 5 * x, y)
    np.testing.assert_array_equal(rig.resistances(), before)
    assert rig.operations["program"] == 0


def test_a_failed_check_falls_back_to_the_per_sample_plan_for_that_step():
    net, ports, x, y, edges = _nonlinear_lattice()
    rig, substrate = _simulated(net, ports, "probe", Omega(), nonlinearity=edges)
    gradient, _ = substrate.gradient(Omega(), 5 * x, y)
    probes = substrate.engine.counts["measure"]
    per_sample, _ = Omega().rig_gradient(substrate.run, ports, net.role("tunable"), 5 * x, y, rig.resistances())
    np.testing.assert_array_equal(gradient, per_sample)
    assert substrate.step_scalars["probe_fallback"] == 1.0
    assert probes == probe_phases(Omega(), 2, 3) + 2 * x.shape[1]


class _GivesUpOnce:
    """A simulated substrate that gives up one step, as a stop during a linearity pause does."""

    def __init__(self, inner, at: int):
        self.inner, self.at, self.calls = inner, at, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def gradient(self, rule, x, y):
        self.calls += 1
        if self.calls == self.at:
            raise StepDiscarded("given up for the test")
        return self.inner.gradient(rule, x, y)


def test_a_step_given_up_at_an_epochs_start_resumes_to_the_uninterrupted_result():
    """The epoch's order is drawn once: the checkpoint of a step given up after the draw keeps it."""
    config = load_experiment(EXAMPLE.parent / "teacher-omega.toml")
    config["training"].update(batch_size=40, epochs=3)   # 3 steps per epoch; step 4 opens epoch 2

    def fresh():
        exp = build_experiment(config, "exp.toml")
        return exp, simulated_substrate(exp)

    exp, substrate = fresh()
    Trainer(substrate, exp.task, exp.rule, settings_from(config), exp.rngs).run()
    uninterrupted = substrate.resistances()

    exp, substrate = fresh()
    checkpoints = []
    engine = RunEngine(None, subscribers=[lambda doc: checkpoints.append(doc) if isinstance(doc, Checkpoint) else None])
    result = Trainer(_GivesUpOnce(substrate, at=4), exp.task, exp.rule, settings_from(config), exp.rngs,
                     engine=engine).run()
    assert result.status == "stopped" and result.position.step == 3 and result.position.drawn
    exp, substrate = fresh()
    trainer = Trainer(substrate, exp.task, exp.rule, settings_from(config), exp.rngs)
    last = checkpoints[-1]
    trainer.run(resume=trainer.restore(last.arrays, last.state))
    np.testing.assert_array_equal(substrate.resistances(), uninterrupted)


def test_a_probe_the_limits_keep_near_the_voltmeters_resolution_is_warned_once():
    net, ports, x, y = _network(5)
    units = {int(k): UnitLimits(f"smu{k}", 2e-3, 1e-3, 1.0, 1e-3, 1.0) for k in
             np.concatenate((ports.input_index, ports.outputs))}
    limits = ProbeLimits(units)
    rig = SimulatedRig(net, DeviceModel(r_min=100.0, r_max=1e5), np.random.default_rng(0))
    substrate = RigSubstrate(rig, ports, net.role("tunable"), Omega(),
                             probe=ProbeSettings("probe", "test", limits=limits,
                                                 accuracy=ReadingAccuracy.keysight_34970a()))
    events = []
    substrate.engine.subscribe(events.append)
    for _ in range(2):
        substrate.gradient(Omega(), x, y)
    warnings = [e for e in events if getattr(e, "kind", "") == "probe" and e.level == "warning"]
    assert len(warnings) == 1 and "voltmeter's error" in warnings[0].message
    assert warnings[0].data["reading_over_error"] < 100
