"""hwlearn gradcheck: every rule's gradient estimate against the exact gradient."""

from __future__ import annotations

import numpy as np

from hwlearn.cli.output import print_json
from hwlearn.cli.table import format_table, number
from hwlearn.errors import ConfigError
from hwlearn.gradcheck import gradcheck
from hwlearn.network_file import load_network
from hwlearn.ports import Ports


def _names(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").split() if t]


def _floats(text: str, what: str) -> list[float]:
    values = []
    for token in _names(text):
        try:
            value = float(token)
        except ValueError:
            raise ConfigError(f"{what}: '{token}' is not a number") from None
        if not np.isfinite(value):
            raise ConfigError(f"{what}: {token} is not finite")
        values.append(value)
    return values


def add_parser(sub) -> None:
    p = sub.add_parser("gradcheck", help="compare the learning rules' gradients with the exact one",
                       description="For every resistor, the exact gradient of 1/2 |v_out - y|^2 with "
                       "respect to its resistance and each rule's estimate, in the same units. The "
                       "sources are the inputs; output 'R n1 n2' reads V(n1) - V(n2).")
    p.add_argument("network", help="SPICE netlist (R, V, I) or hwlearn network file (.json)")
    p.add_argument("--outputs", required=True, help="output resistor names, comma or space separated")
    p.add_argument("--targets", required=True, help="target voltages, one per output")
    p.add_argument("--inputs", help="sources that drive the check (default: all; others are switched off)")
    p.add_argument("--beta", type=float, default=1e-3, help="two-phase nudge strength (default 1e-3)")
    p.add_argument("--eta", type=float, default=1e-3, help="Coupled Learning clamp fraction (default 1e-3)")
    p.add_argument("--omega-eta", type=float, default=1e-3,
                   help="Omega-learning error-to-current gain in siemens (default 1e-3)")
    p.add_argument("--json", action="store_true", help="print a JSON document (docs/schemas.md)")
    p.add_argument("--backend", default="auto", help="solver backend: auto, dense, cholmod, superlu")
    p.set_defaults(run=run)


def run(args) -> int:
    net = load_network(args.network)
    outputs = _names(args.outputs)
    targets = _floats(args.targets, "--targets")
    if len(targets) != len(outputs):
        raise ConfigError(f"--targets: {len(targets)} value(s) given for {len(outputs)} output(s) "
                          f"({', '.join(outputs)})")
    for flag, value in (("--beta", args.beta), ("--eta", args.eta), ("--omega-eta", args.omega_eta)):
        if not (np.isfinite(value) and value > 0):
            raise ConfigError(f"{flag}: {value} is not allowed; it must be a finite number > 0")
    if args.eta > 1:
        raise ConfigError(f"--eta: {args.eta} is not allowed; the clamp fraction is in (0, 1]")
    ports = Ports.from_sources(net, _names(args.inputs) if args.inputs else None, outputs)
    if ports.n_inputs == 0:
        raise ConfigError(f"{args.network}: the network has no sources to drive it")
    doc = gradcheck(ports, ports.stored_inputs(), targets, beta=args.beta, eta=args.eta,
                    omega_eta=args.omega_eta, backend=args.backend)
    if args.json:
        print_json(doc, f"gradcheck {args.network}")
        return 0
    print(f"{net.title or args.network}: {net.n_nodes} nodes, {net.n_edges} resistors "
          f"(solver backend: {doc['network']['backend']})")
    print(f"loss 1/2|v_out - y|^2 = {doc['loss']:.6g} V^2;  "
          + ", ".join(f"{n} = {o['volts']:.6g} V (target {o['target']:.6g})" for n, o in doc["outputs"].items()))
    print("\ndL/dR per resistor, V^2/ohm:")
    rule_names = list(doc["rules"])
    rows = [[name, number(exact)] + [number(doc["rules"][r]["estimate"][name]) for r in rule_names]
            for name, exact in doc["exact"].items()]
    print(format_table(["resistor", "exact"] + rule_names, rows))
    print()
    print(format_table(["rule", "cosine", "relative error"],
                       [[r, number(doc["rules"][r]["cosine"]), number(doc["rules"][r]["relative_error"], 3)]
                        for r in rule_names]))
    return 0
