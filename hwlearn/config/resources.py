"""Which resource strings a bench file may name, per kind of link.

SCPI instruments are reached through VISA: a raw socket (``TCPIP[n]::host::port::SOCKET``), a
VXI-11 LAN instrument (``TCPIP[n]::host[::name]::INSTR``), GPIB (``GPIB[n]::address[::INSTR]``)
or USBTMC (``USB[n]::vid::pid::serial[::interface]::INSTR``). The resistor board is a serial
port: a device path (``/dev/ttyACM0``, ``COM3``) or one of pyserial's network URLs
(``socket://host:port``, ``rfc2217://host:port``). A network address other than the loopback
host is refused unless the bench file says ``allow_remote = true``: an instrument on someone
else's machine must never be driven by accident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOOPBACK = ("127.0.0.1", "localhost")

_SCPI_FORMS = (
    ("TCPIP socket", re.compile(r"TCPIP\d*::(?P<host>[^:\s]+)::(?P<port>\d{1,5})::SOCKET", re.I)),
    ("TCPIP VXI-11", re.compile(r"TCPIP\d*::(?P<host>[^:\s]+)(::[A-Za-z0-9_,\[\]]+)?(::INSTR)?", re.I)),
    ("GPIB", re.compile(r"GPIB\d*::\d{1,2}(::\d{1,3})?(::INSTR)?", re.I)),
    ("USB", re.compile(r"USB\d*::(0x[0-9A-F]{1,4}|\d+)::(0x[0-9A-F]{1,4}|\d+)::[A-Za-z0-9_.-]+"
                       r"(::\d+)?(::INSTR)?", re.I)),
)
_SERIAL_DEVICE = re.compile(r"(/dev/[A-Za-z0-9_./:+-]+|COM\d{1,3})")
_SERIAL_URL = re.compile(r"(?P<scheme>socket|rfc2217)://(?P<host>[A-Za-z0-9_.-]+):(?P<port>\d{1,5})"
                         r"(\?[A-Za-z0-9_=&.]*)?")

SCPI_ALLOWED = ("TCPIP[n]::host::port::SOCKET, TCPIP[n]::host[::name][::INSTR], "
                "GPIB[n]::address[::INSTR], USB[n]::vid::pid::serial[::INSTR]")
SERIAL_ALLOWED = "a serial device (/dev/ttyACM0, COM3) or socket://host:port, rfc2217://host:port"


@dataclass(frozen=True)
class Resource:
    """A checked resource string: its form, and the network host and port where it has them."""

    text: str
    form: str
    host: str | None = None
    port: int | None = None

    @property
    def is_remote(self) -> bool:
        return self.host is not None and self.host.lower() not in LOOPBACK

    @property
    def address(self) -> tuple:
        """What the resource reaches, whatever its spelling: two resources with the same
        address are one instrument (``TCPIP0::localhost::5025::SOCKET`` and
        ``socket://127.0.0.1:5025`` are one TCP port; ``GPIB::9`` and ``GPIB0::9::INSTR`` one
        GPIB address)."""
        host = None if self.host is None else ("127.0.0.1" if self.host.lower() in LOOPBACK
                                               else self.host.lower())
        if self.port is not None:
            return ("tcp", host, self.port)
        text = self.text.upper()
        if self.form == "TCPIP VXI-11":
            parts = text.split("::")
            name = parts[2] if len(parts) > 2 and parts[2] != "INSTR" else "INST0"
            return ("vxi11", host, name.lower())
        if self.form == "GPIB":
            parts = [p for p in text.split("::") if p != "INSTR"]
            board = int(parts[0][4:] or 0)
            secondary = int(parts[2]) if len(parts) > 2 else None
            return ("gpib", board, int(parts[1]), secondary)
        if self.form == "USB":
            parts = [p for p in text.split("::") if p != "INSTR"]
            vid, pid = (int(x, 16) if x.startswith("0X") else int(x) for x in parts[1:3])
            interface = int(parts[4]) if len(parts) > 4 else 0
            return ("usb", vid, pid, parts[3], interface)
        return ("serial", text if text.startswith("COM") else self.text)


def check_resource(text: str, link: str, allow_remote: bool) -> Resource:
    """``text`` as a Resource for a link of kind ``link`` ('scpi' or 'serial'); ValueError with
    a sentence saying what is allowed otherwise."""
    if not isinstance(text, str) or not text or not text.isascii() or any(c.isspace() for c in text):
        raise ValueError("a resource is one word of ASCII without spaces")
    resource = _scpi(text) if link == "scpi" else _serial(text)
    if resource is None:
        allowed = SCPI_ALLOWED if link == "scpi" else SERIAL_ALLOWED
        raise ValueError(f"not a resource this link accepts; allowed: {allowed}")
    if resource.port is not None and not 0 < resource.port < 65536:
        raise ValueError(f"port {resource.port} is outside 1..65535")
    if resource.is_remote and not allow_remote:
        raise ValueError(f"host {resource.host!r} is not this machine ({' or '.join(LOOPBACK)}); "
                         "set bench.allow_remote = true to drive an instrument over the network")
    return resource


def _scpi(text: str) -> Resource | None:
    for form, pattern in _SCPI_FORMS:
        match = pattern.fullmatch(text)
        if match:
            groups = match.groupdict()
            port = int(groups["port"]) if groups.get("port") else None
            return Resource(text, form, groups.get("host"), port)
    return None


def _serial(text: str) -> Resource | None:
    if _SERIAL_DEVICE.fullmatch(text):
        return Resource(text, "serial device")
    match = _SERIAL_URL.fullmatch(text)
    if match:
        return Resource(text, f"pyserial {match['scheme']}://", match["host"], int(match["port"]))
    return None
