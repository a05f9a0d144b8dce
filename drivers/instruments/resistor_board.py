"""Host driver of our resistor board (protocol: drivers/firmware/PROTOCOL.md, version 2.x).

The protocol's requests are declared once, in the table below (verb, how the reply's data is
read, whether resending is safe), and every method goes through it.

Every request carries a request id and a CRC-8; every reply is checked for both. A reply with
an older id is a late answer to a request that timed out: it is discarded (a ``stale_reply``
fault) and the next line read. A reply whose checksum or shape is wrong (garbled or truncated on
the wire) is discarded too (a ``garbled`` fault), and a request that is safe to resend is sent
again with a fresh id, at most ``transport.retries`` times; nothing is ever taken from a
damaged reply. ``SET`` and ``CLR`` are never resent: a SET whose reply was lost or garbled is
judged by the read-back that follows it.

The board restarts at power-up, when its USB port is opened (an Arduino's DTR auto-reset), and
when its MCU watchdog catches hung firmware. It then holds the safe code everywhere, announces
itself with the one unsolicited line ``0 BOOT <cause>``, and refuses SET (error 9 BOOTED) until
the host has verified it and sent CLR. ``connect(boot_wait_s)`` waits for that announcement
before its first request (bytes sent while the bootloader runs are lost, or worse, read by it);
a restart met later raises BoardRebooted, and the bench verifies the board and restores what it
held before writing again.

Heartbeat: the board's watchdog sends every channel to the safe code when no valid request
arrives within its timeout. Every request feeds it, so a run that talks to the board often
needs nothing more. For idle periods (a paused run) there are two ways, the bench picks one:
``heartbeat()`` sent explicitly by the engine, or ``start_heartbeat()``, a daemon thread that
sends HB every ``period_s`` through the transport's lock (it never interleaves with a query)
and dies with the process, so a crashed host still lets the watchdog fire.

Limits: the allowed code range of each channel (``allowed``) is checked before any I/O, and
against the board's own range after ``connect()``. Codes are integers; nothing is clipped.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from drivers.instruments import faults as fault
from drivers.instruments import validators as v
from drivers.instruments.errors import (
    BoardRebooted,
    InstrumentError,
    InstrumentTimeout,
    LimitError,
    ProtocolError,
    VerifyError,
    WatchdogTripped,
)
from drivers.instruments.transport import Transport

PROTOCOL_MAJOR = 2
ERROR_NAMES = {1: "CHECKSUM", 2: "FRAME", 3: "UNKNOWN", 4: "ARGS", 5: "CHANNEL", 6: "RANGE",
               7: "TOOLONG", 8: "TRIPPED", 9: "BOOTED"}
RESET_CAUSES = {"POR": "power-on", "EXT": "reset pin (e.g. the USB port opened)",
                "BOR": "brown-out", "WDT": "MCU watchdog (hung firmware)", "OTHER": "unknown"}
STALE_LINES = 8  # late replies tolerated before one request's answer


def crc8(data: bytes) -> int:
    """CRC-8/SMBUS: polynomial 0x07, init 0, no reflection, no final XOR (b'123456789' -> 0xF4)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


@dataclass(frozen=True)
class BoardIdentity:
    maker: str
    model: str
    serial: str
    firmware: str
    protocol: str  # "major.minor"


@dataclass(frozen=True)
class BoardInfo:
    channels: int
    code_min: int
    code_max: int
    safe_code: int
    watchdog_s: float


@dataclass(frozen=True)
class BoardStatus:
    armed: bool     # the watchdog guards codes set since the last SAFE
    tripped: bool   # the watchdog fired since the last clear
    booted: bool    # the board restarted and no host has acknowledged it (SET refused)
    reset_cause: str  # why it last restarted: POR, EXT, BOR, WDT or OTHER
    shutdown: bool  # the potentiometers' hardware shutdown (SHDN): every wiper tied to B


# -- reading reply data ------------------------------------------------------------------------
def _keys(*names: str) -> Callable[[str], dict[str, str]]:
    """``K=v K=v`` -> {K: v}; every name must be there."""
    def parse(data: str) -> dict[str, str]:
        fields = dict(item.partition("=")[::2] for item in data.split(" "))
        missing = [name for name in names if name not in fields]
        if missing:
            raise ValueError(f"lacks {', '.join(missing)}")
        return {name: fields[name] for name in names}
    return parse


def _identity(data: str) -> BoardIdentity:
    fields = data.split(",")
    if len(fields) != 5:
        raise ValueError("does not have 5 fields")
    return BoardIdentity(*fields)


