"""What every SCPI instrument shares: the number format, ``*IDN?`` and the error queue."""

from __future__ import annotations

from dataclasses import dataclass

from drivers.instruments.errors import InstrumentError, ProtocolError


def scpi_number(value: float) -> str:
    """The one format numbers are written in: 7 significant digits, exponent always present,
    no sign for positive numbers and never '-0' (e.g. ``1.000000E-01``)."""
    return f"{float(value) + 0.0:.6E}"


@dataclass(frozen=True)
class Identity:
    """The four fields of ``*IDN?``: maker, model, serial number, firmware revision."""

    maker: str
    model: str
    serial: str
    firmware: str


def parse_identity(instrument: str, reply: str) -> Identity:
    fields = [f.strip() for f in reply.split(",")]
    if len(fields) != 4:
        raise ProtocolError(instrument, f"*IDN? reply {reply!r} does not have 4 fields")
    return Identity(*fields)


class ScpiErrorQueue:
    """Mixin: read the instrument's error queue. Needs ``transport``, ``label`` and
    ``ERROR_QUERY``."""

    ERROR_QUERY = ":SYST:ERR?"
    MAX_ERRORS = 32  # more than any queue we drive holds: a stuck instrument must not hang us

    def errors(self) -> list[str]:
        """Empty the error queue; returns every entry that was not 'no error' (code 0)."""
        found = []
        with self.transport.lock:
            for _ in range(self.MAX_ERRORS):
                reply = self.transport.query(self.ERROR_QUERY)
                try:
                    code = int(reply.split(",", 1)[0])
                except ValueError:
                    raise ProtocolError(self.label, f"{self.ERROR_QUERY} reply {reply!r} has no "
                                                    "error number") from None
                if code == 0:
                    break
                found.append(reply)
        return found

    def check_errors(self) -> None:
        """Raise InstrumentError listing every queued error, if any."""
        found = self.errors()
        if found:
            raise InstrumentError(self.label, "the instrument reports " + "; ".join(found))
