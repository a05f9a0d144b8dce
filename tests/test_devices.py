"""Device models: what a write achieves, what the host knows, and read noise."""

import numpy as np
import pytest

from simulator.devices import DeviceModel, DigipotModel, MemristorModel


def test_ideal_devices_hold_exactly_the_clipped_target():
    dev = DeviceModel(r_min=100.0, r_max=1e4)
    target = np.array([50.0, 100.0, 1234.5678, 9999.999, 2e4])
    arrays = dev.program(None, target, np.random.default_rng(0))
    assert np.array_equal(arrays.true, np.clip(target, 100.0, 1e4))
    assert np.array_equal(arrays.known, arrays.true)
    assert dev.read(np.array([0.1, -0.2]), np.random.default_rng(0)).tolist() == [0.1, -0.2]


def test_digipot_holds_calibrated_code_values_within_tolerance():
    dev = DigipotModel(levels=256, end_to_end_ohms=1e5, wiper_ohms=60.0, tolerance=0.2, r_min=500.0, r_max=1e5)
    rng = np.random.default_rng(1)
    dev.setup(200, rng)
    assert np.all(np.abs(dev.r_ab / 1e5 - 1) <= 0.2) and dev.r_ab.std() > 0
    target = np.full(200, 25_000.0)
    arrays = dev.program(None, target, rng)
    codes = dev.codes_for(np.clip(target, 500, 1e5))
    assert np.array_equal(arrays.known, 60.0 + dev.r_ab * codes / 256)
    assert np.all(np.abs(arrays.known - target) <= dev.r_ab / 256 / 2 + 1e-9)  # nearest code
    assert np.all((arrays.known >= 500.0) & (arrays.known <= 1e5))


def test_memristor_steps_shrink_near_the_bounds_and_are_asymmetric():
    dev = MemristorModel(nonlinearity=1.0, asymmetry=2.0, r_min=1e3, r_max=1e5)
    rng = np.random.default_rng(0)
    start = dev.program(None, np.array([2e3, 5e4, 9e4]), rng)
    up = dev.program(start, start.true + 1000.0, rng)
    down = dev.program(start, start.true - 1000.0, rng)
    x = (start.true - 1e3) / (1e5 - 1e3)
    assert up.true - start.true == pytest.approx(2.0 * (1 - x) * 1000.0)
    assert start.true - down.true == pytest.approx(x * 1000.0)
    assert np.array_equal(up.known, up.true)


def test_write_noise_and_read_noise_have_the_configured_size():
    dev = DeviceModel(r_min=1.0, r_max=1e9, write_noise=0.01, read_noise_volts=1e-3)
    rng = np.random.default_rng(0)
    arrays = dev.program(None, np.full(20_000, 1e4), rng)
    assert np.array_equal(arrays.known, np.full(20_000, 1e4))
    assert np.std(arrays.true / 1e4 - 1) == pytest.approx(0.01, rel=0.05)
    reads = dev.read(np.zeros(20_000), rng)
    assert np.std(reads) == pytest.approx(1e-3, rel=0.05)
