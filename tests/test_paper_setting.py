"""The paper's setting as configuration: ports placed around and inside a lattice, output edges
that are trained like every other edge, and their initial spread."""

import numpy as np
import pytest

from hwlearn.builders import lattice, lattice_boundary, lattice_ports
from hwlearn.config import resolve
from hwlearn.errors import ConfigError, NetworkError
from hwlearn.experiment import build_experiment

PAPER = {"builder": "lattice", "rows": 8, "cols": 8, "placement": "interior"}
TEACHER = {"name": "teacher", "inputs": 4, "outputs": 2}


def _build(network, task=TEACHER, seed=0):
    return build_experiment(resolve({"network": network, "task": task}, "exp.toml", seed=seed), "exp.toml")


def test_interior_placement_puts_inputs_around_the_boundary_and_outputs_inside():
    inputs, outputs = lattice_ports(8, 8, 9, 3, "interior")
    boundary = lattice_boundary(8, 8)
    assert len(boundary) == 28 and len(set(boundary)) == 28
    assert set(inputs) <= set(boundary) and len(set(inputs)) == 9
    # Spread evenly: consecutive inputs are about 28 / 9 boundary edges apart.
    steps = np.diff(sorted(boundary.index(name) for name in inputs))
    assert steps.min() >= 3 and steps.max() <= 4
    assert outputs == ["Rh2_3", "Rh4_3", "Rh6_3"]  # the middle column, interior rows
    net = lattice(8, 8, inputs=9, outputs=3, placement="interior")
    assert {net.edge_names[k] for k in net.outputs} == set(outputs)


def test_sides_placement_is_the_default_and_unchanged():
    net = lattice(5, 5, inputs=2, outputs=3)
    assert [net.edge_names[k] for k in net.inputs] == ["Rv0_0", "Rv1_0"]
    assert [net.edge_names[k] for k in net.outputs] == ["Rv0_4", "Rv1_4", "Rv2_4"]


@pytest.mark.parametrize("args, message", [
    ((3, 3, 2, 2, "interior"), "2 interior outputs requested, a 3 x 3 lattice's middle column has 1"),
    ((3, 3, 9, 1, "interior"), "9 inputs requested, a 3 x 3 lattice has 8 boundary edges"),
    ((4, 4, 1, 1, "corner"), "placement 'corner' is unknown; allowed: sides, interior"),
])
def test_impossible_placements_are_refused_with_the_counts(args, message):
    with pytest.raises(NetworkError, match=message):
        lattice_ports(*args)


def test_trained_outputs_are_learnable_and_fixed_ones_are_not():
    trained = _build({**PAPER, "tunable_ports": "outputs"})
    fixed = _build(PAPER)
    outputs = trained.ports.outputs
    assert set(outputs) <= set(trained.learnable)
    assert not set(outputs) & set(fixed.learnable)
    assert trained.network.roles["tunable"][outputs].all()
    assert not set(trained.ports.input_index) & set(trained.learnable)
    every = _build({**PAPER, "tunable_ports": "all"})
    assert set(every.ports.input_index) <= set(every.learnable)


def test_trained_outputs_start_spread_like_every_edge_unless_output_spread_says_otherwise():
    spread = _build({**PAPER, "tunable_ports": "outputs"})
    outputs = spread.ports.outputs
    assert np.ptp(np.log(spread.initial_ohms[outputs])) > 0.01
    equal = _build({**PAPER, "tunable_ports": "outputs", "output_spread": 0.0})
    assert np.all(equal.initial_ohms[outputs] == 10_000.0)
    # Every other initial value is the same draw: the key only adds one.
    others = np.setdiff1d(np.arange(spread.network.n_edges), outputs)
    assert np.array_equal(equal.initial_ohms[others], spread.initial_ohms[others])


def test_fixed_outputs_can_be_unequal_and_the_teacher_shares_them():
    built = _build({**PAPER, "output_spread": 1.0})
    outputs = built.ports.outputs
    ohms = built.initial_ohms[outputs]
    assert np.ptp(np.log(ohms)) > 0.1
    assert np.array_equal(built.task.teacher_ohms[outputs], ohms)  # not learnable: zero loss stays reachable
    default = _build(PAPER)
    assert np.all(default.initial_ohms[outputs] == 10_000.0)


@pytest.mark.parametrize("network, message", [
    ({**PAPER, "tunable": ["Rh2_3"]}, "network.tunable names Rh2_3, an input or output edge; "
                                      "network.tunable_ports = 'none' keeps it fixed"),
    ({**PAPER, "tunable_ports": "some"}, "network.tunable_ports = 'some'"),
    ({**PAPER, "output_spread": -1.0}, "network.output_spread = -1.0: must be >= 0"),
])
def test_port_keys_refuse_what_they_cannot_do(network, message):
    with pytest.raises(ConfigError, match=message):
        _build(network)


def test_placement_is_refused_for_builders_that_place_their_own_ports():
    with pytest.raises(ConfigError, match="network.placement = 'interior': places a lattice's ports; the crossbar"):
        resolve({"network": {"builder": "crossbar", "placement": "interior"}}, "exp.toml")


def test_a_named_output_may_be_trained_when_tunable_ports_allows_it():
    built = _build({**PAPER, "tunable_ports": "outputs", "tunable": ["Rh2_3", "Rh0_0"]})
    assert set(built.learnable) == set(built.network.edge_indices(["Rh2_3", "Rh0_0"]))
