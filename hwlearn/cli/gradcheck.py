"""hwlearn gradcheck: every rule's gradient estimate against the exact gradient."""

from __future__ import annotations

import numpy as np

from hwlearn.cli.output import print_json
from hwlearn.cli.table import format_table, number
from hwlearn.errors import ConfigError
from hwlearn.gradcheck import check_rules, gradcheck
from hwlearn.network_file import load_network
from hwlearn.ports import Ports
from hwlearn.rules import RULES, parameters


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


def _flag(*words: str) -> str:
    return "--" + "-".join(w.replace("_", "-") for w in words)


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"


PARSERS = {"float": float, "int": int, "bool": _boolean}


def _rule_flags() -> list[tuple[str, str, str | None]]:
    """(flag, parameter, rule or None) for every parameter of every registered rule: --RULE-PARAM
    for one rule, and --PARAM for every rule that has a parameter of that name."""
    flags, shared = [], {}
    for name, cls in RULES.items():
        for key in parameters(cls):
            flags.append((_flag(name, key), key, name))
            shared.setdefault(key, []).append(name)
    return [(_flag(key), key, None) for key in shared] + flags


def add_parser(sub) -> None:
    p = sub.add_parser("gradcheck", help="compare the learning rules' gradients with the exact one",
                       description="For every resistor, the exact gradient of 1/2 |v_out - y|^2 with "
                       "respect to its resistance (W = V^2/ohm) and every registered rule's estimate, "
                       "its units named (A^2: the gradient of an output-current proxy, docs/theory.md). "
                       "The sources are the inputs; output 'R n1 n2' reads V(n1) - V(n2). Rule "
                       "parameters default to values suited to the comparison (small nudges).")
    p.add_argument("network", help="SPICE netlist (R, V, I) or hwlearn network file (.json)")
    p.add_argument("--outputs", required=True, help="output resistor names, comma or space separated")
    p.add_argument("--targets", required=True, help="target voltages, one per output")
    p.add_argument("--inputs", help="sources that drive the check (default: all; others are switched off)")
    for flag, key, rule in _rule_flags():
        owners = [rule] if rule else [name for name, cls in RULES.items() if key in parameters(cls)]
        spec, default = parameters(RULES[owners[0]])[key]
        if rule is None:
            p.add_argument(flag, type=PARSERS[spec.kind],
                           help=f"{key} of every rule that has one ({', '.join(owners)})")
        else:
            value = RULES[rule].check_values.get(key, default)
            p.add_argument(flag, type=PARSERS[spec.kind], help=f"{rule}: {spec.doc}; {spec.allowed()}"
                           f"{f' {spec.unit}' if spec.unit else ''} (default {value!r})")
    p.add_argument("--json", action="store_true", help="print a JSON document (docs/schemas.md)")
    p.add_argument("--backend", default="auto", help="solver backend: auto, dense, cholmod, superlu")
    p.set_defaults(run=run)


def _rule_values(args) -> dict[str, dict[str, float]]:
    """{rule: {parameter: value}} from the flags given, each checked against the rule's bounds;
    a rule's own flag wins over the shared one."""
    values: dict[str, dict[str, float]] = {}
    for flag, key, rule in _rule_flags():  # shared flags first, so that own flags override them
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        for name in [rule] if rule else [n for n, cls in RULES.items() if key in parameters(cls)]:
            spec, _ = parameters(RULES[name])[key]
            problem = spec.problem(value)
            if problem:
                raise ConfigError(f"{flag}: {value} is not allowed; {name}: {key} {problem}")
            values.setdefault(name, {})[key] = value
    return values


def run(args) -> int:
    net = load_network(args.network)
    outputs = _names(args.outputs)
    targets = _floats(args.targets, "--targets")
    if len(targets) != len(outputs):
        raise ConfigError(f"--targets: {len(targets)} value(s) given for {len(outputs)} output(s) "
                          f"({', '.join(outputs)})")
    values = _rule_values(args)
    ports = Ports.from_sources(net, _names(args.inputs) if args.inputs else None, outputs)
    if ports.n_inputs == 0:
        raise ConfigError(f"{args.network}: the network has no sources to drive it")
    doc = gradcheck(ports, ports.stored_inputs(), targets, rules=check_rules(values), backend=args.backend)
    if args.json:
        print_json(doc, f"gradcheck {args.network}")
        return 0
    print(f"{net.title or args.network}: {net.n_nodes} nodes, {net.n_edges} resistors "
          f"(solver backend: {doc['network']['backend']})")
    print(f"loss 1/2|v_out - y|^2 = {doc['loss']:.6g} V^2;  "
          + ", ".join(f"{n} = {o['volts']:.6g} V (target {o['target']:.6g})" for n, o in doc["outputs"].items()))
    rules = doc["rules"]
    # Per resistor: the exact gradient, each GEP objective's gradient, and the registered rules'
    # estimates (the GEP members' own are in --json; the summary below compares every one).
    own = {}
    for entry in rules.values():
        objective = entry.get("objective")
        if objective and objective["key"] != "loss":
            own.setdefault(objective["symbol"], objective)
    named = [r for r in rules if r in RULES]
    print("\nper resistor: dL/dR (W = V^2/ohm), the gradients of the GEP objectives l_1 = e^T P_o i and "
          "l_2 = 1/2 e^T K e (A^2), and each rule's estimate, in the units after its name:")
    rows = [[name, number(exact)] + [number(o["gradient"][name]) for o in own.values()]
            + [number(rules[r]["estimate"][name]) for r in named]
            for name, exact in doc["exact"].items()]
    print(format_table(["resistor", "exact (W)"] + [f"grad {s} (A^2)" for s in own]
                       + [f"{r} ({RULES[r].units})" for r in named], rows))
    print()
    table = []
    for name, entry in rules.items():
        objective = entry.get("objective") or {}
        table.append([name, objective.get("symbol", "-"), number(entry["cosine"]), number(entry["relative_error"], 3),
                      number(objective.get("cosine")), number(objective.get("relative_error"), 3)])
    print(format_table(["rule", "objective", "cosine", "rel. error", "cosine (own)", "rel. error (own)"], table))
    checks = {o["symbol"]: o["finite_difference_error"] for o in
              (e["objective"] for e in rules.values() if "objective" in e)}
    print("\ncosine and rel. error: against the exact gradient of L; (own): against the gradient of the rule's own "
          "objective, whose analytic form agrees with finite differences of it to "
          + ", ".join(f"{symbol} {number(err, 2)}" for symbol, err in checks.items()))
    return 0
