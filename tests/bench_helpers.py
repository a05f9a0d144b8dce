"""Shared by the bench tests: the example bench file, variants of it, and a twin virtual bench
with a Bench connected through the real drivers (pyvisa-py sockets, pyserial socket://)."""

from __future__ import annotations

import copy
import socket
from contextlib import contextmanager
from pathlib import Path

from drivers.bench import Bench
from hwlearn.config.bench import BenchConfig, load_bench_file, validate_bench
from hwlearn.config.schema import load_toml
from simulator.virtual_bench import VirtualBench

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "virtual-bench.toml"
_EXAMPLE_DOC = load_toml(EXAMPLE)


def example_doc() -> dict:
    """The example bench file as parsed TOML, a fresh copy to modify."""
    return copy.deepcopy(_EXAMPLE_DOC)


def config_of(doc: dict, source: str = "bench.toml") -> BenchConfig:
    return validate_bench(doc, source, base_dir=EXAMPLE.parent)


def example_config(**instrument_changes) -> BenchConfig:
    """The example bench with ``instrument = {key: value}`` changes (timeouts, limits...)."""
    doc = example_doc()
    for name, changes in instrument_changes.items():
        doc["instruments"][name].update(changes)
    return config_of(doc)


@contextmanager
def twin_bench(config: BenchConfig | None = None, **virtual):
    """(virtual bench, Bench) on ephemeral loopback ports; both stopped at the end."""
    config = config or example_config()
    with VirtualBench(config, twin=True, **virtual) as vb:
        bench = Bench.open(vb.bench_config())
        try:
            yield vb, bench
        finally:
            bench.close()


def bench_file_text(config: BenchConfig, resources: dict[str, str], example: Path = EXAMPLE) -> str:
    """The example file's text (another example's with ``example``) with each instrument's
    resource replaced."""
    text = example.read_text()
    for name, inst in config.instruments.items():
        text = text.replace(f'"{inst.resource}"', f'"{resources[name]}"')
    return text


def board_lines(device) -> list[str]:
    """What a board received, without the heartbeat thread's HB requests."""
    return [line for line in device.lines() if " HB*" not in line]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@contextmanager
def served_bench_file(folder: Path):
    """(virtual bench, bench file): the example bench served on free fixed loopback ports and a
    bench file naming them, so another process (or a resume) reaches the same instruments."""
    config = example_config()
    ports = iter(free_ports(len(config.instruments)))
    resources = {name: (f"socket://127.0.0.1:{next(ports)}" if inst.kind == "board"
                        else f"TCPIP0::127.0.0.1::{next(ports)}::SOCKET")
                 for name, inst in config.instruments.items()}
    path = Path(folder) / "bench.toml"
    path.write_text(bench_file_text(config, resources))
    with VirtualBench(load_bench_file(path)) as vb:
        yield vb, path
