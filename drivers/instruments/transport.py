"""Line transports to instruments: VISA (pyvisa) and serial (pyserial).

A transport moves lines of ASCII text and owns what every instrument link needs:

- a timeout per read (and per query, overridable for slow operations such as a scan);
- bounded retries, for queries only and only where the caller says a retry is safe. A write is
  never retried: resending a state-changing command blindly could apply it twice. Before a
  query is resent, whatever arrives within a short grace period is drained, so that a late
  reply to the first attempt is not taken as the reply to the next query;
- a lock (``threading.RLock``): a query is a write and a read under one hold of the lock, so two
  threads (a run and a heartbeat) never interleave; drivers hold ``transport.lock`` around
  multi-line exchanges;
- an I/O trace: every line sent ("-> ") and received ("<- ") at DEBUG on the logger
  ``hwlearn.io.<name>``, retries and drained lines at WARNING.

Lines handed to ``write`` must be single-line ASCII: a newline inside a command (for example
from a config value) would smuggle a second command to the instrument, so it is refused.
"""

from __future__ import annotations

import abc
import logging
import math
import threading

from drivers.instruments.errors import InstrumentTimeout, LimitError, TransportError


class Transport(abc.ABC):
    """A line link to one instrument. Subclasses implement _send, _receive and _close."""

    def __init__(self, name: str, *, timeout_s: float = 2.0, retries: int = 1,
                 drain_s: float = 0.1):
        if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"{name}: timeout_s must be a finite number > 0, got {timeout_s!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
            raise ValueError(f"{name}: retries must be an integer 0..5, got {retries!r}")
        if not (isinstance(drain_s, (int, float)) and math.isfinite(drain_s) and drain_s >= 0):
            raise ValueError(f"{name}: drain_s must be a finite number >= 0, got {drain_s!r}")
        self.name = name
        self.timeout_s = float(timeout_s)
        self.retries = retries
        self.drain_s = float(drain_s)
        self.lock = threading.RLock()
        self.log = logging.getLogger(f"hwlearn.io.{name}")
        self._closed = False
        self._owes_reply = False

    # -- the public verbs ------------------------------------------------------------------
    def write(self, line: str) -> None:
        """Send one line (the termination is added). Never retried."""
        self._check_line(line)
        with self.lock:
            self._check_open()
            self.log.debug("-> %s", line)
            self._send(line)

    def read_line(self, timeout_s: float | None = None) -> str:
        """The next line from the instrument, without its termination."""
        with self.lock:
            self._check_open()
            line = self._receive(self.timeout_s if timeout_s is None else float(timeout_s))
            self.log.debug("<- %s", line)
            return line

    def query(self, line: str, *, retry: bool = True, timeout_s: float | None = None) -> str:
        """Send ``line`` and return the reply. If no reply arrives in time and ``retry`` is
        True, drain late input and resend, at most ``retries`` more times. Pass retry=False
        for queries with side effects that must not happen twice."""
        self._check_line(line)
        attempts = 1 + (self.retries if retry else 0)
        with self.lock:
            self._collect_owed_reply()
            for attempt in range(1, attempts + 1):
                self.write(line)
                self._owes_reply = True
                try:
                    reply = self.read_line(timeout_s)
                    self._owes_reply = False
                    return reply
                except InstrumentTimeout:
                    self._owes_reply = False
                    if attempt == attempts:
                        wait = self.timeout_s if timeout_s is None else timeout_s
                        raise InstrumentTimeout(
                            self.name, f"no reply to {line!r} within {wait:g} s "
                                       f"({attempts} attempt{'s' if attempts > 1 else ''})") from None
                    self.log.warning("no reply to %r, attempt %d of %d; retrying", line,
                                     attempt, attempts)
                    self.drain()
        raise AssertionError("unreachable")

    def _collect_owed_reply(self) -> None:
        """A query interrupted after its line went out (Ctrl-C in the middle of an exchange)
        leaves its reply on the way; read and discard it, or the next query would take it for
        its own answer."""
        if not self._owes_reply:
            return
        self._owes_reply = False
        try:
            stale = self.read_line()
            self.log.warning("discarded the reply to an interrupted query: %r", stale)
        except InstrumentTimeout:
            self.drain()

    def drain(self) -> list[str]:
        """Discard input that arrives within ``drain_s``; returns the discarded lines."""
        with self.lock:
            self._check_open()
            lines = self._discard(self.drain_s)
            for stale in lines:
                self.log.warning("discarded stale input %r", stale)
            return lines

    def close(self) -> None:
        with self.lock:
            if not self._closed:
                self._closed = True
                self._close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- for subclasses ----------------------------------------------------------------------
    @abc.abstractmethod
    def _send(self, line: str) -> None: ...

    @abc.abstractmethod
    def _receive(self, timeout_s: float) -> str:
        """One line without termination, or raise InstrumentTimeout."""

    def _discard(self, wait_s: float) -> list[str]:
        """Read and return every line arriving within ``wait_s`` of the previous one."""
        lines = []
        if wait_s <= 0:
            return lines
        while True:
            try:
                lines.append(self._receive(wait_s))
            except InstrumentTimeout:
                return lines

    @abc.abstractmethod
    def _close(self) -> None: ...

    def _check_line(self, line: str) -> None:
        if not isinstance(line, str):
            raise LimitError(self.name, f"a command must be text, got {line!r}; nothing was sent")
        if "\n" in line or "\r" in line or not line.isascii():
            raise LimitError(self.name, f"a command must be one line of ASCII, got {line!r}; "
                                        "nothing was sent")

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError(self.name, "the transport is closed")


