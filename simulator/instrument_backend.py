"""What an emulated instrument sees of the simulated circuit behind the virtual bench.

The emulators (source-measure units, scanning voltmeter, resistor board) parse their real
protocols and keep their own instrument state; whenever that state touches the circuit they call
an InstrumentBackend. The virtual bench implements it on one simulated circuit shared by all
emulators; unit tests of an emulator may implement it with a few lines of fake physics.

Channel names are the bench file's: each source-measure unit has a name ("smu_in0"), mux channels
are integers as the scanning voltmeter numbers them (101..120), board channels are integers
from 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SourceSetting:
    """A source-measure unit's output as its front panel would show it.

    function   : 'VOLT' (source volts, limit amps) or 'CURR' (source amps, limit volts).
    level      : the sourced value (volts or amps).
    compliance : the limit on the other quantity (amps or volts), > 0.
    output_on  : False means the terminals are open (high impedance). An emulator whose
                 output is off in a state that still holds the terminals (the Keithleys'
                 NORMal, ZERO and GUARd output-off states) sends that state's source here,
                 with output_on True: the backend sees what the terminals do.
    """

    function: str = "VOLT"
    level: float = 0.0
    compliance: float = 1e-3
    output_on: bool = False


@dataclass(frozen=True)
class SourceReading:
    """What the unit measures at its terminals: volts across HI-LO, amps out of HI, and
    whether the output is limited by its compliance (the reading is then not the set level)."""

    volts: float
    amps: float
    in_compliance: bool = False


class InstrumentBackend(Protocol):
    def apply_source(self, name: str, setting: SourceSetting) -> None:
        """The unit ``name`` changed its output; the circuit settles to the new state."""

    def read_source(self, name: str) -> SourceReading:
        """The unit ``name`` measures its terminals."""

    def read_channels(self, channels: Sequence[int],
                      input_ohms: Sequence[float] | None = None) -> list[float]:
        """Volts across each multiplexer channel, in the order given (one scan). ``input_ohms``
        is the voltmeter's input resistance on each channel (None: an ideal voltmeter); a
        backend that models the meter's loading of the circuit uses it."""

    def write_codes(self, codes: Mapping[int, int]) -> None:
        """The resistor board sets these channels' wiper codes."""

    def read_codes(self, channels: Sequence[int]) -> dict[int, int]:
        """The codes the board's potentiometers hold now (read back over SPI)."""
