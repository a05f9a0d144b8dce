"""What the probe plan needs from a bench file: each source unit's limits and the voltmeter's
accuracy (hwlearn.rules.probe_design)."""

from __future__ import annotations

from hwlearn.config.bench import BenchConfig
from hwlearn.rules.probe_design import ProbeLimits, ReadingAccuracy, UnitLimits

# The 34970A reads at most 300 V on autorange.
AUTORANGE_VOLTS = 300.0


def probe_limits(config: BenchConfig) -> ProbeLimits:
    """The limits of the unit on every input and output edge, the bench's total power and
    compliance margin, and the voltmeter's largest reading (its fixed range, or 300 V)."""
    units = {}
    for wire in config.inputs + config.outputs:
        inst = config.instruments[wire.smu]
        units[wire.edge] = UnitLimits(inst.name, inst["max_volts"], inst["max_amps"], inst["max_watts"],
                                      inst["compliance_amps"], inst["compliance_volts"])
    dmm = config.dmm
    read = AUTORANGE_VOLTS if dmm is None or dmm["volt_range"] == "AUTO" else float(dmm["volt_range"])
    return ProbeLimits(units, config.max_total_watts, config.compliance_margin, read)


def reading_accuracy(config: BenchConfig) -> ReadingAccuracy:
    """The bench file's linearity tolerance if it states one, else the 34970A's DC-volts accuracy
    at the voltmeter's range."""
    dmm = config.dmm
    volt_range = "AUTO" if dmm is None else dmm["volt_range"]
    return ReadingAccuracy.keysight_34970a(volt_range, residual_volts=config.linearity_tolerance_volts)
