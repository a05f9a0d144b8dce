"""Line transports to instruments: VISA (pyvisa) and serial (pyserial).

A transport moves lines of ASCII text and owns what every instrument link needs:

- a timeout per read (and per query, overridable for slow operations such as a scan);
- pairing of every reply with its request. After a timeout a reply may still be on its way,
  and would be read as the answer to the next request (a 20-channel scan that outlasts the
  timeout shifts every later reading by one). So a query that timed out is never resent
  blindly: the transport first clears the device (VISA clear: a GPIB device clear, or the
  socket's input discarded; the serial input buffer flushed), then sends a marker query whose
  reply it knows (the driver's ``*IDN?``, see ``set_marker``) and reads until that reply,
  discarding every line before it as late. Only then is the query resent, at most ``retries``
  times and only where the caller says resending is safe. A query that finally fails leaves
  the transport marked: the next query re-synchronises first. A transport without a marker
  (the resistor board, whose replies carry request ids) discards what arrives within
  ``drain_s`` instead. A write is never retried: resending a state-changing command blindly
  could apply it twice;
- fault reports: every timeout, late reply and lost link is counted in ``faults`` (a
  drivers.instruments.faults.FaultLog, shared by the bench) and passed to its hook;
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
import time

from drivers.instruments import faults as fault
from drivers.instruments.errors import InstrumentTimeout, LimitError, TransportError

RESYNC_WAIT_S = 1.0  # how long a device may take to answer the marker after a device clear
MAX_STALE_LINES = 16  # late lines tolerated before the marker's reply


class Transport(abc.ABC):
    """A line link to one instrument. Subclasses implement _send, _receive and _close, and may
    implement _clear (device clear) and _reopen (a new connection to the same resource)."""

    def __init__(self, name: str, *, timeout_s: float = 2.0, retries: int = 1,
                 drain_s: float = 0.1, faults: fault.FaultLog | None = None):
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
        self.faults = faults if faults is not None else fault.FaultLog()
        self.lock = threading.RLock()
        self.log = logging.getLogger(f"hwlearn.io.{name}")
        self._closed = False
        self._marker: tuple[str, str] | None = None
        # True while a reply may still be on its way (a query timed out or was interrupted
        # around its write): the next query re-synchronises first. ``_owed`` counts the queries
        # sent whose replies were not read; a resync reads past that many.
        self._desynced = False
        self._owed = 0

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
        """Send ``line`` and return its reply. If no reply arrives in time and ``retry`` is
        True, re-synchronise (see the module docstring) and resend, at most ``retries`` more
        times. Pass retry=False for queries with side effects that must not happen twice."""
        self._check_line(line)
        attempts = 1 + (self.retries if retry else 0)
        wait = self.timeout_s if timeout_s is None else float(timeout_s)
        with self.lock:
            if self._desynced:
                self.resync(line)
            for attempt in range(1, attempts + 1):
                # Marked before the write: an interrupt (Ctrl-C) arriving as the line goes out
                # must not leave its reply to be read as the next query's.
                self._desynced = True
                self._owed += 1
                self.write(line)
                try:
                    reply = self.read_line(wait)
                except InstrumentTimeout:
                    if attempt == attempts:
                        self.report_fault(fault.TIMEOUT, f"no reply to {line!r} within {wait:g} s "
                                          f"({attempts} attempt{'s' if attempts > 1 else ''})",
                                          recovered=False)
                        raise InstrumentTimeout(
                            self.name, f"no reply to {line!r} within {wait:g} s "
                                       f"({attempts} attempt{'s' if attempts > 1 else ''})") from None
                    try:
                        late = self.resync(line)
                    except TransportError as exc:
                        self.report_fault(fault.TIMEOUT, f"no reply to {line!r} within {wait:g} s, "
                                          "and none after a device clear", recovered=False)
                        why = str(exc).removeprefix(f"{self.name}: ")
                        raise type(exc)(self.name, f"no reply to {line!r} within {wait:g} s, and "
                                                   f"{why}") from None
                    self.report_fault(fault.TIMEOUT, f"no reply to {line!r} within {wait:g} s; "
                                      f"re-synchronised ({late} late line{'s' if late != 1 else ''} "
                                      f"discarded), attempt {attempt + 1} of {attempts}")
                    continue
                self._desynced, self._owed = False, 0
                return reply
        raise AssertionError("unreachable")

    def set_marker(self, query: str, reply: str) -> None:
        """The query that re-synchronises this link after a timeout and its exact reply (a
        SCPI driver passes ``*IDN?`` and what the instrument answered to it)."""
        self._check_line(query)
        self._marker = (query, reply)

    def resync(self, failed: str | None = None) -> int:
        """Bring the link back to 'no reply owed': device clear, then the marker query, reading
        until its reply; returns how many late lines were discarded. If the query that failed
        is the marker itself, ``*OPC?`` (answered '1') is the marker instead, so its own late
        reply cannot pass for the marker's. Without a marker, input arriving within
        ``drain_s`` is discarded. Raises InstrumentTimeout if the device does not answer
        the marker within RESYNC_WAIT_S (the link stays marked)."""
        with self.lock:
            self._check_open()
            self._clear()
            if self._marker is None:
                late = self._discard(self.drain_s)
                for line in late:
                    self.report_fault(fault.STALE, f"discarded late input {line!r}")
                self._desynced, self._owed = False, 0
                return len(late)
            query, expected = self._marker
            if failed == query:
                query, expected = "*OPC?", "1"
            owed = self._owed  # replies that may come before the marker's (an earlier marker's too)
            self._owed += 1
            self.write(query)
            read, matched = 0, False
            deadline = time.monotonic() + RESYNC_WAIT_S
            while read <= MAX_STALE_LINES:
                try:
                    line = self.read_line(max(0.0, deadline - time.monotonic()))
                except InstrumentTimeout:
                    if matched:  # the replies still owed were lost: the last marker reply was ours
                        self._desynced, self._owed = False, 0
                        return read - 1
                    self.report_fault(fault.RESYNC, f"no answer to the marker {query!r} within "
                                      f"{RESYNC_WAIT_S:g} s of a device clear", recovered=False)
                    raise InstrumentTimeout(self.name, f"no answer to {query!r} within "
                                            f"{RESYNC_WAIT_S:g} s after a device clear: the "
                                            "instrument does not respond") from None
                if line == expected:
                    if read >= owed:  # every reply owed before it has been read: this is ours
                        self._desynced, self._owed = False, 0
                        return read
                    matched = True  # perhaps an earlier marker's reply: read on while lines come
                    deadline = time.monotonic() + RESYNC_WAIT_S
                else:
                    self.report_fault(fault.STALE, f"discarded late reply {line!r}")
                read += 1
            self.report_fault(fault.RESYNC, f"more than {MAX_STALE_LINES} lines before the "
                              f"marker's reply", recovered=False)
            raise TransportError(self.name, f"more than {MAX_STALE_LINES} unexpected lines "
                                            f"before the reply to {query!r}")

    def report_fault(self, kind: str, detail: str, *, recovered: bool = True) -> None:
        self.faults.report(kind, self.name, detail, recovered=recovered)

    def drain(self) -> list[str]:
        """Discard input that arrives within ``drain_s``; returns the discarded lines."""
        with self.lock:
            self._check_open()
            lines = self._discard(self.drain_s)
            for stale in lines:
                self.log.warning("discarded stale input %r", stale)
            return lines

    def reopen(self) -> None:
        """Close the link and open a new one to the same resource (after a lost link). What
        the instrument was told before is not assumed: the caller verifies it."""
        with self.lock:
            try:
                self._close()
            except Exception as exc:  # the old link is gone anyway
                self.log.warning("closing the lost link failed: %s", exc)
            self._reopen()
            self._closed = False
            self._desynced = False

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

    def _clear(self) -> None:  # noqa: B027 (optional: a link without device clear keeps this)
        """Device clear. The base class has none: resync then relies on the marker or drain."""

    def _reopen(self) -> None:
        raise TransportError(self.name, "this link cannot be reopened")

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
                 write_termination: str = "\n", resource_manager=None,
                 faults: fault.FaultLog | None = None):
        super().__init__(name, timeout_s=timeout_s, retries=retries, drain_s=drain_s, faults=faults)
        import pyvisa  # late: importing pyvisa costs time that tests of other parts need not pay

        self._visa_errors = pyvisa.errors
        self._timeout_code = pyvisa.constants.StatusCode.error_timeout
        self.resource_name = resource
        self._terminations = (read_termination, write_termination)
        try:
            self._rm = resource_manager if resource_manager is not None else pyvisa.ResourceManager(backend)
        except (pyvisa.errors.Error, OSError, ValueError) as exc:
            raise TransportError(name, f"cannot load the VISA library {backend!r}: {exc}") from exc
        self._open()

    def _open(self) -> None:
        import pyvisa

        read_termination, write_termination = self._terminations
        try:
            self._res = self._rm.open_resource(self.resource_name, read_termination=read_termination,
                                               write_termination=write_termination,
                                               timeout=self._ms(self.timeout_s))
        except (pyvisa.errors.Error, OSError, ValueError) as exc:
            raise TransportError(self.name, f"cannot open VISA resource {self.resource_name!r}: "
                                            f"{exc}") from exc
        if self.resource_name.upper().endswith("::SOCKET"):
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

        sock = self._socket()
        if sock is not None:
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
        if self._peer_closed(before_read=True):
            raise TransportError(self.name, f"{self.resource_name}: the instrument closed the "
                                            "connection")
        try:
            return self._res.read()
        except self._visa_errors.VisaIOError as exc:
            if exc.error_code == self._timeout_code:
                # pyvisa-py reads a socket the instrument closed as silence: tell them apart.
                if self._peer_closed():
                    raise TransportError(self.name, f"{self.resource_name}: the instrument closed "
                                                    "the connection") from None
                raise InstrumentTimeout(self.name, f"no reply within {timeout_s:g} s") from None
            raise TransportError(self.name, f"reading {self.resource_name} failed: {exc}") from exc
        except (self._visa_errors.Error, OSError) as exc:
            raise TransportError(self.name, f"reading {self.resource_name} failed: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise TransportError(self.name, f"the reply is not ASCII: {exc}") from exc

    def _clear(self) -> None:
        """VISA clear (viClear): a device clear on GPIB and USBTMC (the instrument aborts what
        it was doing and empties its output queue). A raw socket has no device clear: its
        input is discarded until 0.1 s pass without any (pyvisa-py's own clear() does that too,
        but spins forever once the instrument has closed the connection, so it is done here,
        and a closed connection is reported as lost)."""
        sock = self._socket()
        if sock is None:
            try:
                self._res.clear()
            except (self._visa_errors.Error, OSError) as exc:
                raise TransportError(self.name, f"device clear of {self.resource_name} failed: "
                                                f"{exc}") from exc
            return
        import select

        from pyvisa.constants import BufferOperation

        self._res.flush(BufferOperation.discard_read_buffer_no_io)
        deadline = time.monotonic() + RESYNC_WAIT_S
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([sock], [], [], 0.1)
                if not ready:
                    return
                if not sock.recv(4096):
                    raise TransportError(self.name, f"{self.resource_name}: the instrument closed "
                                                    "the connection")
        except OSError as exc:
            raise TransportError(self.name, f"clearing {self.resource_name} failed: {exc}") from exc

    def _peer_closed(self, before_read: bool = False) -> bool:
        """True if the raw socket's other end has closed it (readable, with nothing to read).
        Before a read, only when pyvisa-py holds no bytes already received (a last reply)."""
        import select
        import socket

        sock = self._socket()
        if sock is None:
            return False
        if before_read:
            session = self._res.visalib.sessions.get(self._res.session)
            if getattr(session, "_pending_buffer", b"x"):
                return False
        try:
            ready, _, _ = select.select([sock], [], [], 0)
            return bool(ready) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _socket(self):
        """pyvisa-py's socket of a TCPIP SOCKET resource, or None."""
        import socket

        if not self.resource_name.upper().endswith("::SOCKET"):
            return None
        session = getattr(self._res.visalib, "sessions", {}).get(self._res.session)
        sock = getattr(session, "interface", None)
        return sock if isinstance(sock, socket.socket) else None

    def _reopen(self) -> None:
        self._open()

    def _close(self) -> None:
        try:
            self._res.close()
        except Exception as exc:  # a failing close must not hide the reason we are closing
            self.log.warning("closing %s failed: %s", self.resource_name, exc)


