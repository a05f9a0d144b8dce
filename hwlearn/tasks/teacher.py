"""Teacher task: targets made by a hidden network of the same topology, so zero loss is
reachable by the student (given its resistance bounds)."""

from __future__ import annotations

import numpy as np

from hwlearn.ports import Ports
from hwlearn.solver import KirchhoffSolver
from hwlearn.tasks.base import Dataset, Task


class TeacherTask(Task):
    name = "teacher"

    def __init__(self, ports: Ports, teacher_ohms: np.ndarray, *, train_samples: int, test_samples: int,
                 noise_sigma: float = 0.0, seed: int = 0):
        rng = np.random.default_rng(seed)
        fz = KirchhoffSolver(ports.network).factorize(teacher_ohms)
        sets = []
        for count in (train_samples, test_samples):
            x = rng.standard_normal((ports.n_inputs, count))
            y = fz.solve(ports.excitation(x)).edge_voltages(ports.outputs)
            sets.append(Dataset(x, y))
        self.train, self.test = sets
        self.teacher_ohms = np.asarray(teacher_ohms, dtype=float)
        self.input_names = tuple(f"x{k}" for k in range(ports.n_inputs))
        self.output_names = ports.output_names
        self.noise_sigma = float(noise_sigma)