def _info(data: str) -> BoardInfo:
    f = {k: int(x) for k, x in _keys("CH", "MIN", "MAX", "SAFE", "WDT")(data).items()}
    return BoardInfo(f["CH"], f["MIN"], f["MAX"], f["SAFE"], f["WDT"] / 1000.0)


def _status(data: str) -> BoardStatus:
    f = _keys("ARMED", "TRIPPED", "BOOTED", "RESET", "SHDN")(data)
    flags = {k: f[k] for k in ("ARMED", "TRIPPED", "BOOTED", "SHDN")}
    if any(x not in ("0", "1") for x in flags.values()) or f["RESET"] not in RESET_CAUSES:
        raise ValueError("has a flag that is not 0 or 1, or an unknown reset cause")
    return BoardStatus(f["ARMED"] == "1", f["TRIPPED"] == "1", f["BOOTED"] == "1", f["RESET"],
                       f["SHDN"] == "1")


def _codes(data: str) -> dict[int, int]:
    held = {}
    for item in data.split(","):
        channel, _, code = item.partition("=")
        held[int(channel)] = int(code)
    return held


def _shutdown(data: str) -> bool:
    flag = _keys("SHDN")(data)["SHDN"]
    if flag not in ("0", "1"):
        raise ValueError("SHDN is not 0 or 1")
    return flag == "1"


def _nothing(data: str) -> None:
    if data:
        raise ValueError("carries data where none is expected")


@dataclass(frozen=True)
class Request:
    """One verb of the protocol: how its reply's data is read and whether resending it after a
    lost or damaged reply is harmless."""

    verb: str
    parse: Callable[[str], Any]
    resend: bool


IDN = Request("*IDN?", _identity, resend=True)
INFO = Request("INFO?", _info, resend=True)
SET = Request("SET", _nothing, resend=False)      # a SET's outcome is judged by its read-back
GET = Request("GET?", _codes, resend=True)
HB = Request("HB", _status, resend=True)         # feeds the watchdog, reports the status
SAFE = Request("SAFE", _shutdown, resend=True)     # resending can only make things safer
STAT = Request("STAT?", _status, resend=True)
CLR = Request("CLR", _nothing, resend=False)


