"""Simulated rig, device models, and the virtual bench of emulated instruments."""
