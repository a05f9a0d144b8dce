"""hwlearn solve NETLIST [--json]: DC operating point of a netlist or network file."""

from __future__ import annotations

import numpy as np

from hwlearn.cli.output import print_json
from hwlearn.cli.table import format_table, number
from hwlearn.network_file import load_network
from hwlearn.solver import Excitation, KirchhoffSolver

SCHEMA = "hwlearn.solve/1"


def add_parser(sub) -> None:
    p = sub.add_parser("solve", help="node voltages and element currents of a netlist",
                       description="Solve the DC operating point. Currents follow SPICE: through a "
                       "resistor from its first node to its second, into a voltage source's "
                       "positive terminal, through a current source from its first node to its second.")
    p.add_argument("netlist", help="SPICE netlist (R, V, I) or hwlearn network file (.json)")
    p.add_argument("--json", action="store_true", help="print a JSON document (docs/schemas.md)")
    p.add_argument("--backend", default="auto", help="solver backend: auto, dense, cholmod, superlu")
    p.set_defaults(run=run)


def solve_document(path: str, backend: str = "auto") -> dict:
    net = load_network(path)
    solver = KirchhoffSolver(net, backend=backend)
    state = solver.factorize().solve(Excitation.of_network(net))
    volts = state.node_voltages()[:, 0]
    currents = dict(zip(net.edge_names, map(float, state.edge_currents()[:, 0])))
    currents.update(zip(net.vsources.names, map(float, state.vsource_currents()[:, 0])))
    currents.update(zip(net.isources.names, map(float, net.isources.values)))
    return {
        "schema": SCHEMA,
        "title": net.title,
        "backend": solver.backend,
        "ground": net.node_names[net.ground],
        "node_voltages": dict(zip(net.node_names, map(float, volts))),
        "currents": currents,
    }


def run(args) -> int:
    doc = solve_document(args.netlist, args.backend)
    if args.json:
        print_json(doc, f"solve {args.netlist}")
        return 0
    print(f"{doc['title'] or args.netlist}  (solver backend: {doc['backend']})\n")
    print(format_table(["node", "volts"], [[n, number(v, 9)] for n, v in doc["node_voltages"].items()]))
    print()
    print(format_table(["element", "amps"], [[n, number(v, 9)] for n, v in doc["currents"].items()]))
    return 0 if np.all(np.isfinite(list(doc["node_voltages"].values()))) else 1
