"""Line devices and the two ways to reach them: a loopback TCP server and a pseudo-terminal.

A ``LineDevice`` is an emulated instrument's protocol logic: a line in, at most one line out.
It records every line it receives (with its arrival time and the reply) so tests can check
exactly what a driver sent. The servers only move bytes:

- ``TcpLineServer`` listens on 127.0.0.1 only (never another interface: an emulator must not be
  reachable from the network), one port per instrument, port 0 for an ephemeral port (read it
  back from ``.port``); each connection is served in its own thread.
- ``PtyLineServer`` serves the master side of a pseudo-terminal pair (``os.openpty``); a driver
  opens ``.path``, the slave side, with pyserial as a real serial device, so termios, read
  timeouts and partial lines behave as with a USB-serial adapter.

Both apply a configurable latency before each reply, start and stop cleanly from any thread,
and call ``device.tick(now)`` periodically (the resistor board's watchdog needs time to pass
even when no line arrives). Given a ``FaultPlan`` (simulator/emulators/faults.py) they inject
its faults into the replies: drop, delay, garble, disconnect, or power-cycle the device.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("hwlearn.emulators")


@dataclass(frozen=True)
class Received:
    """One line a device received: when (time.monotonic()), what, and what it answered."""

    time: float
    line: str
    reply: str | None


class LineDevice:
    """Base of an emulated instrument. Subclasses implement ``handle``; ``receive`` is what the
    servers call. The device lock makes every line's handling atomic, also across connections."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.lock = threading.RLock()
        self._log: list[Received] = []
        self._outbox: list[str] = []

    def handle(self, line: str) -> str | None:
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Called periodically by the server with the device clock's time."""

    def power_cycle(self) -> None:
        """Off and on again: the instrument's power-on state (a reboot fault)."""
        raise NotImplementedError

    def connected(self) -> None:
        """A client opened the link (a TCP connection was accepted). A device that restarts
        when its port is opened (an Arduino, through DTR) overrides this."""

    def send_unsolicited(self, line: str) -> None:
        """Queue a line the device sends without being asked (a boot announcement); the server
        sends it at its next turn."""
        with self.lock:
            self._outbox.append(line)

    def take_unsolicited(self) -> list[str]:
        with self.lock:
            lines, self._outbox = self._outbox, []
            return lines

    def receive(self, line: str) -> str | None:
        with self.lock:
            reply = self.handle(line)
            self._log.append(Received(time.monotonic(), line, reply))
            log.debug("%s received %r, answered %r", type(self).__name__, line, reply)
            return reply

    # -- the command log -------------------------------------------------------------------
    @property
    def received(self) -> list[Received]:
        with self.lock:
            return list(self._log)

    def lines(self) -> list[str]:
        """Every line received so far, in order."""
        with self.lock:
            return [r.line for r in self._log]

    def clear_log(self) -> None:
        with self.lock:
            self._log.clear()


class _Server:
    """Thread bookkeeping shared by both servers."""

    def __init__(self, device: LineDevice, latency_s: float, tick_s: float, faults=None):
        if latency_s < 0 or tick_s <= 0:
            raise ValueError(f"latency_s must be >= 0 and tick_s > 0, got {latency_s}, {tick_s}")
        self.device = device
        self.faults = faults  # a FaultPlan, or None
        self.latency_s = latency_s  # may be changed while running: read before every reply
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False

    def _spawn(self, target, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _reply(self, line: str) -> tuple[bytes | None, str | None]:
        """(bytes to send, the fault injected or None)."""
        try:
            reply = self.device.receive(line)
        except Exception:  # an emulator bug must show in the test log, not kill the server
            log.exception("%s failed on %r", type(self.device).__name__, line)
            return None, None
        if reply is None:
            return None, None
        if self.latency_s:
            time.sleep(self.latency_s)
        data = reply.encode("latin-1") + b"\n"
        fault = self.faults.draw_reply(line) if self.faults is not None else None
        if fault in ("timeout", "disconnect"):
            return None, fault
        if fault == "reboot":
            with self.device.lock:
                self.device.power_cycle()
            return None, fault
        if fault == "garbled":
            return self.faults.garble(data), fault
        if fault == "late":
            self._stop.wait(self.faults.rates.late_s)  # stopping the server cuts the wait short
        return data, fault

    def _join(self) -> None:
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5.0)
        self._threads.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _split_lines(buffer: bytearray) -> list[str]:
    """Pop complete lines (LF-terminated, LF removed) off ``buffer``. A CR before the LF is left
    for the device to judge, as the firmware does. Bytes are decoded as latin-1, one character
    per byte, so a checksum over a line still sees exactly its bytes."""
    lines = []
    while True:
        end = buffer.find(b"\n")
        if end < 0:
            return lines
        raw = bytes(buffer[:end])
        del buffer[: end + 1]
        lines.append(raw.decode("latin-1"))


