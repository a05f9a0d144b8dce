"""The rule registry: one map from names to rule classes.

Everything that lists rules derives from it: the experiment file's [rule] section and its
defaults and bounds (hwlearn.config.experiment), docs/configuration.md, the gradcheck command,
the reproduction's rule table. A rule class joins it with ``@register``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hwlearn.rules.parameters import RuleParameterError, parameters

RULES: dict[str, type] = {}


def register(rule_class: type) -> type:
    """Class decorator: make ``rule_class`` known under its ``name``."""
    name = rule_class.name
    if name in RULES and RULES[name] is not rule_class:
        raise ValueError(f"rule name '{name}' is taken by {RULES[name].__name__}")
    RULES[name] = rule_class
    return rule_class


def rule_names() -> tuple[str, ...]:
    return tuple(RULES)


def rule_class(name: str) -> type:
    """The class registered as ``name``; an unknown name is refused, listing the known ones."""
    if not isinstance(name, str) or name not in RULES:
        raise RuleParameterError(f"unknown rule {name!r}; known rules: {', '.join(RULES)}")
    return RULES[name]


def make_rule(name: str, **values: Any):
    """The rule ``name`` with these parameter values (others at their defaults). An unknown
    parameter is refused, listing the rule's own."""
    cls = rule_class(name)
    own = parameters(cls)
    unknown = sorted(set(values) - set(own))
    if unknown:
        raise RuleParameterError(f"{name}: unknown parameter '{unknown[0]}'; "
                                 f"allowed: {', '.join(own) or 'none'}")
    return cls(**values)


def rule_from_config(table: Mapping[str, Any]):
    """The rule of a validated [rule] table: ``name`` and the rule's parameters."""
    return make_rule(table["name"], **{k: v for k, v in table.items() if k != "name"})
