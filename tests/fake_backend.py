"""A few lines of fake physics behind the emulators, for tests (simulator/instrument_backend.py).

Each source-measure unit drives its own fixed load resistor, so compliance can be provoked by
asking for more than compliance x R; mux channels read preset volts (a channel can be preset
overrange or NaN); the board stores codes, and a channel can be 'stuck' (it ignores writes and
reads back a fixed code, like a dead potentiometer)."""

from __future__ import annotations

import math
import threading

from simulator.instrument_backend import SourceReading, SourceSetting


class FakeBackend:
    def __init__(self, *, load_ohms: float = 1000.0, channel_volts: dict[int, float] | None = None,
                 stuck: dict[int, int] | None = None):
        self.load_ohms = load_ohms
        self.channel_volts = dict(channel_volts or {})
        self.stuck = dict(stuck or {})
        self.settings: dict[str, SourceSetting] = {}
        self.codes: dict[int, int] = {}
        self.lock = threading.Lock()

    def apply_source(self, name: str, setting: SourceSetting) -> None:
        with self.lock:
            self.settings[name] = setting

    def read_source(self, name: str) -> SourceReading:
        s = self.settings[name]
        r = self.load_ohms
        if not s.output_on:
            return SourceReading(0.0, 0.0)
        if s.function == "VOLT":
            amps = s.level / r
            if abs(amps) > s.compliance:
                amps = math.copysign(s.compliance, amps)
                return SourceReading(amps * r, amps, True)
            return SourceReading(s.level, amps)
        volts = s.level * r
        if abs(volts) > s.compliance:
            volts = math.copysign(s.compliance, volts)
            return SourceReading(volts, volts / r, True)
        return SourceReading(volts, s.level)

    def read_channels(self, channels, input_ohms=None):
        return [self.channel_volts.get(ch, 1e-3 * (ch % 100)) for ch in channels]

    def write_codes(self, codes) -> None:
        with self.lock:
            for ch, code in codes.items():
                if ch not in self.stuck:
                    self.codes[ch] = code

    def read_codes(self, channels):
        with self.lock:
            return {ch: self.stuck.get(ch, self.codes.get(ch, 128)) for ch in channels}