class SerialTransport(Transport):
    """A serial port opened with pyserial: a device path ('/dev/ttyACM0', 'COM3') or a pyserial
    URL. Which URLs a bench may use is checked by the bench file's validation, not here."""

    def __init__(self, port: str, name: str, *, baudrate: int = 115200, timeout_s: float = 1.0,
                 retries: int = 1, drain_s: float = 0.1, termination: str = "\n",
                 faults: fault.FaultLog | None = None):
        super().__init__(name, timeout_s=timeout_s, retries=retries, drain_s=drain_s, faults=faults)
        import serial

        self._serial = serial
        self._serial_errors = (serial.SerialException, OSError)
        self.port = port
        self.baudrate = baudrate
        self._term = termination.encode("ascii")
        # Bytes of a line whose end had not arrived when a read timed out: kept, so the line is
        # completed (and then recognised as stale by the driver) instead of being split in two.
        self._partial = b""
        self._open()

    def _open(self) -> None:
        try:
            self._ser = self._serial.serial_for_url(self.port, baudrate=self.baudrate,
                                                    timeout=self.timeout_s,
                                                    write_timeout=self.timeout_s)
        except (self._serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(self.name, f"cannot open serial port {self.port!r}: {exc}") from exc
        self._partial = b""

    def _reopen(self) -> None:
        self._open()

    def _clear(self) -> None:
        """Flush the input: what the port buffered, and a line begun but not ended."""
        try:
            self._ser.reset_input_buffer()
        except self._serial_errors as exc:
            raise TransportError(self.name, f"flushing the input of {self.port} failed: {exc}") from exc
        self._partial = b""

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
