"""Networks: roles, builders and the network file."""

import json

import numpy as np
import pytest

from hwlearn.builders import crossbar, lattice, lattice_edge_names, random_graph
from hwlearn.errors import NetworkError
from hwlearn.network import Network
from hwlearn.network_file import (
    load_network,
    network_from_dict,
    network_to_dict,
    save_network,
)
from hwlearn.solver import KirchhoffSolver


def test_lattice_has_the_expected_edges_names_and_boundary_roles():
    net = lattice(3, 4, inputs=2, outputs=1)
    assert net.n_nodes == 12 and net.n_edges == 2 * 12 - 3 - 4
    assert list(net.edge_names) == lattice_edge_names(3, 4)
    assert [net.edge_names[k] for k in net.inputs] == ["Rv0_0", "Rv1_0"]
    assert [net.edge_names[k] for k in net.outputs] == ["Rv0_3"]
    tunable = net.roles["tunable"]
    assert tunable.sum() == net.n_edges - 3 and not tunable[net.inputs].any()
    assert np.array_equal(net.roles["readable"], tunable)


def test_crossbar_layers_connect_every_line_of_one_layer_to_every_line_of_the_next():
    net = crossbar(4, 3, hidden=[5])
    assert net.n_edges == 4 + 4 * 5 + 5 * 3 + 3
    assert net.n_nodes == 1 + 4 + 5 + 3
    assert [net.edge_names[k] for k in net.outputs] == ["Rout0", "Rout1", "Rout2"]
    assert net.roles["tunable"].sum() == 4 * 5 + 5 * 3
    KirchhoffSolver(net)  # connected to ground through the input and load resistors


def test_random_graph_is_connected_and_reproducible_from_its_seed():
    a = random_graph(40, 90, seed=7, inputs=3, outputs=2)
    b = random_graph(40, 90, seed=7, inputs=3, outputs=2)
    c = random_graph(40, 90, seed=8, inputs=3, outputs=2)
    assert np.array_equal(a.edge_a, b.edge_a) and np.array_equal(a.resistance, b.resistance)
    assert not np.array_equal(a.resistance, c.resistance)
    pairs = {tuple(sorted(p)) for p in zip(a.edge_a.tolist(), a.edge_b.tolist())}
    assert len(pairs) == 90
    KirchhoffSolver(a)  # raises if any node floats


@pytest.mark.parametrize("call, message", [
    (lambda: random_graph(5, 3, seed=0), "a connected simple graph on 5 nodes has 4 to 10"),
    (lambda: random_graph(5, 11, seed=0), "has 4 to 10"),
    (lambda: lattice(1, 1), "at least 2 nodes"),
    (lambda: lattice(3, 3, inputs=5), "5 boundary edges requested, a column has 2"),
    (lambda: lattice(3, 3, ground=(3, 0)), "ground node \\(3, 0\\) is outside"),
    (lambda: crossbar(0, 2), "every layer needs at least one line"),
    (lambda: lattice(3, 3, inputs=["Rv0_0"], outputs=["Rv0_0"]), "both input and output: Rv0_0"),
    (lambda: lattice(3, 3, inputs=["nope"]), "inputs: no edge named nope"),
])
def test_builders_refuse_impossible_requests(call, message):
    with pytest.raises(NetworkError, match=message):
        call()


@pytest.mark.parametrize("kwargs, message", [
    (dict(roles={"inputs": [0]}), "unknown edge role\\(s\\) \\['inputs'\\]"),
    (dict(edge_names=["R1", "r1"]), "element names must be unique; repeated: r1"),
    (dict(ground=5), "ground index 5 is outside"),
])
def test_network_constructor_errors_name_the_problem(kwargs, message):
    with pytest.raises(NetworkError, match=message):
        Network(["0", "1", "2"], [1, 2], [0, 1], [1.0, 2.0], **kwargs)


def test_node_zero_is_reserved_for_ground():
    with pytest.raises(NetworkError, match="node '0' is reserved for ground"):
        Network(["a", "0"], [1], [0], [1.0], ground=0)


def test_network_file_round_trip_keeps_topology_values_and_roles(tmp_path):
    net = lattice(3, 3, inputs=1, outputs=1).with_series_volts(np.r_[0.5, np.zeros(11)])
    path = tmp_path / "net.json"
    save_network(net, path)
    again = load_network(path)
    assert again.node_names == net.node_names and again.edge_names == net.edge_names
    assert np.array_equal(again.resistance, net.resistance)
    assert np.array_equal(again.series_volts, net.series_volts)
    for role in net.roles:
        assert np.array_equal(again.roles[role], net.roles[role])
    assert json.loads(path.read_text())["format"] == "hwlearn-network"


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["edges"][2].update(ohms=-3), "edges\\[2\\].ohms: expected a number > 0, got -3"),
    (lambda d: d["edges"][0].update(a="nowhere"), "edges\\[0\\].a: expected a node listed in 'nodes'"),
    (lambda d: d["edges"][1].update(roles=["input", "bogus"]), "edges\\[1\\].roles: expected a list drawn from"),
    (lambda d: d["edges"][1].update(color="red"), "edges\\[1\\].color: expected one of the keys"),
    (lambda d: d.update(version=2), "version: expected 1, got 2"),
    (lambda d: d.update(ground="x"), "ground: expected one of the listed nodes"),
    (lambda d: d["edges"][0].pop("ohms"), "edges\\[0\\].ohms is missing"),
    (lambda d: d["edges"][0].update(ohms=float("nan")), "edges\\[0\\].ohms: expected a finite number"),
])
def test_network_file_errors_name_the_key_and_value(mutate, message):
    doc = network_to_dict(lattice(3, 3, inputs=1, outputs=1))
    mutate(doc)
    with pytest.raises(NetworkError, match=message):
        network_from_dict(doc, "net.json")


def test_load_network_reports_bad_json_with_its_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n "format": "hwlearn-network",\n "nodes": [1,,]\n}')
    with pytest.raises(NetworkError, match="bad.json:3: not valid JSON"):
        load_network(path)
