"""Device models of the tunable resistors: what a write achieves and what the host believes.

Each model keeps, per tunable edge, the resistance the device really has (``true``, what the
circuit sees) and the one the host knows (``known``, what a rule divides voltages by: the
calibration table of a digital potentiometer, the read-back of a memristor). Measured voltages
get Gaussian read noise of ``read_noise_volts``. The ideal model (continuous, noise-free)
changes nothing but the clip to [r_min, r_max], so rules are reproduced exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DeviceArrays:
    true: np.ndarray
    known: np.ndarray


class DeviceModel:
    """Base: bounds, write noise and read noise. Subclasses override ``_achieve``."""

    name = "ideal"

    def __init__(self, *, r_min: float, r_max: float, write_noise: float = 0.0, read_noise_volts: float = 0.0):
        self.r_min, self.r_max = float(r_min), float(r_max)
        self.write_noise = float(write_noise)
        self.read_noise_volts = float(read_noise_volts)

    # -- what subclasses change
    def _achieve(self, current: DeviceArrays, target: np.ndarray, devices: np.ndarray,
                 rng: np.random.Generator) -> DeviceArrays:
        """The response of ``devices`` (indices into the population) to a write of ``target``
        (already clipped to the bounds)."""
        return DeviceArrays(target.copy(), target.copy())

    def extra_state(self) -> dict[str, np.ndarray]:
        return {}

    def restore_extra(self, state: dict[str, np.ndarray]) -> None:
        pass

    # -- shared behaviour
    def setup(self, count: int, rng: np.random.Generator) -> None:
        """Draw per-device properties (tolerances) for ``count`` devices."""

    def program(self, current: DeviceArrays | None, target: np.ndarray, rng: np.random.Generator,
                devices: np.ndarray | None = None) -> DeviceArrays:
        """Write ``target`` ohms to ``devices`` (indices into the population set up by ``setup``;
        default: all, in order); returns their new true and known resistances."""
        target = np.clip(np.asarray(target, dtype=float), self.r_min, self.r_max)
        devices = np.arange(target.size) if devices is None else np.asarray(devices, dtype=np.int64)
        if current is None:
            current = DeviceArrays(target.copy(), target.copy())
        result = self._achieve(current, target, devices, rng)
        if self.write_noise:
            result.true = np.clip(result.true * (1 + self.write_noise * rng.standard_normal(target.shape)),
                                  self.r_min * 0.5, self.r_max * 2)
        return result

    def read(self, volts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Volts as a voltmeter reports them."""
        if not self.read_noise_volts:
            return volts
        return volts + self.read_noise_volts * rng.standard_normal(np.shape(volts))

    @property
    def is_ideal(self) -> bool:
        return type(self) is DeviceModel and not self.write_noise and not self.read_noise_volts


