"""What an experiment trains on: the simulated substrates, built from a resolved experiment.

The core describes experiments and never imports the simulator; the application layer picks the
substrate here (docs/architecture.md).
"""

from __future__ import annotations

from hwlearn.experiment import Experiment
from simulator.devices import make_device_model
from simulator.fast import FastSimulation
from simulator.rig import SimulatedRig


def simulated_substrate(experiment: Experiment, backend: str = "auto") -> FastSimulation:
    """The built-in simulated rig's fast path: whole batches through one factorisation."""
    return FastSimulation(experiment.network, experiment.ports, experiment.learnable,
                          make_device_model(experiment.config["device"]), experiment.initial_ohms,
                          experiment.rngs["device"], backend,
                          plan="probe" if experiment.config.get("plan") == "probe" else "per-sample")


def simulated_rig(experiment: Experiment, backend: str = "auto") -> SimulatedRig:
    """The same simulated network behind the Rig interface, for plans run by the engine."""
    return SimulatedRig(experiment.network, make_device_model(experiment.config["device"]),
                        experiment.rngs["device"], experiment.initial_ohms, backend)
