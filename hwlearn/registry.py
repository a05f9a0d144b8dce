"""Backends chosen by name, imported only when used: hwlearn never imports drivers/, simulator/
or gui/ at module level (DESIGN.md, "Layout")."""

from __future__ import annotations

import importlib

from hwlearn.errors import ConfigError

SUBSTRATES = {
    "simulated": "simulator.fast:build_substrate",
}
RIGS = {
    "simulated": "simulator.rig:build_simulated_rig",
}


def lookup(table: dict[str, str], name: str, what: str):
    """The object registered under ``name`` (a 'module:attribute' string, imported now)."""
    if name not in table:
        raise ConfigError(f"unknown {what} '{name}'; allowed: {', '.join(sorted(table))}")
    module, _, attribute = table[name].partition(":")
    return getattr(importlib.import_module(module), attribute)
