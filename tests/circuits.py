"""Random test circuits and an ngspice runner, shared by the solver tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

NGSPICE = shutil.which("ngspice")


def random_netlist(seed: int, n_nodes: int = 8, extra_edges: int = 6) -> str:
    """A solvable random netlist with V sources in series, to ground and floating, and I sources.

    The resistor graph is connected; voltage sources never close a loop among themselves.
    """
    rng = np.random.default_rng(seed)
    nodes = ["0"] + [f"n{k}" for k in range(1, n_nodes)]
    lines = [f"random netlist {seed}"]
    pairs = set()
    for k in range(1, n_nodes):
        pairs.add((k, int(rng.integers(0, k))))
    while len(pairs) < n_nodes - 1 + extra_edges:
        a, b = (int(t) for t in rng.integers(0, n_nodes, 2))
        if a != b and (b, a) not in pairs:
            pairs.add((a, b))
    parent = list(range(n_nodes + 64))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    def value(lo, hi):
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))

    v_count = 0
    internal = n_nodes
    for r_count, (a, b) in enumerate(sorted(pairs), start=1):
        if rng.random() < 0.25:  # a source in series with this resistor, through a new node
            v_count += 1
            mid = f"s{internal}"
            parent[internal] = internal
            lines.append(f"V{v_count} {nodes[a]} {mid} DC {rng.uniform(-5, 5):.6g}")
            parent[find(internal)] = find(a)
            lines.append(f"R{r_count} {mid} {nodes[b]} {value(10, 1e5):.6g}")
            internal += 1
        else:
            lines.append(f"R{r_count} {nodes[a]} {nodes[b]} {value(10, 1e5):.6g}")
    for _ in range(int(rng.integers(1, 4))):  # to ground or floating, never closing a loop
        a = int(rng.integers(1, n_nodes))
        b = 0 if rng.random() < 0.5 else int(rng.integers(1, n_nodes))
        if a == b or find(a) == find(b):
            continue
        parent[find(a)] = find(b)
        v_count += 1
        lines.append(f"V{v_count} {nodes[a]} {nodes[b]} {rng.uniform(-10, 10):.6g}")
    for k in range(int(rng.integers(1, 4))):
        a, b = (int(t) for t in rng.integers(0, n_nodes, 2))
        if a != b:
            lines.append(f"I{k + 1} {nodes[a]} {nodes[b]} {rng.uniform(-1e-3, 1e-3):.6g}")
    lines.append(".end")
    return "\n".join(lines) + "\n"


def run_ngspice(netlist: str) -> dict[str, float]:
    """Operating point from ngspice: {'v(node)': volts, 'i(v1)': amps, 'i(@r1[i])': amps, ...}."""
    body = netlist.rsplit(".end", 1)[0]
    deck = body + ".options savecurrents\n.op\n.end\n"
    with tempfile.TemporaryDirectory() as tmp:
        cir, raw = Path(tmp) / "deck.cir", Path(tmp) / "deck.raw"
        cir.write_text(deck)
        subprocess.run([NGSPICE, "-b", "-r", str(raw), str(cir)], check=True, capture_output=True, timeout=60)
        data = raw.read_bytes()
    split = data.index(b"Binary:\n")
    header = data[:split].decode()
    names = [line.split("\t")[2] for line in header.split("Variables:\n")[1].splitlines()
             if line.startswith("\t")]
    values = np.frombuffer(data[split + len(b"Binary:\n"):], dtype="<f8")[: len(names)]
    return dict(zip(names, map(float, values)))
