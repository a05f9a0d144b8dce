"""Emulated resistor board: the firmware's protocol (drivers/firmware/PROTOCOL.md) in Python.

``BoardFirmware`` follows drivers/firmware/resistor_board/board_core.cpp step by step (the same
checks in the same order, the same replies byte for byte); tests/test_board_firmware.py runs one
set of transcripts against both. The potentiometers are the InstrumentBackend's
``write_codes``/``read_codes``; the clock is injectable so tests can starve the watchdog without
waiting.

Power-up (``reboot``) is the firmware's: every channel to the safe code, BOOTED set (SET refused
until CLR), and the one unsolicited line ``0 BOOT <cause>``. ``auto_reset`` emulates an Arduino
whose USB port restarts it when opened (DTR): a new TCP connection (pyserial's socket://)
reboots it with cause EXT, and for ``boot_s`` seconds the bootloader swallows whatever arrives
(``dropped``) before the announcement is sent. ``shutdown`` stands for the potentiometers'
hardware shutdown (SHDN low): their wipers are then tied to terminal B, which the board reports.

``ResistorBoardEmulator`` serves it on a pseudo-terminal (``PtyLineServer``): the driver opens
``.path`` with pyserial exactly as it opens /dev/ttyACM0. A pty rather than pyserial's loop://
URL because only a real tty exercises pyserial's termios setup, timeouts and partial reads. A
pty has no DTR line, so a board served on one never restarts when its port is opened.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from simulator.emulators.server import LineDevice, PtyLineServer
from simulator.instrument_backend import InstrumentBackend

PROTOCOL = (2, 0)
MAX_FRAME = 120
MAX_CHANNELS = 16
ERRORS = {1: "CHECKSUM", 2: "FRAME", 3: "UNKNOWN", 4: "ARGS", 5: "CHANNEL", 6: "RANGE",
          7: "TOOLONG", 8: "TRIPPED", 9: "BOOTED"}
RESET_CAUSES = ("POR", "EXT", "BOR", "WDT", "OTHER")
BARE_VERBS = ("*IDN?", "INFO?", "HB", "SAFE", "STAT?", "CLR")


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, init 0, no reflection, no final XOR: b'123456789' -> 0xF4."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def frame(body: str) -> str:
    """``body`` with its checksum appended: ``body*HH``."""
    return f"{body}*{crc8(body.encode('latin-1')):02X}"


class _Refused(Exception):
    """A request refused with error ``code``; ``id`` is the id to echo (0: untrusted)."""

    def __init__(self, code: int, request_id: int):
        super().__init__(code)
        self.code, self.id = code, request_id


def _uint(text: str, pos: int, max_digits: int) -> tuple[int, int] | None:
    """1..max_digits ASCII digits at text[pos:]: (value, next position), or None."""
    end = pos
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    if end == pos or end - pos > max_digits:
        return None
    return int(text[pos:end]), end


class BoardFirmware(LineDevice):
    """The protocol logic of the board. ``now`` is the clock in seconds (monotonic)."""

    def __init__(self, backend: InstrumentBackend, *, channels: int = 8, code_max: int = 256,
                 safe_code: int = 256, watchdog_s: float = 2.0, serial: str = "RB0001",
                 maker: str = "HWLEARN", model: str = "RB8-MCP4251", firmware: str = "2.0.0",
                 clock: Callable[[], float] = time.monotonic, auto_reset: bool = False,
                 boot_s: float = 0.0):
        super().__init__(clock=clock)
        if not 1 <= channels <= MAX_CHANNELS or not 0 <= safe_code <= code_max:
            raise ValueError(f"channels 1..{MAX_CHANNELS} and safe code 0..code_max, got "
                             f"{channels}, {safe_code}")
        self.backend = backend
        self.channels, self.code_max, self.safe_code = channels, code_max, safe_code
        self.watchdog_ms = int(round(watchdog_s * 1000))
        self.identity = f"{maker},{model},{serial},{firmware},{PROTOCOL[0]}.{PROTOCOL[1]}"
        self.auto_reset, self.boot_s = auto_reset, boot_s
        self.shutdown = False
        self.dropped: list[str] = []   # lines the bootloader swallowed
        self._booting_until: float | None = None
        self.boots = 0  # restarts since the emulator was made, the first power-up included
        self.reboot("POR")

    def power_cycle(self) -> None:
        """Off and on again (a reboot fault): a power-on restart, announced as protocol 2.0 says."""
        self.reboot("POR")

    def reboot(self, cause: str = "OTHER") -> None:
        """The microcontroller restarts: power-up state, announced after ``boot_s``."""
        if cause not in RESET_CAUSES:
            raise ValueError(f"reset cause {cause!r} is not one of {RESET_CAUSES}")
        with self.lock:
            self.take_unsolicited()  # what the UART had not sent yet dies with the restart
            self.armed = self.tripped = False
            self.booted, self.reset_cause = True, cause
            self.boots += 1
            self._last_valid_ms = self._now_ms()
            self._go_safe()
            if self.boot_s > 0:
                self._booting_until = self.clock() + self.boot_s
            else:
                self._booting_until = None
                self.send_unsolicited(frame(f"0 BOOT {cause}"))

    def connected(self) -> None:
        if self.auto_reset:
            self.reboot("EXT")

    def _now_ms(self) -> int:
        return round(self.clock() * 1000) & 0xFFFFFFFF  # millis() is a 32-bit counter

    def _go_safe(self) -> None:
        self.backend.write_codes({ch: self.safe_code for ch in range(self.channels)})

    def codes(self) -> dict[int, int]:
        """What the potentiometers hold now."""
        return self.backend.read_codes(list(range(self.channels)))

    def is_safe(self) -> bool:
        """Every code at the safe one and the potentiometers out of shutdown."""
        return not self.shutdown and all(code == self.safe_code for code in self.codes().values())

    # -- the firmware loop's two entry points -------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        now_ms = self._now_ms() if now is None else round(now * 1000) & 0xFFFFFFFF
        with self.lock:
            if self._booting_until is not None and self.clock() >= self._booting_until:
                self._booting_until = None
                self._last_valid_ms = self._now_ms()
                self.send_unsolicited(frame(f"0 BOOT {self.reset_cause}"))
            if self.armed and ((now_ms - self._last_valid_ms) & 0xFFFFFFFF) > self.watchdog_ms:
                self._go_safe()
                self.armed, self.tripped = False, True

    def handle(self, line: str) -> str | None:
        self.tick()  # a request that arrives after the timeout does not undo the trip
        if self._booting_until is not None:
            self.dropped.append(line)  # the bootloader runs: the sketch never sees this line
            return None
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            return None
        try:
            return self._handle(line)
        except _Refused as refused:
            return frame(f"{refused.id} ERR {refused.code} {ERRORS[refused.code]}")

    def _handle(self, line: str) -> str:
        if len(line) > MAX_FRAME:
            raise _Refused(7, 0)
        star = line.rfind("*")
        if star < 0 or len(line) - star != 3:
            raise _Refused(2, 0)
        digits = line[star + 1:]
        if any(c not in "0123456789ABCDEFabcdef" for c in digits):
            raise _Refused(2, 0)
        body = line[:star]
        if crc8(body.encode("latin-1")) != int(digits, 16):
            raise _Refused(1, 0)

        parsed = _uint(body, 0, 5)
        if parsed is None:
            raise _Refused(2, 0)
        request_id, pos = parsed
        if not 1 <= request_id <= 65535 or pos >= len(body) or body[pos] != " " \
                or pos + 1 >= len(body):
            raise _Refused(2, 0)
        self._last_valid_ms = self._now_ms()  # a well-formed request: the host is alive

        rest = body[pos + 1:]
        verb, space, args = rest.partition(" ")
        has_args = bool(space)
        if verb not in BARE_VERBS + ("SET", "GET?"):
            raise _Refused(3, request_id)
        if verb in BARE_VERBS:
            if has_args:
                raise _Refused(4, request_id)
            return frame(f"{request_id} OK{self._bare(verb)}")

        pairs = self._parse_list(args, has_args, verb == "SET", request_id)
        if any(ch >= self.channels for ch, _ in pairs):
            raise _Refused(5, request_id)
        if verb == "SET":
            if any(code > self.code_max for _, code in pairs):
                raise _Refused(6, request_id)
            if self.tripped:
                raise _Refused(8, request_id)
            if self.booted:
                raise _Refused(9, request_id)
            self.backend.write_codes({ch: code for ch, code in pairs})
            self.armed = True
            return frame(f"{request_id} OK")
        held = self.backend.read_codes([ch for ch, _ in pairs])
        listing = ",".join(f"{ch}={held[ch]}" for ch, _ in pairs)
        return frame(f"{request_id} OK {listing}")

    def _bare(self, verb: str) -> str:
        if verb == "*IDN?":
            return f" {self.identity}"
        if verb == "INFO?":
            return (f" CH={self.channels} MIN=0 MAX={self.code_max} SAFE={self.safe_code} "
                    f"WDT={self.watchdog_ms}")
        if verb == "SAFE":
            self._go_safe()
            self.armed = False
            return f" SHDN={int(self.shutdown)}"
        if verb in ("STAT?", "HB"):  # HB: fed above; it reports the status too
            return (f" ARMED={int(self.armed)} TRIPPED={int(self.tripped)} BOOTED={int(self.booted)} "
                    f"RESET={self.reset_cause} SHDN={int(self.shutdown)}")
        if verb == "CLR":
            self.tripped = self.booted = False
        return ""

    def _parse_list(self, args: str, has_args: bool, is_set: bool,
                    request_id: int) -> list[tuple[int, int | None]]:
        """SET's ``c=v,...`` or GET?'s ``c,...`` (no arguments: every channel)."""
        if not is_set and not has_args:
            return [(ch, None) for ch in range(self.channels)]
        if not args:
            raise _Refused(4, request_id)
        pairs, pos = [], 0
        while True:
            if len(pairs) == MAX_CHANNELS:
                raise _Refused(4, request_id)
            parsed = _uint(args, pos, 3)
            if parsed is None:
                raise _Refused(4, request_id)
            channel, pos = parsed
            code = None
            if is_set:
                if pos >= len(args) or args[pos] != "=":
                    raise _Refused(4, request_id)
                parsed = _uint(args, pos + 1, 4)
                if parsed is None:
                    raise _Refused(4, request_id)
                code, pos = parsed
            if any(channel == ch for ch, _ in pairs):
                raise _Refused(4, request_id)
            pairs.append((channel, code))
            if pos == len(args):
                return pairs
            if args[pos] != ",":
                raise _Refused(4, request_id)
            pos += 1


class ResistorBoardEmulator:
    """The board on a pseudo-terminal. ``path`` is the serial device to open; ``firmware`` the
    protocol state (codes, watchdog, command log)."""

    def __init__(self, backend: InstrumentBackend, *, latency_s: float = 0.0, **firmware):
        self.firmware = BoardFirmware(backend, **firmware)
        self.server = PtyLineServer(self.firmware, latency_s=latency_s)

    @property
    def path(self) -> str:
        return self.server.path

    def start(self) -> ResistorBoardEmulator:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> ResistorBoardEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
