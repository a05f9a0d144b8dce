"""The GUI's parts that need no window: layouts, quantities, the bridge, the display check,
and `hwlearn gui` refusing what it cannot do."""

import os
import sys
import threading

import numpy as np
import pytest

from gui.app import check_display
from gui.bridge import Bridge
from gui.geometry import LARGE_LATTICE, LAYOUT_CACHE, geometry_for, run_network
from gui.quantities import available, default_levels, si
from gui.widgets.edgemap import log_ticks
from hwlearn import builders
from hwlearn.config import load_experiment, resolve
from hwlearn.config.bench import load_bench_file
from hwlearn.documents import StepRecord
from hwlearn.errors import HwlearnError
from hwlearn.network_file import network_to_dict
from tests.bench_helpers import EXAMPLE
from tests.cli_helpers import ROOT, hwlearn


def test_a_lattice_is_drawn_on_its_grid_row_0_at_the_top():
    net = builders.lattice(3, 4, inputs=1, outputs=1)
    g = geometry_for(net, np.arange(net.n_edges), None)
    k = net.edge_names.index("Rh1_2")  # n1_2 -> n1_3
    assert g.kind == "segments" and (g.x0[k], g.y0[k], g.x1[k], g.y1[k]) == (2, -1, 3, -1)
    assert g.edge_at(2.5, -1.1, reach=0.45) == k and g.edge_at(2.5, -1.5, reach=0.45) is None


def test_a_large_lattice_is_an_image_whose_pixels_between_nodes_are_its_edges():
    net = builders.lattice(40, 40, inputs=2, outputs=2)
    assert net.n_edges >= LARGE_LATTICE
    g = geometry_for(net, np.arange(net.n_edges), None)
    assert g.kind == "cells" and g.shape == (79, 79)
    cell = {name: (int(r), int(c)) for name, r, c in zip(g.names, g.row, g.col)}
    assert cell["Rh3_7"] == (6, 15) and cell["Rv3_7"] == (7, 14)
    assert len(set(cell.values())) == net.n_edges  # one pixel per edge
    assert g.edge_at(15.5, 6.5, reach=0) == net.edge_names.index("Rh3_7")


def test_a_crossbar_is_a_heat_map_with_its_input_and_output_strips():
    net = builders.crossbar(3, 2, hidden=[4])
    g = geometry_for(net, np.flatnonzero(net.roles["tunable"]), None)
    assert g.kind == "cells"
    cell = {name: (int(r), int(c)) for name, r, c in zip(g.names, g.row, g.col)}
    assert cell["Rx0_2_3"] == (2, 2 + 3)            # block 0 starts at column 2
    assert cell["Rx1_3_1"] == (3, 2 + 4 + 1 + 1)    # block 1 after block 0 and a gap
    assert cell["Rin1"] == (1, 0) and cell["Rout1"] == (4 + 1, 2 + 4 + 1 + 1)
    assert g.edge_at(5.5, 2.5, reach=0) == net.edge_names.index("Rx0_2_3")
    assert g.classes["input"].sum() == 3 and g.classes["output"].sum() == 2


def test_another_graph_gets_a_layout_computed_once_and_cached_in_the_run_folder(tmp_path):
    net = builders.random_graph(40, 80, seed=3, inputs=2, outputs=2)
    first = geometry_for(net, np.arange(net.n_edges), tmp_path)
    assert (tmp_path / LAYOUT_CACHE).is_file()
    lengths = np.hypot(first.x1 - first.x0, first.y1 - first.y0)
    assert np.all(np.isfinite(lengths)) and lengths.mean() == pytest.approx(1.0)
    cached = np.load(tmp_path / LAYOUT_CACHE)["positions"] * 0 + 7.0  # a cache is read, not recomputed
    with open(tmp_path / LAYOUT_CACHE, "rb") as f:
        key = np.load(f)["fingerprint"]
    np.savez(tmp_path / LAYOUT_CACHE, fingerprint=key, positions=cached)
    again = geometry_for(net, np.arange(net.n_edges), tmp_path)
    assert np.all(again.x0 == 7.0)
    other = builders.random_graph(40, 80, seed=4)  # another network does not take this cache
    assert not np.all(geometry_for(other, np.arange(other.n_edges), tmp_path).x0 == 7.0)