class TcpLineServer(_Server):
    """Serve ``device`` on 127.0.0.1:``port`` (0: any free port, see ``.port``)."""

    def __init__(self, device: LineDevice, port: int = 0, *, latency_s: float = 0.0,
                 tick_s: float = 0.02, faults=None):
        super().__init__(device, latency_s, tick_s, faults)
        self._requested_port = port
        self._listener: socket.socket | None = None
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the server is not started")
        return self._listener.getsockname()[1]

    @property
    def resource(self) -> str:
        """The VISA resource string of this server, for pyvisa-py."""
        return f"TCPIP::127.0.0.1::{self.port}::SOCKET"

    def start(self) -> TcpLineServer:
        if self._started:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._requested_port))  # loopback only, by design
        listener.listen(4)
        self._listener = listener
        self._started = True
        self._spawn(self._accept_loop, f"emulator-accept-{self.port}")
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._stop.set()
        with self._clients_lock:
            for client in list(self._clients):
                with contextlib.suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
        self._join()
        if self._listener is not None:
            self._listener.close()
        self._started = False

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener], [], [], self.tick_s)
            self.device.tick(self.device.clock())
            if not ready:
                continue
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.device.connected()
            with self._clients_lock:
                self._clients.add(client)
            self._spawn(lambda c=client: self._serve(c), f"emulator-client-{self.port}")

    def _serve(self, client: socket.socket) -> None:
        buffer = bytearray()
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client], [], [], self.tick_s)
                for line in self.device.take_unsolicited():
                    client.sendall(line.encode("latin-1") + b"\n")
                if not ready:
                    continue
                data = client.recv(4096)
                if not data:
                    return
                buffer.extend(data)
                for line in _split_lines(buffer):
                    reply, fault = self._reply(line)
                    if fault == "disconnect":
                        return  # the connection is closed below, unanswered
                    if reply is not None:
                        client.sendall(reply)
        except OSError:
            return
        finally:
            with self._clients_lock:
                self._clients.discard(client)
            client.close()


class PtyLineServer(_Server):
    """Serve ``device`` on a pseudo-terminal; open ``.path`` with pyserial."""

    def __init__(self, device: LineDevice, *, latency_s: float = 0.0, tick_s: float = 0.01,
                 faults=None):
        super().__init__(device, latency_s, tick_s, faults)
        self._master = self._slave = None
        self._wake_r = self._wake_w = None
        self.path: str | None = None

    def start(self) -> PtyLineServer:
        if self._started:
            return self
        self._master, self._slave = os.openpty()
        # Raw mode from the start: no echo, no line editing, no CR/LF translation before the
        # driver opens the port (pyserial sets raw mode again when it opens it).
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._started = True
        self._spawn(self._loop, f"emulator-pty-{os.path.basename(self.path)}")
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._join()
        # The slave fd is held until here so that the master never reads EIO when a driver
        # closes and reopens the port.
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._started = False

    def _loop(self) -> None:
        buffer = bytearray()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master, self._wake_r], [], [], self.tick_s)
            self.device.tick(self.device.clock())
            for line in self.device.take_unsolicited():
                data = line.encode("latin-1") + b"\n"
                while data:
                    data = data[os.write(self._master, data):]
            if self._master not in ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            buffer.extend(data)
            for line in _split_lines(buffer):
                reply, _ = self._reply(line)  # a serial link has no connection to close
                while reply:
                    reply = reply[os.write(self._master, reply):]
