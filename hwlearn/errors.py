"""Exception types. Every message names the thing, the value and what was expected."""


class HwlearnError(Exception):
    """Base class of every error hwlearn raises on purpose."""


class NetworkError(HwlearnError):
    """A network is malformed: bad roles, bad resistance, unknown names."""


class NetlistError(HwlearnError):
    """A SPICE netlist line cannot be read; the message names the line number and text."""


class SolverError(HwlearnError):
    """The circuit has no unique solution (floating parts, loops of voltage sources)."""


class ConfigError(HwlearnError):
    """A configuration value is missing, of the wrong type or out of range."""