def test_a_bench_runs_network_comes_from_its_start_document_and_marks_fixed_and_frozen_edges():
    config = load_experiment(ROOT / "examples/bench-teacher-omega.toml")
    config["mask"] = {"kind": "list", "edges": ["Rh0_0", "Rh0_1"]}
    bench = load_bench_file(EXAMPLE)
    network, learnable = run_network(resolve(config, "<test>"), {"network": network_to_dict(bench.network)})
    g = geometry_for(network, learnable, None)
    names = np.array(g.names)
    assert set(names[g.classes["fixed"]]) == {"Rh3_0", "Rh3_1", "Rh3_2"}
    assert set(names[g.classes["learnable"]]) == {"Rh0_0", "Rh0_1"}
    assert g.classes["frozen"].sum() == 16 - 2
    assert set(names[g.classes["unread"]]) == {"Rh3_0", "Rh3_1", "Rh3_2"}


def test_quantities_map_learnable_arrays_onto_every_edge_and_fix_symmetric_levels():
    arrays = {"resistances": np.array([100.0, 1000.0, 10000.0]), "update": np.array([-2.0, 1.0]),
              "v_free": np.zeros(3), "v_adjoint": np.zeros(3), "gradient": np.array([0.5, 0.1])}
    quantities = {q.key: q for q in available(arrays)}
    assert list(quantities) == ["resistance", "conductance", "v_free", "v_adjoint", "update", "gradient"]
    learnable = np.array([0, 2])
    np.testing.assert_array_equal(quantities["update"].values(arrays, learnable, 3), [-2.0, np.nan, 1.0])
    np.testing.assert_allclose(quantities["conductance"].values(arrays, learnable, 3), [1e-2, 1e-3, 1e-4])
    resistance = quantities["resistance"]
    assert default_levels(resistance, resistance.colour_values(arrays["resistances"])) == (2.0, 4.0)
    assert default_levels(quantities["update"], np.array([-2.0, np.nan, 1.0])) == (-2.0, 2.0)
    assert si(12345.0, "Ω") == "12.3 kΩ" and si(-4.5e-4, "V") == "-450 µV" and si(float("nan"), "V") == "no value"
    assert [label for _, label in log_ticks(2.0, 4.0, "Ω")] == ["100 Ω", "1 kΩ", "10 kΩ"]


def test_the_bridge_hands_over_copies_and_takes_everything_at_once():
    bridge = Bridge()
    view = bridge.view(bridge.new_source())
    resistances = np.ones(3)
    scalars = {"batch_loss": 1.0}
    threads = [threading.Thread(target=view, args=(StepRecord(i, 1, scalars, {"resistances": resistances}),))
               for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    resistances[:] = 7.0
    scalars["batch_loss"] = 9.0
    taken = bridge.take()
    assert len(taken) == 50 and bridge.take() == []
    assert all(p.item.arrays["resistances"][0] == 1.0 and p.item.scalars["batch_loss"] == 1.0 for p in taken)


@pytest.mark.parametrize("env, fails", [
    ({}, "neither DISPLAY nor WAYLAND_DISPLAY"),
    ({"DISPLAY": ":97"}, "no X server listens on it"),
    ({"QT_QPA_PLATFORM": "offscreen"}, None),
    ({"WAYLAND_DISPLAY": "wayland-0"}, None),
])
def test_the_display_check_names_the_offscreen_platform(env, fails):
    if fails is None:
        check_display(env, platform="linux")
        return
    with pytest.raises(HwlearnError, match=fails) as caught:
        check_display(env, platform="linux")
    assert "QT_QPA_PLATFORM=offscreen" in str(caught.value)


@pytest.mark.skipif(sys.platform != "linux", reason="the display check is for X11/Wayland hosts")
def test_hwlearn_gui_without_a_display_is_a_clear_error_not_a_qt_abort():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "hwlearn", "gui"], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "hwlearn gui: error: no display" in proc.stderr and "QT_QPA_PLATFORM=offscreen" in proc.stderr


def test_hwlearn_gui_refuses_a_bench_without_an_experiment_and_a_path_that_does_not_exist(tmp_path):
    proc = hwlearn("gui", "--bench", "examples/virtual-bench.toml", check=False)
    assert proc.returncode == 2 and "give the experiment file" in proc.stderr
    proc = hwlearn("gui", tmp_path / "nowhere", check=False)
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr
