"""`hwlearn bench check`, `hwlearn bench list` and `hwlearn virtual-bench`, run as a user runs
them: the check against a virtual bench started here; the virtual bench as a subprocess on
fixed ports, stopped by SIGTERM."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hwlearn.cli import main
from simulator.virtual_bench import VirtualBench
from tests.bench_helpers import bench_file_text, example_config

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def refuses_connections(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2.0)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_bench_check_passes_against_a_virtual_bench(tmp_path, capsys):
    config = example_config()
    with VirtualBench(config, twin=True) as vb:
        path = tmp_path / "twin.toml"
        path.write_text(bench_file_text(config, vb.resources))
        assert main(["bench", "check", str(path)]) == 0
        assert all(vb.is_safe().values())
    out = capsys.readouterr().out
    assert "result: PASS" in out
    for name in config.instruments:
        assert f"  {name} " in out
    for words in ("MODEL 2450", "MODEL 2400", "34970A", "RB16-MCP4251", "16 wired channels read back",
                  "20 channels read finite values", "every board channel at its safe code"):
        assert words in out, f"{words!r} missing from:\n{out}"


def test_bench_check_fails_naming_a_missing_instrument(tmp_path, capsys):
    config = example_config()
    with VirtualBench(config, twin=True) as vb:
        resources = dict(vb.resources, smu_out2=f"TCPIP0::127.0.0.1::{free_ports(1)[0]}::SOCKET")
        path = tmp_path / "missing.toml"
        path.write_text(bench_file_text(config, resources))
        assert main(["bench", "check", str(path)]) == 1
        assert all(vb.is_safe().values())  # what was reached before the failure is safe
    out = capsys.readouterr().out
    assert "open" in out and "FAIL" in out and "smu_out2" in out and "result: FAIL (open)" in out


def test_bench_check_fails_naming_the_key_of_an_invalid_file(tmp_path, capsys):
    text = bench_file_text(example_config(), {n: i.resource for n, i in example_config().instruments.items()})
    path = tmp_path / "bad.toml"
    path.write_text(text.replace("Rh0_1 = 102", "Rh0_1 = 121"))
    assert main(["bench", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}: wiring.mux.Rh0_1 = 121: the DMM card has channels 101-120" in out


def test_bench_list_answers_when_nothing_is_attached():
    proc = subprocess.run([sys.executable, "-m", "hwlearn", "bench", "list", "--timeout", "5"],
                          capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "VISA resources (pyvisa-py):" in proc.stdout and "serial ports:" in proc.stdout


class LineReader:
    """Collects a subprocess's stdout lines in a thread (select on a buffered pipe would miss
    lines already read into the buffer)."""

    def __init__(self, stream):
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.text = ""
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)  # the process closed its output

    def until(self, marker: str, timeout_s: float = 60.0) -> str:
        deadline = time.monotonic() + timeout_s
        while marker not in self.text:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {marker!r} within {timeout_s:g} s; got:\n{self.text}") from None
            if line is None:
                raise EOFError(f"the process ended before {marker!r}; it printed:\n{self.text}")
            self.text += line
        return self.text


def start_virtual_bench(tmp_path, config, attempts: int = 3):
    """`hwlearn virtual-bench` on free fixed ports (the board on socket://), retried if another
    process takes a port between our choosing it and the bench binding it."""
    for attempt in range(attempts):
        ports = dict(zip(config.instruments, free_ports(len(config.instruments))))
        resources = {name: (f"socket://127.0.0.1:{port}" if config.instruments[name].kind == "board"
                            else f"TCPIP0::127.0.0.1::{port}::SOCKET") for name, port in ports.items()}
        path = tmp_path / f"fixed{attempt}.toml"
        path.write_text(bench_file_text(config, resources))
        proc = subprocess.Popen([sys.executable, "-m", "hwlearn", "virtual-bench", str(path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                                cwd=ROOT)
        reader = LineReader(proc.stdout)
        try:
            banner = reader.until("ready")
            return proc, reader, banner, path, ports, resources
        except EOFError:
            proc.wait(timeout=30)
            error = proc.stderr.read()
            if "in use" not in error or attempt == attempts - 1:
                raise AssertionError(f"hwlearn virtual-bench failed:\n{error}") from None


def test_virtual_bench_command_serves_the_bench_file_until_sigterm(tmp_path, capsys):
    config = example_config()
    proc, reader, banner, path, ports, resources = start_virtual_bench(tmp_path, config)
    try:
        for name, resource in resources.items():
            assert name in banner and resource in banner, banner
        # the real drivers reach it at the bench file's own resources (board over socket://)
        assert main(["bench", "check", str(path)]) == 0, capsys.readouterr().out
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read()
    assert "stopped" in reader.until("stopped", timeout_s=10)
    for port in ports.values():
        assert refuses_connections(port), f"port {port} still open after SIGTERM"


def test_virtual_bench_command_refuses_a_resource_it_cannot_serve(tmp_path):
    config = example_config()
    resources = {n: i.resource for n, i in config.instruments.items()}
    resources["smu_in0"] = "GPIB0::24::INSTR"
    path = tmp_path / "gpib.toml"
    path.write_text(bench_file_text(config, resources))
    proc = subprocess.run([sys.executable, "-m", "hwlearn", "virtual-bench", str(path)],
                          capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT)
    assert proc.returncode != 0
    assert "smu_in0" in proc.stderr and "GPIB0::24::INSTR" in proc.stderr and "twin" in proc.stderr


@pytest.mark.parametrize("command", [["bench", "--help"], ["virtual-bench", "--help"]])
def test_the_commands_are_registered(command, capsys):
    with pytest.raises(SystemExit) as info:
        main(command)
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: hwlearn {command[0]}" in out


def test_virtual_bench_command_refuses_bad_faults_naming_the_key(capsys):
    example = str(ROOT / "examples" / "virtual-bench.toml")
    code = main(["virtual-bench", example, "--faults", "timeout=0.01,late=1.5", "--fault-seed", "3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--faults: late = 1.5: must be <= 1" in err


def test_bench_check_takes_the_visa_library_by_name(tmp_path, capsys):
    config = example_config()
    with VirtualBench(config, twin=True) as vb:
        path = tmp_path / "twin.toml"
        path.write_text(bench_file_text(config, vb.resources))
        assert main(["bench", "check", str(path), "--visa-library", "ni-visa"]) == 1
        out = capsys.readouterr().out
        assert "open" in out and "cannot load the VISA library '@ivi'" in out
        assert main(["bench", "check", str(path), "--visa-library", "pyvisa-py"]) == 0
    assert main(["bench", "check", str(path), "--visa-library", "visa32.dll"]) == 2
    assert "--visa-library 'visa32.dll': allowed: 'pyvisa-py'" in capsys.readouterr().err
