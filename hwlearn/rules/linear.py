"""Whole-batch path: every phase current is linear in z = [x; y], so a batch costs d_in + d_out
solves, whatever its size.

With unit responses Vx (edge voltages per unit input), H (outputs per unit input), Vj (edge
voltages per unit output current) and R (outputs per unit output current), each phase's branch
currents are i = A z for a (k, d_in + d_out) matrix A, and a term's batch mean is
mean_s (A_p z_s)(A_q z_s) = rowsum((A_p M) * A_q) with the moment matrix M = mean_s z_s z_s^T.
Each A is kept as U R (edge responses times drives), so the cost is k r_p r_q, not k D^2.
"""

from __future__ import annotations

import numpy as np

from hwlearn.loss import mse_loss
from hwlearn.ports import Ports
from hwlearn.rules.phases import FREE, Phase, Term, as_columns, output_rows
from hwlearn.solver import Factorization

# The adjoint phase with unit gain: its term -i_F i_A is the exact gradient (docs/theory.md).
_ADJOINT = Phase("adjoint", inputs_on=False, mode="current", a=1.0, b=-1.0)
_EXACT_TERMS = (Term(-1.0, FREE, "adjoint"),)


class LinearResponse:
    """Unit responses of one factorisation, restricted to the edges of interest."""

    def __init__(self, fz: Factorization, ports: Ports, edges, known_ohms: np.ndarray | None = None):
        """known_ohms: (m,) resistances the host believes (default: the true ones); voltages
        are turned into currents and Norton drives computed with them, as on a bench."""
        known = fz.resistance if known_ohms is None else np.asarray(known_ohms, dtype=float)
        edges = np.asarray(edges, dtype=np.int64)
        d_in, d_out = ports.n_inputs, ports.n_outputs
        # One solve with d_in + d_out right-hand sides: unit inputs, then unit output currents.
        eye = np.eye(d_in + d_out)
        units = fz.solve(ports.excitation(eye[:d_in], drive=("current", eye[d_in:])))
        edge_volts = units.edge_voltages(edges)
        out_volts = units.edge_voltages(ports.outputs)
        self._setup(ports, edges, known, edge_volts[:, :d_in], out_volts[:, :d_in],
                    edge_volts[:, d_in:], out_volts[:, d_in:], None)

    @classmethod
    def from_responses(cls, ports: Ports, edges, known_ohms: np.ndarray, *, Vx: np.ndarray, H: np.ndarray,
                       Vj: np.ndarray | None = None, R: np.ndarray | None = None,
                       Vc: np.ndarray | None = None) -> LinearResponse:
        """Unit responses measured rather than solved (hwlearn.rules.probe): Vx (k, d_in) and
        H (d_out, d_in) per unit input x, Vj (k, d_out) and R (d_out, d_out) per amp of output
        current, Vc (k, d_out) per volt of output clamp with the other outputs clamped at 0 V
        and the inputs at 0 V. A phase mode whose responses are missing is refused when used.

        With Vc, a clamped phase needs no R: clamping the outputs to c with the inputs on at x
        gives, by superposition over the (ideal, linear) sources, v = (Vx - Vc H) x + Vc c (the
        free state is the clamped one with c = H x, whose clamp currents are zero); it equals
        the current-drive form Vx x + Vj R^-1 (c - H x), since Vc = Vj R^-1 (docs/theory.md)."""
        response = cls.__new__(cls)
        response._setup(ports, np.asarray(edges, dtype=np.int64), np.asarray(known_ohms, dtype=float),
                        np.asarray(Vx, dtype=float), np.asarray(H, dtype=float),
                        None if Vj is None else np.asarray(Vj, dtype=float),
                        None if R is None else np.asarray(R, dtype=float),
                        None if Vc is None else np.asarray(Vc, dtype=float))
        return response

    def _setup(self, ports, edges, known, Vx, H, Vj, R, Vc) -> None:
        d_in, d_out = ports.n_inputs, ports.n_outputs
        self.ports = ports
        self.edges = edges
        self.Vx, self.H, self.Vj, self.R, self.Vc = Vx, H, Vj, R, Vc
        self.g = 1.0 / known[self.edges]
        self.output_ohms = known[ports.outputs]
        self._rows = output_rows(ports, self.edges)
        self._EH = np.hstack([self.H, np.zeros((d_out, d_out))])
        self._EY = np.hstack([np.zeros((d_out, d_in)), np.eye(d_out)])

    def outputs(self, x) -> np.ndarray:
        """(d_out, B) free-phase outputs."""
        return self.H @ as_columns(x, self.ports.n_inputs, "inputs")

    def loss(self, x, y) -> float:
        """The loss (hwlearn.loss) of the free outputs against targets y (d_out, B)."""
        return mse_loss(self.outputs(x), as_columns(y, self.ports.n_outputs, "targets"))

    def factored_map(self, phase: Phase | None) -> tuple[np.ndarray, np.ndarray]:
        """(U, R) with U @ R the branch currents of the measured edges per unit z in this phase:
        U (k, r) edge responses, R (r, d_in + d_out) what drives them, r <= d_in + d_out. Kept
        factored, a term costs k r_l r_r instead of k (d_in + d_out)^2 (networks with many ports)."""
        d_in = self.ports.n_inputs
        inputs = (self.g[:, None] * self.Vx, np.eye(d_in, d_in + self.ports.n_outputs))
        if phase is None:
            return inputs
        drive = phase.a * self._EH + phase.b * self._EY
        if phase.mode in ("current", "series") and self.Vj is None:
            raise ValueError(f"phase '{phase.name}' drives output currents; no current responses were measured")
        if phase.mode == "current":
            U, R = self.g[:, None] * self.Vj, drive
        elif phase.mode == "series":
            # Norton currents -s/r_out beside the outputs; on measured output edges the series
            # source itself is subtracted again to give the branch current g (v - s).
            series_rows = np.zeros((len(self.edges), self.ports.n_outputs))
            hit = self._rows >= 0
            series_rows[self._rows[hit], np.flatnonzero(hit)] = 1.0
            U, R = self.g[:, None] * (-self.Vj / self.output_ohms[None, :] - series_rows), drive
        else:  # clamp: currents beside the outputs that bring them to the drive values
            offset = self._EH if phase.inputs_on else 0.0
            if self.Vc is not None:  # clamp responses: the currents are implied (from_responses)
                U, R = self.g[:, None] * self.Vc, drive - offset
            elif self.Vj is not None and self.R is not None:
                U, R = self.g[:, None] * self.Vj, np.linalg.solve(self.R, drive - offset)
            else:
                raise ValueError(f"phase '{phase.name}' clamps the outputs; neither clamp responses nor "
                                 "current responses with the output response matrix were measured")
        if not phase.inputs_on:
            return U, R
        return np.hstack([inputs[0], U]), np.vstack([inputs[1], R])

    def current_map(self, phase: Phase | None) -> np.ndarray:
        """(k, d_in + d_out): branch currents of the measured edges per unit z in this phase."""
        U, R = self.factored_map(phase)
        return U @ R

    def gradient(self, rule, x, y) -> np.ndarray:
        """(k,) batch-mean estimate of a phase-based ``rule`` (its ``phases`` and ``terms``)."""
        return self._terms(rule.phases, rule.terms, x, y)

    def exact_gradient(self, x, y) -> np.ndarray:
        """(k,) grad_r of the batch-mean loss, by the adjoint formula (what Omega-learning
        measures, for any eta)."""
        return self._terms((_ADJOINT,), _EXACT_TERMS, x, y)

    def _terms(self, phases, terms, x, y) -> np.ndarray:
        z = np.vstack([as_columns(x, self.ports.n_inputs, "inputs"),
                       as_columns(y, self.ports.n_outputs, "targets")])
        moments = (z @ z.T) / z.shape[1]
        maps = {FREE: self.factored_map(None)}
        maps.update({p.name: self.factored_map(p) for p in phases})
        total = np.zeros(len(self.edges))
        for term in terms:
            (U_l, R_l), (U_r, R_r) = maps[term.left], maps[term.right]
            total += term.coef * np.einsum("ki,ki->k", U_l @ (R_l @ moments @ R_r.T), U_r)
        return total
