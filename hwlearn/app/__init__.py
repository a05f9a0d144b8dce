"""The application layer: composes the core with the simulator, the drivers and the GUI.

Only this package and hwlearn.cli import every part of hwlearn (docs/architecture.md)."""
