"""The GUI's panels: controls, curves, edge map, instruments, events, run browser."""
