"""Crossbars in the core: their geometry (layout), the order in which a bench writes their
crosspoints with the fewest relay operations (schedule), and the write-and-verify algorithm by
bounded pulses (write_verify). docs/crossbar.md explains all three."""

from hwlearn.crossbar.layout import CROSSPOINT, CrossbarLayout, Crosspoint, Line
from hwlearn.crossbar.schedule import (
    LineAccess,
    ScheduleError,
    Visit,
    Write,
    carriers,
    minimum_relay_operations,
    relay_operations,
    schedule,
)
from hwlearn.crossbar.write_verify import (
    READ,
    LimitsError,
    Pulse,
    PulseLimits,
    Read,
    WriteOutcome,
    WritePlan,
    write_verify,
)

__all__ = ["CROSSPOINT", "READ", "CrossbarLayout", "Crosspoint", "Line", "LimitsError", "LineAccess", "Pulse",
           "PulseLimits", "Read", "ScheduleError", "Visit", "Write", "WriteOutcome", "WritePlan", "carriers",
           "minimum_relay_operations", "relay_operations", "schedule", "write_verify"]
