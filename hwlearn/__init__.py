"""hwlearn: train physical resistor networks in the loop."""

__version__ = "0.1.0"