class DigipotModel(DeviceModel):
    """A digital potentiometer used as a rheostat: R(code) = wiper + R_AB code / levels.

    Datasheet facts this follows (e.g. Analog Devices AD5204: 256 positions, R_WB(D) =
    D/256 R_AB + R_W, R_W about 45-60 ohm, end-to-end tolerance +-20 %... +-30 %). R_AB of each
    device is drawn once; the host's calibration table holds each device's true R(code), so
    ``known`` is exact up to write noise.
    """

    name = "digipot"

    def __init__(self, *, levels: int, end_to_end_ohms: float, wiper_ohms: float, tolerance: float, **kw):
        super().__init__(**kw)
        self.levels = int(levels)
        self.end_to_end_ohms = float(end_to_end_ohms)
        self.wiper_ohms = float(wiper_ohms)
        self.tolerance = float(tolerance)
        self.r_ab = np.zeros(0)

    def setup(self, count: int, rng: np.random.Generator) -> None:
        self.r_ab = self.end_to_end_ohms * (1 + self.tolerance * rng.uniform(-1, 1, count))

    def ohms(self, codes: np.ndarray, devices: np.ndarray | None = None) -> np.ndarray:
        r_ab = self.r_ab if devices is None else self.r_ab[devices]
        return self.wiper_ohms + r_ab * codes / self.levels

    def codes_for(self, target: np.ndarray, devices: np.ndarray | None = None) -> np.ndarray:
        """Nearest code to each target, kept inside the code range and the resistance bounds."""
        r_ab = self.r_ab if devices is None else self.r_ab[devices]
        codes = np.rint((target - self.wiper_ohms) * self.levels / r_ab)
        codes = np.clip(codes, 0, self.levels - 1)
        lo = np.ceil((self.r_min - self.wiper_ohms) * self.levels / r_ab)
        hi = np.floor((self.r_max - self.wiper_ohms) * self.levels / r_ab)
        return np.clip(codes, np.maximum(lo, 0), np.minimum(hi, self.levels - 1)).astype(np.int64)

    def _achieve(self, current, target, devices, rng):
        held = self.ohms(self.codes_for(target, devices), devices)
        return DeviceArrays(held.copy(), held)

    def extra_state(self):
        return {"r_ab": self.r_ab}

    def restore_extra(self, state):
        self.r_ab = np.asarray(state["r_ab"], dtype=float)


class MemristorModel(DeviceModel):
    """A memristive device with state-dependent, asymmetric steps.

    A write asks for a change d = target - r; the device moves by d (1 - x)^nu when increasing
    and d x^nu when decreasing, x = (r - r_min) / (r_max - r_min), with increases scaled by
    ``asymmetry`` (saturating, direction-dependent updates as in common memristor models). The
    host verifies by read-back, so ``known`` equals ``true``.
    """

    name = "memristor"

    def __init__(self, *, nonlinearity: float, asymmetry: float, **kw):
        super().__init__(**kw)
        self.nonlinearity = float(nonlinearity)
        self.asymmetry = float(asymmetry)

    def _achieve(self, current, target, devices, rng):
        r = current.true
        x = np.clip((r - self.r_min) / (self.r_max - self.r_min), 0.0, 1.0)
        step = target - r
        scale = np.where(step > 0, self.asymmetry * (1 - x) ** self.nonlinearity, x ** self.nonlinearity)
        new = np.clip(r + step * scale, self.r_min, self.r_max)
        return DeviceArrays(new, new.copy())


class CalibratedDevices(DeviceModel):
    """Devices holding one calibrated value per code, exactly as a bench's board does: each
    device has a calibration with ``nearest_code(ohms)`` and ``ohms_of(code)`` (the bench file's
    channel calibrations), and a write holds the nearest code within the calibrated span. The
    simulated twin of a bench, so that it takes the very same steps as the bench."""

    name = "calibrated"

    def __init__(self, calibrations, **kw):
        super().__init__(**kw)
        self.calibrations = list(calibrations)

    def _achieve(self, current, target, devices, rng):
        held = np.empty(target.shape)
        for row, (device, ohms) in enumerate(zip(devices.tolist(), target.tolist())):
            cal = self.calibrations[device]
            ohms = min(max(ohms, cal.lowest_ohms), cal.highest_ohms)
            held[row] = cal.ohms_of(cal.nearest_code(ohms))
        return DeviceArrays(held.copy(), held)


def make_device_model(config: dict) -> DeviceModel:
    """A device model from a validated [device] table."""
    common = dict(r_min=config["r_min"], r_max=config["r_max"], write_noise=config["write_noise"],
                  read_noise_volts=config["read_noise_volts"])
    model = config["model"]
    if model == "digipot":
        return DigipotModel(levels=config["levels"], end_to_end_ohms=config["end_to_end_ohms"],
                            wiper_ohms=config["wiper_ohms"], tolerance=config["tolerance"], **common)
    if model == "memristor":
        return MemristorModel(nonlinearity=config["nonlinearity"], asymmetry=config["asymmetry"], **common)
    return DeviceModel(**common)
