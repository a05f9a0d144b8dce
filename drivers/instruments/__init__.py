"""Instrument drivers and their transports: SCPI source-measure units, the scanning voltmeter and
the resistor board over serial. They speak each instrument's own protocol and import nothing of
hwlearn but its base error (docs/architecture.md)."""
