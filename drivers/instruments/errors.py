"""Exceptions raised by transports and instrument drivers.

Every message names the instrument, the value and what was allowed or expected, so a log line
alone tells an operator what went wrong. Each error keeps the instrument's name in
``.instrument`` for the bench to report which unit failed.
"""

from __future__ import annotations

from hwlearn.errors import HwlearnError


class InstrumentError(HwlearnError):
    """Something about one instrument went wrong or was refused."""

    def __init__(self, instrument: str, message: str):
        super().__init__(f"{instrument}: {message}")
        self.instrument = instrument


class LimitError(InstrumentError, ValueError):
    """A request outside the configured or hardware limits. Raised before any byte is sent."""


class TransportError(InstrumentError):
    """The link to the instrument failed (closed, refused, I/O error)."""


class InstrumentTimeout(TransportError):
    """No complete reply arrived within the timeout."""


class ProtocolError(InstrumentError):
    """A reply that cannot be understood: wrong shape, bad checksum, wrong request id, an
    incompatible protocol version, or an error reply of the instrument itself."""


class ReadingError(InstrumentError):
    """A reading that must not reach a learning rule: overrange or not a number.

    ``channels`` lists the scan channels that read so (empty for a single-reading instrument)."""

    def __init__(self, instrument: str, message: str, channels=()):
        super().__init__(instrument, message)
        self.channels = tuple(channels)


class ComplianceError(ReadingError):
    """A source-measure unit's reading taken while its source was limited by compliance.

    ``reading`` keeps what was measured, for diagnostics only."""

    def __init__(self, instrument: str, message: str, reading=None):
        super().__init__(instrument, message)
        self.reading = reading


class VerifyError(InstrumentError):
    """A value written to the instrument did not read back as written.

    ``channels`` maps each channel that differs to (written, read back)."""

    def __init__(self, instrument: str, message: str, channels=None):
        super().__init__(instrument, message)
        self.channels = dict(channels or {})


class WatchdogTripped(InstrumentError):
    """The resistor board's watchdog fired: every channel went to the safe code and the board
    refuses new codes until the host acknowledges with clear_watchdog()."""


class SafeStateError(InstrumentError):
    """An instrument could not be brought to its safe state (or not within its time)."""


class BoardRebooted(InstrumentError):
    """The resistor board restarted (power, its USB port opened, its MCU watchdog): every
    channel holds the safe code and the board refuses codes until it has been verified and
    acknowledged (ResistorBoard.acknowledge_boot()). ``cause`` is the reported reset cause (POR,
    EXT, BOR, WDT, OTHER) when the board announced it, else None."""

    def __init__(self, instrument: str, message: str, cause: str | None = None):
        super().__init__(instrument, message)
        self.cause = cause
