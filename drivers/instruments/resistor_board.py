"""Host driver of our resistor board (protocol: drivers/firmware/PROTOCOL.md, version 1.x).

Every request carries a request id and a CRC-8; every reply is checked for both. A reply with
an older id is a late answer to a request that timed out: it is discarded and the next line
read. Queries without side effects (``*IDN?``, ``INFO?``, ``GET?``, ``STAT?``, ``HB``) are
retried after a timeout; ``SET`` and ``CLR`` never are (a timed-out SET raises, and the caller
goes to the safe state); ``SAFE`` is retried because resending it can only make things safer.

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

import itertools
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from drivers.instruments import validators as v
from drivers.instruments.errors import (
    InstrumentError,
    LimitError,
    ProtocolError,
    VerifyError,
    WatchdogTripped,
)
from drivers.instruments.transport import Transport

PROTOCOL_MAJOR = 1
ERROR_NAMES = {1: "CHECKSUM", 2: "FRAME", 3: "UNKNOWN", 4: "ARGS", 5: "CHANNEL", 6: "RANGE",
               7: "TOOLONG", 8: "TRIPPED"}
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
    armed: bool    # the watchdog guards codes set since the last SAFE
    tripped: bool  # the watchdog fired since the last clear_watchdog()


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
        self._ids = itertools.cycle(range(1, 65536))
        self._heartbeat: threading.Thread | None = None
        self._heartbeat_stop = threading.Event()
        self.log = logging.getLogger(f"hwlearn.instruments.{self.name}")

    @property
    def label(self) -> str:
        return f"{self.name} ({self.MODEL})"

    # -- connection -------------------------------------------------------------------------
    def connect(self) -> BoardIdentity:
        """Read identity and info; refuse a protocol major version other than ours, and
        ``allowed`` ranges the board cannot hold. Returns the identity."""
        self.identity = self.identify()
        self.info = self.read_info()
        if self.allowed is not None:
            for channel, (lo, hi) in self.allowed.items():
                if channel >= self.info.channels or hi > self.info.code_max:
                    raise LimitError(self.label, f"allowed codes {lo}..{hi} on channel {channel}, "
                                                 f"but the board has channels 0-"
                                                 f"{self.info.channels - 1} and codes "
                                                 f"{self.info.code_min}..{self.info.code_max}")
        return self.identity

    def identify(self) -> BoardIdentity:
        fields = self._request("*IDN?").split(",")
        if len(fields) != 5:
            raise ProtocolError(self.label, f"*IDN? data {','.join(fields)!r} does not have 5 "
                                            "fields")
        identity = BoardIdentity(*fields)
        major = identity.protocol.split(".")[0]
        if major != str(PROTOCOL_MAJOR):
            raise ProtocolError(self.label, f"the board speaks protocol {identity.protocol}; this "
                                            f"host speaks {PROTOCOL_MAJOR}.x: update the firmware "
                                            "or the host")
        return identity

    def read_info(self) -> BoardInfo:
        fields = self._keys(self._request("INFO?"), ("CH", "MIN", "MAX", "SAFE", "WDT"))
        return BoardInfo(channels=fields["CH"], code_min=fields["MIN"], code_max=fields["MAX"],
                         safe_code=fields["SAFE"], watchdog_s=fields["WDT"] / 1000.0)

    def status(self) -> BoardStatus:
        fields = self._keys(self._request("STAT?"), ("ARMED", "TRIPPED"))
        return BoardStatus(armed=bool(fields["ARMED"]), tripped=bool(fields["TRIPPED"]))

    # -- codes --------------------------------------------------------------------------------
    def write_codes(self, codes: Mapping[int, int]) -> None:
        """Set the channels' codes in one message, then read them back; a channel that does not
        hold what was written raises VerifyError. Limits are checked before any I/O."""
        checked = self._check_codes(codes)
        body = ",".join(f"{ch}={code}" for ch, code in sorted(checked.items()))
        with self.transport.lock:
            self._request(f"SET {body}", retry=False)
            held = self.read_codes(sorted(checked))
        wrong = {ch: (code, held[ch]) for ch, code in checked.items() if held[ch] != code}
        if wrong:
            detail = ", ".join(f"channel {ch} wrote {w} read {r}" for ch, (w, r) in wrong.items())
            raise VerifyError(self.label, f"read-back differs from what was written: {detail}")

    def read_codes(self, channels: Iterable[int] | None = None) -> dict[int, int]:
        """The codes the potentiometers hold (read back over SPI by the firmware)."""
        info = self._connected()
        if channels is None:
            wanted = list(range(info.channels))
            reply = self._request("GET?")
        else:
            wanted = [v.integer(self.label, "channel", ch) for ch in channels]
            bad = [ch for ch in wanted if not 0 <= ch < info.channels]
            if bad or not wanted or len(set(wanted)) != len(wanted):
                raise LimitError(self.label, f"channels {wanted} must be distinct and within "
                                             f"0-{info.channels - 1}; nothing was sent")
            reply = self._request("GET? " + ",".join(str(ch) for ch in wanted))
        held = {}
        for item in reply.split(","):
            channel, _, code = item.partition("=")
            try:
                held[int(channel)] = int(code)
            except ValueError:
                raise ProtocolError(self.label, f"GET? data {reply!r} is not channel=code "
                                                "pairs") from None
        if sorted(held) != sorted(wanted):
            raise ProtocolError(self.label, f"GET? answered channels {sorted(held)}, asked for "
                                            f"{sorted(wanted)}")
        return held

    # -- watchdog -------------------------------------------------------------------------------
    def heartbeat(self) -> None:
        """Feed the board's watchdog."""
        self._request("HB")

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
            self._heartbeat.join(timeout=10.0)
            self._heartbeat = None

    def clear_watchdog(self) -> None:
        """Acknowledge a watchdog trip so that the board accepts codes again."""
        self._request("CLR", retry=False)

    # -- safe state ---------------------------------------------------------------------------
    def safe_state(self) -> None:
        """Every channel to the safe code (SAFE), verified by read-back. Idempotent; works
        before connect() too (it then reads INFO? first)."""
        self._request("SAFE", retry=True)
        if self.info is None:
            self.info = self.read_info()
        held = self.read_codes()
        wrong = {ch: code for ch, code in held.items() if code != self.info.safe_code}
        if wrong:
            raise VerifyError(self.label, f"after SAFE, channels {wrong} do not hold the safe code "
                                          f"{self.info.safe_code}")

    def close(self) -> None:
        self.stop_heartbeat()

    # -- the protocol ---------------------------------------------------------------------------
    def _request(self, request: str, *, retry: bool = True) -> str:
        """Send ``request`` with a fresh id and checksum; return the reply's data after 'OK'."""
        with self.transport.lock:
            request_id = next(self._ids)
            body = f"{request_id} {request}"
            line = f"{body}*{crc8(body.encode('ascii')):02X}"
            reply = self.transport.query(line, retry=retry)
            for _ in range(STALE_LINES):
                reply_id, data = self._parse_reply(reply, request)
                if reply_id in (request_id, 0):
                    break
                self.transport.log.warning("discarded late reply %r", reply)
                reply = self.transport.read_line()
            else:
                raise ProtocolError(self.label, f"no reply with id {request_id} to {request!r} "
                                                f"among {STALE_LINES} lines")
        if data.startswith("ERR "):
            self._raise_error(data, request)
        if data == "OK":
            return ""
        if not data.startswith("OK "):
            raise ProtocolError(self.label, f"reply {reply!r} to {request!r} is neither OK nor ERR")
        return data[3:]

    def _parse_reply(self, reply: str, request: str) -> tuple[int, str]:
        body, star, digits = reply.rpartition("*")
        if not star or len(digits) != 2:
            raise ProtocolError(self.label, f"reply {reply!r} to {request!r} has no checksum")
        try:
            expected = int(digits, 16)
        except ValueError:
            raise ProtocolError(self.label, f"reply {reply!r} has a checksum that is not "
                                            "hex") from None
        actual = crc8(body.encode("latin-1"))
        if actual != expected:
            raise ProtocolError(self.label, f"reply {reply!r} to {request!r}: checksum {digits} "
                                            f"does not match the body's {actual:02X}")
        reply_id, _, data = body.partition(" ")
        if not reply_id.isdigit():
            raise ProtocolError(self.label, f"reply {reply!r} has no request id")
        return int(reply_id), data

    def _raise_error(self, data: str, request: str) -> None:
        parts = data.split(" ")
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        name = ERROR_NAMES.get(code, "?")
        if code == 8:
            raise WatchdogTripped(self.label, f"the board refused {request!r}: its watchdog "
                                              "tripped and every channel went to the safe code; "
                                              "call clear_watchdog() to acknowledge")
        raise InstrumentError(self.label, f"the board refused {request!r} with error {code} "
                                          f"{name} ({data!r})")

    def _keys(self, data: str, keys: tuple[str, ...]) -> dict[str, int]:
        """``K=v K=v`` -> {K: int(v)}; every key in ``keys`` must be there."""
        fields = dict(item.partition("=")[::2] for item in data.split(" "))
        try:
            return {key: int(fields[key]) for key in keys}
        except (KeyError, ValueError):
            raise ProtocolError(self.label, f"reply data {data!r} lacks one of {keys}") from None

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
