"""A rule's parameters: declared once, with their default, unit, bounds and meaning.

A rule is a frozen dataclass whose fields are its parameters, each declared with ``parameter``.
``check_parameters`` (called by every rule's ``__post_init__``) converts and validates them, so a
rule object always holds valid values; the experiment file's [rule] section, the gradcheck flags
and docs/configuration.md are generated from the same declarations (hwlearn.rules.registry).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from hwlearn.errors import HwlearnError

KINDS = {"float": float, "int": int, "bool": bool}


class RuleParameterError(HwlearnError, ValueError):
    """A rule parameter is missing, of the wrong type or out of range; names rule, key, value."""


@dataclass(frozen=True)
class Parameter:
    """What a rule parameter means and which values are allowed.

    kind    : 'float', 'int' or 'bool'.
    doc     : what it does, in a phrase.
    unit    : its SI unit in words ("siemens"; "" for a pure number).
    minimum, maximum : bounds (None: unbounded); ``open_minimum`` / ``open_maximum`` exclude them.
    """

    kind: str
    doc: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    open_minimum: bool = False
    open_maximum: bool = False

    def allowed(self) -> str:
        """The allowed values in words: '> 0', 'in (0, 1]', 'true or false'."""
        if self.kind == "bool":
            return "true or false"
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"in {'(' if self.open_minimum else '['}{low:g}, {high:g}{')' if self.open_maximum else ']'}"
        if low is not None:
            return f"{'>' if self.open_minimum else '>='} {low:g}"
        if high is not None:
            return f"{'<' if self.open_maximum else '<='} {high:g}"
        return f"any finite {self.kind}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed, or None if it is (after conversion by ``convert``)."""
        if self.kind == "bool":
            return None if isinstance(value, bool) else "must be true or false"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, {self.allowed()}"
        if not math.isfinite(value):
            return "must be a finite number (NaN and inf are never valid)"
        if self.kind == "int" and not float(value).is_integer():
            return "must be an integer"
        low, high = self.minimum, self.maximum
        if low is not None and (value < low or (self.open_minimum and value == low)) or \
                high is not None and (value > high or (self.open_maximum and value == high)):
            return f"must be {self.allowed()}"
        return None

    def convert(self, value: Any) -> Any:
        return value if self.kind == "bool" else KINDS[self.kind](value)


def parameter(default: Any, doc: str, *, kind: str = "float", unit: str = "", minimum: float | None = None,
              maximum: float | None = None, open_minimum: bool = False, open_maximum: bool = False):
    """A dataclass field that is a rule parameter (see Parameter)."""
    if kind not in KINDS:
        raise ValueError(f"parameter kind {kind!r}: allowed {', '.join(KINDS)}")
    spec = Parameter(kind, doc, unit, minimum, maximum, open_minimum, open_maximum)
    return dataclasses.field(default=default, metadata={"parameter": spec})


def parameters(rule_class) -> dict[str, tuple[Parameter, Any]]:
    """{name: (Parameter, default)} of a rule class (or instance), in declaration order."""
    return {f.name: (f.metadata["parameter"], f.default) for f in dataclasses.fields(rule_class)
            if "parameter" in f.metadata}


def check_parameters(rule) -> None:
    """Validate and convert a rule's parameters in place; raises RuleParameterError naming the rule,
    the parameter, the value and what is allowed, e.g. "coupled: eta = 2: must be in (0, 1]"."""
    for name, (spec, _) in parameters(rule).items():
        value = getattr(rule, name)
        message = spec.problem(value)
        if message:
            unit = f" ({spec.unit})" if spec.unit else ""
            raise RuleParameterError(f"{rule.name}: {name} = {value!r}: {message}{unit}")
        object.__setattr__(rule, name, spec.convert(value))