class ResistorBoard:
    """Digital-potentiometer board. Call ``connect()`` first (identity, version, info)."""

    MODEL = "resistor board"

    def __init__(self, transport: Transport, *, name: str | None = None,
                 allowed: Mapping[int, tuple[int, int]] | None = None):
        """``allowed`` maps channel -> (lowest, highest) code the bench permits; None permits
        every channel's full range once connect() has read it."""
        self.transport = transport
        self.name = name or transport.name
        self.allowed: dict[int, tuple[int, int]] | None = None
        if allowed is not None:
            self.allowed = {}
            for channel, bounds in allowed.items():
                channel = v.integer(self.label, "channel", channel)
                lo, hi = (v.integer(self.label, f"channel {channel} code bound", b) for b in bounds)
                if not 0 <= lo <= hi:
                    raise LimitError(self.label, f"channel {channel}: allowed codes {lo}..{hi} "
                                                 "are not an ascending range of codes >= 0")
                self.allowed[channel] = (lo, hi)
        self.identity: BoardIdentity | None = None
        self.info: BoardInfo | None = None
        # The last boot announcement read (connect() waits for one), and how many were read.
        self.boot_cause: str | None = None
        self.restarts = 0
        # A status the heartbeat found tripped or restarted (the bench recovers the board), and
        # when the board last answered (time.monotonic()): a board silent for longer than its
        # watchdog may have tripped.
        self.attention: BoardStatus | None = None
        self.last_contact = 0.0
        self._ids = itertools.cycle(range(1, 65536))
        self._heartbeat: threading.Thread | None = None
        self._heartbeat_stop = threading.Event()
        self.log = logging.getLogger(f"hwlearn.instruments.{self.name}")

    @property
    def label(self) -> str:
        return f"{self.name} ({self.MODEL})"

    # -- connection -------------------------------------------------------------------------
    def connect(self, boot_wait_s: float = 0.0) -> BoardIdentity:
        """Wait up to ``boot_wait_s`` for the boot announcement of a board that restarts when
        its port opens (0: it does not), then read identity and info; refuse a protocol major
        version other than ours, and ``allowed`` ranges the board cannot hold."""
        if boot_wait_s > 0:
            self.wait_for_boot(boot_wait_s)
        try:
            self.identity = self.identify()
        except BoardRebooted:
            # The announcement read was an older one: this restart ate the request. The board
            # has announced itself now, so it listens.
            self.identity = self.identify()
        self.info = self._call(INFO)
        if self.allowed is not None:
            for channel, (lo, hi) in self.allowed.items():
                if channel >= self.info.channels or hi > self.info.code_max:
                    raise LimitError(self.label, f"allowed codes {lo}..{hi} on channel {channel}, "
                                                 f"but the board has channels 0-"
                                                 f"{self.info.channels - 1} and codes "
                                                 f"{self.info.code_min}..{self.info.code_max}")
        return self.identity

    def wait_for_boot(self, wait_s: float) -> str | None:
        """Read until the board's boot announcement or ``wait_s`` seconds; returns the reset
        cause, or None if no announcement came (a board that did not restart). Anything else
        read meanwhile (a bootloader's noise) is discarded."""
        deadline = time.monotonic() + wait_s
        with self.transport.lock:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    line = self.transport.read_line(left)
                except InstrumentTimeout:
                    return None
                cause = self._boot_cause(line)
                if cause is not None:
                    self.boot_cause, self.restarts = cause, self.restarts + 1
                    return cause
                self.log.info("discarded %r while waiting for the board to boot", line)
        return None

    def identify(self) -> BoardIdentity:
        identity = self._call(IDN)
        major = identity.protocol.split(".")[0]
        if major != str(PROTOCOL_MAJOR):
            raise ProtocolError(self.label, f"the board speaks protocol {identity.protocol}; this "
                                            f"host speaks {PROTOCOL_MAJOR}.x: update the firmware "
                                            "or the host")
        return identity

    def read_info(self) -> BoardInfo:
        return self._call(INFO)

    def status(self) -> BoardStatus:
        return self._call(STAT)

    # -- codes --------------------------------------------------------------------------------
    def write_codes(self, codes: Mapping[int, int]) -> None:
        """Set the channels' codes in one message, then read them back; a channel that does not
        hold what was written raises VerifyError (``.channels``: channel -> (written, read)).
        Limits are checked before any I/O."""
        checked = self._check_codes(codes)
        body = ",".join(f"{ch}={code}" for ch, code in sorted(checked.items()))
        with self.transport.lock:
            # A damaged reply (reported where it was found) leaves open whether the codes were
            # set: the read-back tells.
            with contextlib.suppress(ProtocolError):
                self._call(SET, body)
            held = self.read_codes(sorted(checked))
        wrong = {ch: (code, held[ch]) for ch, code in checked.items() if held[ch] != code}
        if wrong:
            detail = ", ".join(f"channel {ch} wrote {w} read {r}" for ch, (w, r) in wrong.items())
            raise VerifyError(self.label, f"read-back differs from what was written: {detail}",
                              channels=wrong)

    def read_codes(self, channels: Iterable[int] | None = None) -> dict[int, int]:
        """The codes the potentiometers hold (read back over SPI by the firmware)."""
        info = self._connected()
        if channels is None:
            wanted = list(range(info.channels))
            held = self._call(GET)
        else:
            wanted = [v.integer(self.label, "channel", ch) for ch in channels]
            bad = [ch for ch in wanted if not 0 <= ch < info.channels]
            if bad or not wanted or len(set(wanted)) != len(wanted):
                raise LimitError(self.label, f"channels {wanted} must be distinct and within "
                                             f"0-{info.channels - 1}; nothing was sent")
            held = self._call(GET, ",".join(str(ch) for ch in wanted))
        if sorted(held) != sorted(wanted):
            raise ProtocolError(self.label, f"GET? answered channels {sorted(held)}, asked for "
                                            f"{sorted(wanted)}")
        return held

    # -- watchdog and restarts ----------------------------------------------------------------
    def heartbeat(self) -> BoardStatus:
        """Feed the board's watchdog and read its status: one attempt, never resent (a lost
        beat is the watchdog's business, and a beat that waits on retries would hold the link
        from a safe state). A status that shows a trip or a restart is kept in ``attention``."""
        with self.transport.lock:  # a reader of ``attention`` holding the lock sees this beat's
            data = self._request("HB", retry=False)
            try:
                status = HB.parse(data)
            except ValueError as exc:
                raise ProtocolError(self.label, f"reply data {data!r} to 'HB' {exc}") from None
            if status.tripped or status.booted:
                self.attention = status
        return status

    def start_heartbeat(self, period_s: float | None = None) -> None:
        """Send HB every ``period_s`` (default: a quarter of the watchdog timeout) from a daemon
        thread until stop_heartbeat() or close()."""
        info = self._connected()
        period = info.watchdog_s / 4 if period_s is None else v.real(self.label, "heartbeat period",
                                                                     period_s, "s")
        if not 0 < period < info.watchdog_s:
            raise LimitError(self.label, f"heartbeat period {period:g} s must be > 0 and shorter "
                                         f"than the watchdog timeout {info.watchdog_s:g} s")
        self.stop_heartbeat()
        self._heartbeat_stop.clear()

        def beat() -> None:
            while not self._heartbeat_stop.wait(period):
                try:
                    self.heartbeat()
                except Exception as exc:  # keep beating: a lost beat is the watchdog's business
                    self.log.error("heartbeat failed: %s", exc)

        self._heartbeat = threading.Thread(target=beat, name=f"heartbeat-{self.name}", daemon=True)
        self._heartbeat.start()

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat_stop.set()
            if self._heartbeat is not threading.current_thread():
                self._heartbeat.join(timeout=10.0)
            self._heartbeat = None

    def clear_watchdog(self) -> None:
        """Acknowledge a watchdog trip (and a restart) so that the board accepts codes again."""
        self._call(CLR)

    def acknowledge_boot(self) -> None:
        """After a restart: verify the board holds the safe code on every channel and is out of
        hardware shutdown, then acknowledge (CLR) so that it accepts codes again. VerifyError if
        it does not hold what a restart promises."""
        self.check_safe()
        self._call(CLR)

    # -- safe state ---------------------------------------------------------------------------
    def safe_state(self) -> None:
        """Every channel to the safe code (SAFE), verified by read-back; VerifyError if a code
        differs or the potentiometers are in hardware shutdown (SAFE's reply says so). Works
        before connect() too (it then reads INFO? first). Idempotent."""
        shutdown = self._call(SAFE)
        if self.info is None:
            self.info = self._call(INFO)
        held = self.read_codes()
        wrong = {ch: code for ch, code in held.items() if code != self.info.safe_code}
        if wrong:
            raise VerifyError(self.label, f"after SAFE, channels {wrong} do not hold the safe code "
                                          f"{self.info.safe_code}",
                              channels={ch: (self.info.safe_code, c) for ch, c in wrong.items()})
        if shutdown:
            raise VerifyError(self.label, self._shutdown_text())

    def check_safe(self) -> None:
        """VerifyError unless every channel holds the safe code and SHDN is not asserted, read
        from the board now (no code is written)."""
        problems = self.unsafe()
        if problems:
            raise VerifyError(self.label, "; ".join(problems))

    def unsafe(self) -> list[str]:
        """What is not safe now, read from the board: channels away from the safe code, and the
        potentiometers' hardware shutdown."""
        info = self._connected()
        problems = []
        held = self.read_codes()
        wrong = {ch: c for ch, c in held.items() if c != info.safe_code}
        if wrong:
            problems.append(f"{self.name}: channels {wrong} are not at the safe code "
                            f"{info.safe_code}")
        if self.status().shutdown:
            problems.append(f"{self.name}: {self._shutdown_text()}")
        return problems

    def close(self) -> None:
        self.stop_heartbeat()

    # -- the protocol ---------------------------------------------------------------------------
    def _call(self, request: Request, args: str | None = None):
        """Send ``request`` (with ``args``) under a fresh id; return its reply data, parsed. A
        damaged reply to a request that is safe to resend is resent with a new id, at most
        ``transport.retries`` times."""
        attempts = 1 + (self.transport.retries if request.resend else 0)
        text = request.verb if args is None else f"{request.verb} {args}"
        for attempt in range(1, attempts + 1):
            try:
                data = self._request(text, retry=request.resend)
                try:
                    return request.parse(data)
                except ValueError as exc:
                    damage = f"reply data {data!r} to {text!r} {exc}"
                    self.transport.report_fault(fault.GARBLED, damage)
                    raise ProtocolError(self.label, damage) from None
            except ProtocolError:  # reported where it was found
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _request(self, request: str, *, retry: bool = True) -> str:
        """Send ``request`` with a fresh id and checksum; return the reply's data after 'OK'."""
        with self.transport.lock:
            request_id = next(self._ids)
            body = f"{request_id} {request}"
            line = f"{body}*{crc8(body.encode('ascii')):02X}"
            reply = self.transport.query(line, retry=retry)
            for _ in range(STALE_LINES):
                cause = self._boot_cause(reply)
                if cause is not None:
                    # The board restarted. Its reply still comes if the request arrived after
                    # the restart; if it arrived during it, the bootloader ate it.
                    self.boot_cause, self.restarts = cause, self.restarts + 1
                    try:
                        reply = self.transport.read_line()
                    except InstrumentTimeout:
                        raise BoardRebooted(self.label, f"the board restarted ({cause}: "
                                            f"{RESET_CAUSES[cause]}) and lost {request!r}; every "
                                            "channel is at the safe code and SET is refused until "
                                            "the board is verified", cause=cause) from None
                    continue
                reply_id, data = self._parse_reply(reply, request)
                if reply_id in (request_id, 0):
                    break
                self.transport.report_fault(fault.STALE, f"discarded late reply {reply!r}")
                reply = self.transport.read_line()
            else:
                raise ProtocolError(self.label, f"no reply with id {request_id} to {request!r} "
                                                f"among {STALE_LINES} lines")
        self.last_contact = time.monotonic()
        if data.startswith("ERR "):
            self._raise_error(data, request)
        if data == "OK":
            return ""
        if not data.startswith("OK "):
            raise ProtocolError(self.label, f"reply {reply!r} to {request!r} is neither OK nor ERR")
        return data[3:]

    def _boot_cause(self, line: str) -> str | None:
        """The reset cause if ``line`` is an intact boot announcement, else None."""
        body, star, digits = line.rpartition("*")
        if not star or not body.startswith("0 BOOT "):
            return None
        try:
            if crc8(body.encode("latin-1")) != int(digits, 16):
                return None
        except ValueError:
            return None
        cause = body[len("0 BOOT "):]
        return cause if cause in RESET_CAUSES else "OTHER"

    def _parse_reply(self, reply: str, request: str) -> tuple[int, str]:
        """(request id, data) of an intact reply. A damaged one (no or a wrong checksum, no id) is
        reported as a garbled-reply fault, once, here where it is found, and raised."""
        body, star, digits = reply.rpartition("*")
        damage = None
        if not star or len(digits) != 2:
            damage = f"reply {reply!r} to {request!r} has no checksum"
        elif not all(c in "0123456789ABCDEFabcdef" for c in digits):
            damage = f"reply {reply!r} has a checksum that is not hex"
        elif crc8(body.encode("latin-1")) != int(digits, 16):
            damage = (f"reply {reply!r} to {request!r}: checksum {digits} does not match the body's "
                      f"{crc8(body.encode('latin-1')):02X}")
        elif not body.partition(" ")[0].isdigit():
            damage = f"reply {reply!r} has no request id"
        if damage is not None:
            self.transport.report_fault(fault.GARBLED, damage)
            raise ProtocolError(self.label, damage)
        reply_id, _, data = body.partition(" ")
        return int(reply_id), data

    def _raise_error(self, data: str, request: str) -> None:
        parts = data.split(" ")
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        name = ERROR_NAMES.get(code, "?")
        if code == 8:
            raise WatchdogTripped(self.label, f"the board refused {request!r}: its watchdog "
                                              "tripped and every channel went to the safe code; "
                                              "call clear_watchdog() to acknowledge")
        if code == 9:
            raise BoardRebooted(self.label, f"the board refused {request!r}: it restarted and holds "
                                            "the safe code everywhere; it accepts codes once "
                                            "verified (acknowledge_boot())", cause=None)
        raise InstrumentError(self.label, f"the board refused {request!r} with error {code} "
                                          f"{name} ({data!r})")

    def _shutdown_text(self) -> str:
        return ("SHDN is asserted: the potentiometers are in hardware shutdown, every wiper tied "
                "to terminal B (about 0 ohm whatever the code), not the safe code's resistance")

    def _connected(self) -> BoardInfo:
        if self.info is None:
            raise InstrumentError(self.label, "not connected; call connect() first")
        return self.info

    def _check_codes(self, codes: Mapping[int, int]) -> dict[int, int]:
        info = self._connected()
        if not codes:
            raise LimitError(self.label, "no codes given; nothing was sent")
        checked = {}
        for channel, code in codes.items():
            channel = v.integer(self.label, "channel", channel)
            code = v.integer(self.label, f"channel {channel} code", code)
            if self.allowed is not None:
                if channel not in self.allowed:
                    raise LimitError(self.label, f"channel {channel} is not one the bench allows "
                                                 f"({sorted(self.allowed)}); nothing was sent")
                lo, hi = self.allowed[channel]
            else:
                if not 0 <= channel < info.channels:
                    raise LimitError(self.label, f"channel {channel} does not exist: the board has "
                                                 f"0-{info.channels - 1}; nothing was sent")
                lo, hi = info.code_min, info.code_max
            if not lo <= code <= hi:
                raise LimitError(self.label, f"channel {channel} code {code} is outside the "
                                             f"allowed {lo}..{hi}; nothing was sent")
            checked[channel] = code
        return checked