class VisaTransport(Transport):
    """A VISA resource opened with pyvisa, e.g. ``'TCPIP::192.168.0.5::5025::SOCKET'`` or
    ``'GPIB0::24::INSTR'``. ``backend`` picks the VISA library ('@py' is pyvisa-py, '' the
    system's default). pyvisa-py connects a SOCKET resource lazily: a refused connection shows
    at the first write, as a TransportError naming the resource."""

    def __init__(self, resource: str, name: str, *, timeout_s: float = 2.0, retries: int = 1,
                 drain_s: float = 0.1, backend: str = "@py", read_termination: str = "\n",
                 write_termination: str = "\n", resource_manager=None):
        super().__init__(name, timeout_s=timeout_s, retries=retries, drain_s=drain_s)
        import pyvisa  # late: importing pyvisa costs time that tests of other parts need not pay

        self._visa_errors = pyvisa.errors
        self._timeout_code = pyvisa.constants.StatusCode.error_timeout
        self.resource_name = resource
        try:
            rm = resource_manager if resource_manager is not None else pyvisa.ResourceManager(backend)
            self._res = rm.open_resource(resource, read_termination=read_termination,
                                         write_termination=write_termination,
                                         timeout=self._ms(timeout_s))
        except (pyvisa.errors.Error, OSError, ValueError) as exc:
            raise TransportError(name, f"cannot open VISA resource {resource!r}: {exc}") from exc
        if resource.upper().endswith("::SOCKET"):
            self._disable_nagle(pyvisa)

    def _disable_nagle(self, pyvisa) -> None:
        """TCP_NODELAY on a raw socket, as VISA specifies by default. Without it two writes in a
        row (a ramp) wait for the instrument's delayed ACK, some 40 ms each. pyvisa-py neither
        sets it nor accepts the attribute, so its session's socket is reached directly."""
        try:
            self._res.set_visa_attribute(pyvisa.constants.VI_ATTR_TCPIP_NODELAY,
                                         pyvisa.constants.VI_TRUE)
            return
        except Exception:  # not supported by this VISA library: try pyvisa-py's socket
            pass
        import socket

        session = getattr(self._res.visalib, "sessions", {}).get(self._res.session)
        sock = getattr(session, "interface", None)
        if isinstance(sock, socket.socket):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return
            except OSError:
                pass
        self.log.debug("cannot disable Nagle's algorithm on %s", self.resource_name)

    @staticmethod
    def _ms(seconds: float) -> int:
        return max(1, int(math.ceil(seconds * 1000)))

    def _send(self, line: str) -> None:
        try:
            self._res.write(line)
        except (self._visa_errors.Error, OSError) as exc:
            raise TransportError(self.name, f"writing {line!r} to {self.resource_name} failed: "
                                            f"{exc}") from exc

    def _receive(self, timeout_s: float) -> str:
        self._res.timeout = self._ms(timeout_s)
        try:
            return self._res.read()
        except self._visa_errors.VisaIOError as exc:
            if exc.error_code == self._timeout_code:
                raise InstrumentTimeout(self.name, f"no reply within {timeout_s:g} s") from None
            raise TransportError(self.name, f"reading {self.resource_name} failed: {exc}") from exc
        except (self._visa_errors.Error, OSError) as exc:
            raise TransportError(self.name, f"reading {self.resource_name} failed: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise TransportError(self.name, f"the reply is not ASCII: {exc}") from exc

    def _close(self) -> None:
        try:
            self._res.close()
        except Exception as exc:  # a failing close must not hide the reason we are closing
            self.log.warning("closing %s failed: %s", self.resource_name, exc)


class SerialTransport(Transport):
    """A serial port opened with pyserial: a device path ('/dev/ttyACM0', 'COM3') or a pyserial
    URL. Which URLs a bench may use is checked by the bench file's validation, not here."""

    def __init__(self, port: str, name: str, *, baudrate: int = 115200, timeout_s: float = 1.0,
                 retries: int = 1, drain_s: float = 0.1, termination: str = "\n"):
        super().__init__(name, timeout_s=timeout_s, retries=retries, drain_s=drain_s)
        import serial

        self._serial_errors = (serial.SerialException, OSError)
        self.port = port
        self._term = termination.encode("ascii")
        # Bytes of a line whose end had not arrived when a read timed out: kept, so the line is
        # completed (and then recognised as stale by the driver) instead of being split in two.
        self._partial = b""
        try:
            self._ser = serial.serial_for_url(port, baudrate=baudrate, timeout=timeout_s,
                                              write_timeout=timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(name, f"cannot open serial port {port!r}: {exc}") from exc

    def _send(self, line: str) -> None:
        try:
            self._ser.write(line.encode("ascii") + self._term)
            self._ser.flush()
        except self._serial_errors as exc:
            raise TransportError(self.name, f"writing {line!r} failed: {exc}") from exc

    def _receive(self, timeout_s: float) -> str:
        try:
            if self._term in self._partial:
                raw, _, rest = self._partial.partition(self._term)
                self._partial = rest
            else:
                self._ser.timeout = timeout_s
                chunk = self._ser.read_until(self._term)
                data = self._partial + chunk
                if not data.endswith(self._term):
                    self._partial = data
                    raise InstrumentTimeout(self.name, f"no complete line within {timeout_s:g} s")
                self._partial = b""
                raw = data[: -len(self._term)]
        except self._serial_errors as exc:
            raise TransportError(self.name, f"reading failed: {exc}") from exc
        # A device that sends CR LF gets its CR stripped; other bytes stay so that a checksum
        # over the line still sees exactly what was sent.
        return raw.rstrip(b"\r").decode("ascii", errors="replace")

    def _discard(self, wait_s: float) -> list[str]:
        lines = super()._discard(wait_s)
        if wait_s > 0 and self._partial:  # an unterminated tail is stale input too
            lines.append(self._partial.decode("ascii", errors="replace"))
            self._partial = b""
        return lines

    def _close(self) -> None:
        try:
            self._ser.close()
        except Exception as exc:
            self.log.warning("closing %s failed: %s", self.port, exc)
