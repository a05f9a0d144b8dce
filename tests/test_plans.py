"""Plans on a rig: the same trajectory as the fast path, refusal of impossible rules, engine states."""

import numpy as np
import pytest

from hwlearn.app.launch import simulated_rig, simulated_substrate
from hwlearn.config import resolve
from hwlearn.experiment import build_experiment
from hwlearn.plans import PlanError, check_rule_on_rig, sample_plan
from hwlearn.rig import Capabilities
from hwlearn.rules import CoupledLearning, FiniteDifference, Omega, TwoPhase
from hwlearn.training.rig_substrate import RigSubstrate
from hwlearn.training.session import settings_from
from hwlearn.training.trainer import Trainer

LEARNING_RATES = {"omega": 30.0, "ep": 3e4, "ep_symmetric": 3e4, "coupled": 3e4}


def _rig_setup(doc, seed=2):
    config = resolve(doc, "<test>", seed=seed)
    exp = build_experiment(config)
    rig = simulated_rig(exp)
    return config, exp, rig


@pytest.mark.parametrize("rule", list(LEARNING_RATES))
def test_plan_path_on_the_ideal_simulated_rig_follows_the_fast_path(rule):
    doc = {"rule": {"name": rule}, "training": {"epochs": 2, "learning_rate": LEARNING_RATES[rule]}}
    config, fast_exp, _ = _rig_setup(doc)
    fast = simulated_substrate(fast_exp)
    Trainer(fast, fast_exp.task, fast_exp.rule, settings_from(config), fast_exp.rngs).run()
    config, exp, rig = _rig_setup(doc)
    Trainer(RigSubstrate(rig, exp.ports, exp.learnable, exp.rule), exp.task, exp.rule, settings_from(config),
            exp.rngs).run()
    a, b = fast.circuit.true_resistances(), rig.circuit.true_resistances()
    assert np.max(np.abs(a - b) / a) < 1e-9
    assert not np.allclose(a, exp.initial_ohms)  # it did learn


def test_finite_differences_through_the_rig_match_the_solver_reference():
    config, exp, rig = _rig_setup({"rule": {"name": "finite_difference", "relative_step": 1e-4}})
    sub = RigSubstrate(rig, exp.ports, exp.learnable, exp.rule)
    x, y = exp.task.train.x[:, :4], exp.task.train.y[:, :4]
    via_rig, _ = sub.gradient(exp.rule, x, y)
    reference = FiniteDifference(1e-4).estimate(rig.circuit.solver, exp.ports, rig.circuit.true_resistances(),
                                                x, y, exp.learnable)
    assert np.allclose(via_rig, reference, rtol=1e-6)
    assert np.array_equal(rig.resistances(), rig.circuit.known_resistances())
    assert np.allclose(rig.resistances()[exp.learnable], exp.initial_ohms[exp.learnable])  # restored


def test_omega_sample_plan_is_the_documented_phase_sequence():
    config, exp, rig = _rig_setup({})
    plan = sample_plan(Omega(), exp.ports, exp.learnable[:3], exp.task.train.x[:, 0], exp.task.train.y[:, 0],
                       rig.resistances())
    verbs, result = [], None
    try:
        msg = next(plan)
        while True:
            verbs.append(msg.verb if msg.verb not in ("drive_outputs", "note") else f"{msg.verb}:{msg.args[0]}")
            result = np.zeros(len(msg.args[0])) if msg.verb == "measure" else None
            msg = plan.send(result)
    except StopIteration:
        pass
    assert verbs == ["note:free", "drive_outputs:open", "set_inputs", "measure", "note:adjoint", "set_inputs",
                     "drive_outputs:current", "measure", "drive_outputs:open"]


@pytest.mark.parametrize("rule, modes, message", [
    (CoupledLearning(0.1), {"open", "current"}, "needs voltage clamps across the output edges"),
    (Omega(), {"open", "clamp"}, "needs current sources beside the output edges"),
    (TwoPhase(0.1), {"open"}, "needs current sources"),
])
def test_a_rule_the_rig_cannot_run_is_refused_naming_the_missing_capability(rule, modes, message):
    config, exp, rig = _rig_setup({})
    caps = Capabilities(frozenset(modes), rig.capabilities.readable, rig.capabilities.tunable)
    with pytest.raises(PlanError, match=message):
        check_rule_on_rig(rule, caps, exp.ports, exp.learnable)


def test_updates_on_unreadable_edges_are_refused_naming_them():
    config, exp, rig = _rig_setup({})
    readable = np.setdiff1d(rig.capabilities.readable, exp.learnable[:2])
    caps = Capabilities(rig.capabilities.output_modes, readable, rig.capabilities.tunable)
    names = ", ".join(exp.network.edge_names[k] for k in exp.learnable[:2])
    with pytest.raises(PlanError, match=f"edges {names} are not readable"):
        check_rule_on_rig(Omega(), caps, exp.ports, exp.learnable)
