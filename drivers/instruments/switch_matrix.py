"""Switch matrices: the Keithley 707B/708B (its TSP command interface) and a generic SCPI matrix.

A matrix joins instrument buses (its rows) to device pins (its columns) through relays. A channel
is named slot-row-column as the 707B names it: ``1A01`` is slot 1, row A, column 01 (rows A-H,
two-digit columns); the generic SCPI dialect writes the same channel as ``1101`` (slot, row as a
digit, column: the 34980A's ``srcc``). Both dialects are driven through one behaviour:

- ``route(open=..., close=...)``: break before make. Every channel is checked before any byte
  (on a card, listed once, not forbidden by the bench file, not both opened and closed), then the
  channels to open are opened and the relays read back (none of them may still be closed), then
  the channels to close are closed and read back (each must be closed, and no other). Before each
  of the two switching commands the bench's ``cold_check`` is asked: a matrix switches only
  cold, with every source at 0 V or off (hot switching arcs and can weld reed relays: the 707B
  manual's warning). A refusal raises HotSwitchError and sends nothing.
- every relay that changes state is counted (``operations``, per channel in ``closures`` and
  ``openings``): relay life is finite, and the bench records the count with every run;
  ``close_counts()`` asks the instrument for its own closure counters.
- ``safe_state()`` opens every relay of every card and reads back that none is closed. It opens
  whatever the sources do: leaving a device connected to a source that could not be made safe
  is worse than one hot opening, which it reports (``hot_openings``).

707B (reference manual 707B-901-01, TSP commands; a command answers nothing, a ``print()``
answers one line):
    *IDN?, reset(), errorqueue.clear(), print(errorqueue.count), print(errorqueue.next())
    channel.connectrule = channel.BREAK_BEFORE_MAKE
    channel.setforbidden("1A01,1B02")          the instrument refuses them too
    channel.open("1A01,1B02") / channel.open("allslots") / channel.close("1H01")
    print(channel.getclose("allslots"))        "1A01;1H01", or "nil" when none is closed
    print(channel.getcount("1A01,1B02"))       "12,3": closures of each relay

Generic SCPI:
    *IDN?, *RST (every relay open), *CLS, SYST:ERR?
    ROUT:OPEN (@1101,1202) / ROUT:CLOS (@1801)
    ROUT:CLOS? (@1101:1112,...)                "0,1,0,...", one flag per channel in list order
    DIAG:REL:CYCL? (@1101,1202)                "12,3": relay cycle counts
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from drivers.instruments.declarations import flags
from drivers.instruments.errors import InstrumentError, LimitError, ProtocolError, VerifyError
from drivers.instruments.scpi import Identity, ScpiErrorQueue, parse_identity
from drivers.instruments.transport import Transport

ROW_LETTERS = "ABCDEFGH"
_CHANNEL = re.compile(r"([1-9])([A-Ha-h])(\d\d)$")
# Cards and their rows x columns. 707B: the 7174A (8 x 12 low-current matrix) and 7072 (8 x 12
# semiconductor matrix); the generic dialect names a card by its size, e.g. "8x12".
CARDS_707B = {"7174A": (8, 12), "7072": (8, 12)}
_SIZE = re.compile(r"([1-8])x(\d{1,2})$")


class HotSwitchError(LimitError):
    """A relay switch was refused because a source is not at 0 V or off (nothing was sent)."""


@dataclass(frozen=True, order=True)
class Channel:
    """A matrix crosspoint: slot 1-9, row 1-8 (A-H), column 1-99."""

    slot: int
    row: int
    column: int

    @property
    def name(self) -> str:
        """The 707B's name, also the bench file's: ``1A01``."""
        return f"{self.slot}{ROW_LETTERS[self.row - 1]}{self.column:02d}"

    def __str__(self) -> str:
        return self.name


def parse_channel(text: str, instrument: str = "matrix") -> Channel:
    """``1A01`` -> Channel(1, 1, 1); LimitError naming the text otherwise."""
    match = _CHANNEL.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise LimitError(instrument, f"channel {text!r} is not slot-row-column (e.g. '1A01': slot 1, row A, "
                                     "column 01); nothing was sent")
    return Channel(int(match.group(1)), ROW_LETTERS.index(match.group(2).upper()) + 1, int(match.group(3)))


def card_size(model: str, dialect: str) -> tuple[int, int]:
    """(rows, columns) of a card model: a 707B card name, or 'RxC' for the generic dialect."""
    if dialect == "keithley707b":
        if model not in CARDS_707B:
            raise ValueError(f"card {model!r}: the 707B driver knows {', '.join(CARDS_707B)}")
        return CARDS_707B[model]
    match = _SIZE.match(model)
    if match is None or not 1 <= int(match.group(2)) <= 99:
        raise ValueError(f"card {model!r}: a generic matrix card is written rows x columns, e.g. '8x12' "
                         "(1-8 rows, 1-99 columns)")
    return int(match.group(1)), int(match.group(2))


class SwitchMatrix:
    """The behaviour of every dialect (module docstring). Subclasses send the commands."""

    MODEL = ""
    DIALECT = ""

    def __init__(self, transport: Transport, *, name: str | None = None, cards: Mapping[int, str],
                 forbidden: Iterable[str] = (), cold_check: Callable[[], str | None] | None = None,
                 model: str | None = None):
        """``cards`` maps slot to card model; ``forbidden`` lists channels never to close;
        ``cold_check`` returns why switching now would be hot (None: cold); ``model``: the
        ``*IDN?`` model to insist on (the generic dialect accepts any by default)."""
        self.transport = transport
        self.name = name or transport.name
        self.cards = {}
        for slot, card in sorted(cards.items()):
            try:
                self.cards[int(slot)] = card_size(card, self.DIALECT)
            except ValueError as exc:
                raise LimitError(self.label, f"slot {slot}: {exc}") from None
        self.forbidden = frozenset(self._channel(text) for text in forbidden)
        self.cold_check = cold_check
        self.model = model
        self.operations = 0
        self.closures: Counter[Channel] = Counter()
        self.openings: Counter[Channel] = Counter()
        self.hot_openings = 0
        self._closed: frozenset[Channel] = frozenset()  # what the last read-back found

    @property
    def label(self) -> str:
        return f"{self.name} ({self.MODEL})"

    @property
    def channels(self) -> tuple[Channel, ...]:
        """Every crosspoint of every card, in slot, row, column order."""
        return tuple(Channel(slot, r, c) for slot, (rows, cols) in self.cards.items()
                     for r in range(1, rows + 1) for c in range(1, cols + 1))

    @property
    def known_closed(self) -> frozenset[Channel]:
        """The relays closed at the last read-back (no I/O)."""
        return self._closed

    # -- identity and setup -------------------------------------------------------------------
    def identify(self) -> Identity:
        reply = self.transport.query("*IDN?")
        identity = parse_identity(self.label, reply)
        model = identity.model.upper().removeprefix("MODEL").strip()
        wanted = self.model or None
        allowed = {wanted.upper()} if wanted else self.MODELS
        if allowed and model not in allowed:
            raise ProtocolError(self.label, f"*IDN? names model {identity.model!r}; expected {sorted(allowed)}")
        self.transport.set_marker("*IDN?", reply)
        return identity

    MODELS: frozenset[str] = frozenset()

    def reset(self) -> None:
        """The instrument's reset (every relay open), the dialect's safety settings, errors
        checked; then the relays read back."""
        with self.transport.lock:
            self._reset()
            self.check_errors()
            self._closed = self.read_closed()
        if self._closed:
            raise VerifyError(self.label, f"after a reset, relays {_names(self._closed)} read closed",
                              {c.name: ("open", "closed") for c in self._closed})

    # -- switching ------------------------------------------------------------------------------
    def route(self, open: Iterable[str | Channel] = (), close: Iterable[str | Channel] = ()) -> None:
        """Break before make (module docstring). Raises LimitError / HotSwitchError before any
        byte, VerifyError if a read-back disagrees."""
        to_open = self._checked(open, "open")
        to_close = self._checked(close, "close")
        both = set(to_open) & set(to_close)
        if both:
            raise LimitError(self.label, f"channels {_names(both)} are both to open and to close; nothing was sent")
        forbidden = [c for c in to_close if c in self.forbidden]
        if forbidden:
            raise LimitError(self.label, f"channels {_names(forbidden)} are forbidden by the bench file; "
                                         "nothing was sent")
        with self.transport.lock:
            if to_open:
                self._cold("open", to_open)
                self._open(to_open)
                closed = self.read_closed()
                still = [c for c in to_open if c in closed]
                if still:
                    self._note(closed)
                    raise VerifyError(self.label, f"relays {_names(still)} still read closed after opening them",
                                      {c.name: ("open", "closed") for c in still})
                self._note(closed)
            if to_close:
                self._cold("close", to_close)
                self._close(to_close)
                closed = self.read_closed()
                missing = [c for c in to_close if c not in closed]
                extra = [c for c in closed if c not in to_close and c not in self._closed]
                self._note(closed)
                if missing or extra:
                    detail = {**{c.name: ("closed", "open") for c in missing},
                              **{c.name: ("open", "closed") for c in extra}}
                    raise VerifyError(self.label, f"after closing {_names(to_close)} the relays read "
                                      f"{_names(closed) or 'all open'}", detail)

    def _cold(self, verb: str, channels) -> None:
        if self.cold_check is None:
            return
        problem = self.cold_check()
        if problem:
            raise HotSwitchError(self.label, f"refusing to {verb} {_names(channels)} hot: {problem}; nothing was sent")

    def _note(self, closed: frozenset[Channel]) -> None:
        """Count the relays that changed state since the last read-back."""
        for c in closed - self._closed:
            self.closures[c] += 1
            self.operations += 1
        for c in self._closed - closed:
            self.openings[c] += 1
            self.operations += 1
        self._closed = closed

    def safe_state(self) -> None:
        """Every relay of every card open, read back. Opens even when a source is not cold (and
        counts that in ``hot_openings``)."""
        with self.transport.lock:
            if self.cold_check is not None and self.cold_check():
                self.hot_openings += 1
            self._open_all()
            closed = self.read_closed()
            self._note(closed)
        if closed:
            raise VerifyError(self.label, f"relays {_names(closed)} still read closed after opening every relay",
                              {c.name: ("open", "closed") for c in closed})

    def unsafe(self) -> list[str]:
        closed = self.read_closed()
        return [f"{self.name}: relays {_names(closed)} are closed"] if closed else []

    def _checked(self, channels, verb: str) -> list[Channel]:
        found = []
        for item in channels:
            channel = item if isinstance(item, Channel) else self._channel(item)
            if channel in found:
                raise LimitError(self.label, f"channel {channel} is listed twice to {verb}; nothing was sent")
            found.append(channel)
        return found

    def _channel(self, text) -> Channel:
        channel = text if isinstance(text, Channel) else parse_channel(text, self.label)
        size = self.cards.get(channel.slot)
        if size is None or channel.row > size[0] or channel.column > size[1]:
            cards = "; ".join(f"slot {s}: rows A-{ROW_LETTERS[r - 1]}, columns 01-{c:02d}"
                              for s, (r, c) in self.cards.items())
            raise LimitError(self.label, f"channel {channel} is not on the installed cards ({cards}); nothing was sent")
        return channel

    # -- the dialect --------------------------------------------------------------------------
    def read_closed(self) -> frozenset[Channel]:
        raise NotImplementedError

    def close_counts(self, channels: Iterable[str | Channel]) -> dict[str, int]:
        raise NotImplementedError

    def check_errors(self) -> None:
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError

    def _open(self, channels: list[Channel]) -> None:
        raise NotImplementedError

    def _close(self, channels: list[Channel]) -> None:
        raise NotImplementedError

    def _open_all(self) -> None:
        raise NotImplementedError


def _names(channels) -> str:
    return ", ".join(c.name for c in sorted(channels))


def _counts(reply: str, label: str, query: str, size: int) -> list[int]:
    try:
        values = [float(item) for item in reply.split(",")]
    except ValueError:
        raise ProtocolError(label, f"{query} reply {reply!r} is not a list of counts") from None
    if len(values) != size or any(not math.isfinite(v) or v < 0 for v in values):
        raise ProtocolError(label, f"{query} reply {reply!r}: expected {size} counts")
    return [int(v) for v in values]


class Keithley707B(SwitchMatrix):
    """Keithley 707B (six slots) or 708B (one slot) switching matrix, TSP commands."""

    MODEL = "Keithley 707B"
    DIALECT = "keithley707b"
    MODELS = frozenset({"707B", "708B"})

    def _list(self, channels) -> str:
        return ",".join(c.name for c in channels)

    def _reset(self) -> None:
        self.transport.write("reset()")
        self.transport.write("errorqueue.clear()")
        self.transport.write("channel.connectrule = channel.BREAK_BEFORE_MAKE")
        if self.forbidden:
            self.transport.write(f'channel.setforbidden("{self._list(sorted(self.forbidden))}")')

    def _open(self, channels) -> None:
        self.transport.write(f'channel.open("{self._list(channels)}")')

    def _close(self, channels) -> None:
        self.transport.write(f'channel.close("{self._list(channels)}")')

    def _open_all(self) -> None:
        self.transport.write('channel.open("allslots")')

    def read_closed(self) -> frozenset[Channel]:
        query = 'print(channel.getclose("allslots"))'
        reply = self.transport.query(query).strip()
        if reply == "nil":
            return frozenset()
        try:
            return frozenset(self._channel(item) for item in reply.replace(",", ";").split(";") if item.strip())
        except LimitError:
            raise ProtocolError(self.label, f"{query} reply {reply!r} names channels not on the cards") from None

    def close_counts(self, channels) -> dict[str, int]:
        chans = self._checked(channels, "count")
        if not chans:
            return {}
        query = f'print(channel.getcount("{self._list(chans)}"))'
        values = _counts(self.transport.query(query), self.label, query, len(chans))
        return {c.name: n for c, n in zip(chans, values)}

    def check_errors(self) -> None:
        with self.transport.lock:
            reply = self.transport.query("print(errorqueue.count)")
            try:
                count = int(float(reply))
            except ValueError:
                raise ProtocolError(self.label, f"print(errorqueue.count) reply {reply!r} is not a number") from None
            found = []
            for _ in range(min(count, 32)):
                found.append(self.transport.query("print(errorqueue.next())").replace("\t", " "))
        if found:
            raise InstrumentError(self.label, "the instrument reports " + "; ".join(found))


class ScpiSwitch(ScpiErrorQueue, SwitchMatrix):
    """A generic SCPI switch matrix (ROUTe subsystem; channels ``srcc``, e.g. a 34980A's)."""

    MODEL = "SCPI switch matrix"
    DIALECT = "scpi_switch"
    ERROR_QUERY = "SYST:ERR?"

    @staticmethod
    def number(channel: Channel) -> str:
        if channel.row > 9:
            raise ValueError(channel)
        return f"{channel.slot}{channel.row}{channel.column:02d}"

    def _list(self, channels) -> str:
        return "(@" + ",".join(self.number(c) for c in channels) + ")"

    def _every(self) -> str:
        """Every channel, one range per row: ``(@1101:1112,1201:1212,...)``."""
        parts = [f"{self.number(Channel(s, r, 1))}:{self.number(Channel(s, r, cols))}"
                 for s, (rows, cols) in self.cards.items() for r in range(1, rows + 1)]
        return "(@" + ",".join(parts) + ")"

    def _reset(self) -> None:
        self.transport.write("*RST")
        self.transport.write("*CLS")

    def _open(self, channels) -> None:
        self.transport.write(f"ROUT:OPEN {self._list(channels)}")

    def _close(self, channels) -> None:
        self.transport.write(f"ROUT:CLOS {self._list(channels)}")

    def _open_all(self) -> None:
        self.transport.write(f"ROUT:OPEN {self._every()}")

    def read_closed(self) -> frozenset[Channel]:
        query = f"ROUT:CLOS? {self._every()}"
        reply = self.transport.query(query)
        try:
            states = flags(reply)
        except ValueError:
            raise ProtocolError(self.label, f"ROUT:CLOS? reply {reply!r} is not a list of 0 and 1") from None
        every = self.channels
        if len(states) != len(every):
            raise ProtocolError(self.label, f"ROUT:CLOS? answered {len(states)} flags for {len(every)} channels")
        return frozenset(c for c, shut in zip(every, states) if shut)

    def close_counts(self, channels) -> dict[str, int]:
        chans = self._checked(channels, "count")
        if not chans:
            return {}
        query = f"DIAG:REL:CYCL? {self._list(chans)}"
        values = _counts(self.transport.query(query), self.label, query, len(chans))
        return {c.name: n for c, n in zip(chans, values)}


MATRIX_DRIVERS = {"keithley707b": Keithley707B, "scpi_switch": ScpiSwitch}
