"""A small declarative validator for TOML configuration files.

A schema is a tree of Sections whose leaves are Fields. ``validate`` walks a parsed TOML document,
fills defaults and returns plain dicts; every error names the file, the key path, the value and
what is allowed ("exp.toml: training.learning_rate = -1: must be > 0"). NaN and inf are never
valid numbers. Unknown keys are errors, with the allowed keys listed.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwlearn.errors import ConfigError
from hwlearn.files import read_text

REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One value: its type ('float', 'int', 'bool', 'str', 'list[str]', 'list[float]', 'list[int]',
    'str|list[str]', 'int|list[str]', ...), default (REQUIRED if none), bounds and choices."""

    kind: str
    default: Any = REQUIRED
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None  # returns an error message or None
    exclusive_maximum: bool = False
    default_doc: str = ""  # a default computed from other keys, in words (the default is then None)

    def bounds(self) -> str:
        """The allowed range in words: '> 0', '>= 1', 'in (0, 1]'; '' if unbounded."""
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return (f"in {'(' if self.exclusive_minimum else '['}{low:g}, {high:g}"
                    f"{')' if self.exclusive_maximum else ']'}")
        if low is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {low:g}"
        if high is not None:
            return f"{'<' if self.exclusive_maximum else '<='} {high:g}"
        return ""


@dataclass(frozen=True)
class Section:
    """A table of keys.

    variant_key   : optional: the key whose value selects which other keys are allowed (e.g.
                    the builder); ``variants`` maps each value to its keys ('*': always allowed).
    variant_fields: keys that exist only for one value of the variant key, each with its own
                    default and bounds (e.g. a rule's parameters: eta is omega's gain and
                    Coupled Learning's clamp fraction).
    renamed       : old key -> new key; an old key is refused with an error naming the new one.
    """

    fields: Mapping[str, Field | Section]
    doc: str = ""
    variant_key: str | None = None
    variants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    required: bool = False
    variant_fields: Mapping[str, Mapping[str, Field]] = field(default_factory=dict)
    renamed: Mapping[str, str] = field(default_factory=dict)

    def choices(self) -> tuple[str, ...]:
        """Values of the variant key that select keys (the '*' entry excluded)."""
        return tuple(dict.fromkeys([*(k for k in self.variants if k != "*"), *self.variant_fields]))


def _describe(f: Field) -> str:
    parts = [f.kind]
    if f.choices:
        parts = ["one of " + ", ".join(repr(c) for c in f.choices)]
    if f.bounds():
        parts.append(f.bounds())
    return " ".join(parts)


class Validator:
    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, value, message: str):
        raise ConfigError(f"{self.source}: {path} = {value!r}: {message}")

    def scalar(self, path: str, value, kind: str):
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(path, value, "must be a number")
            if not math.isfinite(value):
                self.fail(path, value, "must be a finite number (NaN and inf are never valid)")
            return float(value)
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer() and math.isfinite(value):
                    return int(value)
                self.fail(path, value, "must be an integer")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                self.fail(path, value, "must be true or false")
            return value
        if kind == "str":
            if not isinstance(value, str) or not value:
                self.fail(path, value, "must be a non-empty string")
            return value
        raise AssertionError(kind)

    def value(self, path: str, value, f: Field):
        kinds = f.kind.split("|")
        errors = []
        for kind in kinds:
            try:
                if kind.startswith("list[") and kind.endswith("]"):
                    inner = kind[5:-1]
                    if not isinstance(value, list):
                        self.fail(path, value, "must be a list")
                    out = [self.scalar(f"{path}[{i}]", v, inner) for i, v in enumerate(value)]
                else:
                    out = self.scalar(path, value, kind)
                break
            except ConfigError as exc:
                errors.append(exc)
        else:
            if len(kinds) == 1:
                raise errors[0]
            self.fail(path, value, f"must be {' or '.join(kinds)}")
        for item in out if isinstance(out, list) else [out]:
            if f.choices is not None and item not in f.choices:
                self.fail(path, value, f"allowed: {', '.join(repr(c) for c in f.choices)}")
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                if f.minimum is not None and (item < f.minimum or (f.exclusive_minimum and item == f.minimum)):
                    self.fail(path, value, f"must be {'>' if f.exclusive_minimum else '>='} {f.minimum:g}")
                if f.maximum is not None and (item > f.maximum or (f.exclusive_maximum and item == f.maximum)):
                    self.fail(path, value, f"must be {'<' if f.exclusive_maximum else '<='} {f.maximum:g}")
        if f.check is not None:
            message = f.check(out)
            if message:
                self.fail(path, value, message)
        return out

    def section(self, path: str, doc, schema: Section) -> dict:
        if not isinstance(doc, dict):
            self.fail(path or "document", doc, "must be a table")
        prefix = f"{path}." if path else ""
        specs: dict[str, Field | Section] = dict(schema.fields)
        allowed = set(schema.fields).union(*schema.variant_fields.values())
        choice = None
        if schema.variant_key is not None:
            key = schema.variant_key
            # The selecting value first: a bad one is reported as itself, not as the keys it allows.
            spec = schema.fields[key]
            choice = self.value(prefix + key, doc[key], spec) if key in doc else spec.default
            if isinstance(choice, str) and choice in schema.choices():
                chosen = schema.variant_fields.get(choice, {})
                allowed = {key, *schema.variants.get(choice, ()), *schema.variants.get("*", ()), *chosen}
                specs.update(chosen)
        for key in doc:
            if key in schema.renamed and key not in allowed:
                raise ConfigError(f"{self.source}: {prefix}{key} has been renamed: write "
                                  f"{prefix}{schema.renamed[key]} instead")
            if key not in allowed:
                known = sorted(allowed)
                where = f"[{path}]" if path else "the top level"
                extra = ""
                variant_keys = set(schema.fields).union(*schema.variant_fields.values())
                if schema.variant_key is not None and key in variant_keys:
                    extra = f" with {schema.variant_key} = {doc.get(schema.variant_key)!r}"
                raise ConfigError(f"{self.source}: unknown key '{prefix}{key}' in {where}{extra}; "
                                  f"allowed: {', '.join(known)}")
        out = {}
        for key, spec in specs.items():
            if key not in allowed:
                continue
            if key == schema.variant_key and key in doc:
                out[key] = choice
            elif isinstance(spec, Section):
                if key in doc:
                    out[key] = self.section(prefix + key, doc[key], spec)
                elif spec.required:
                    raise ConfigError(f"{self.source}: missing table [{prefix}{key}]")
                else:
                    out[key] = self.section(prefix + key, {}, spec)
            elif key in doc:
                out[key] = self.value(prefix + key, doc[key], spec)
            elif spec.default is REQUIRED:
                raise ConfigError(f"{self.source}: missing key '{prefix}{key}' ({_describe(spec)})"
                                  + (f": {spec.doc}" if spec.doc else ""))
            else:
                out[key] = spec.default
        return out


def load_toml(path: str | Path) -> dict:
    """Parse a TOML file; ConfigError (naming the file) if it cannot be read, is not UTF-8 (TOML
    files are UTF-8 by definition) or is not valid TOML."""
    path = Path(path)
    text = read_text(path, ConfigError, "TOML file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def describe_schema(schema: Section, path: str = "") -> list[str]:
    """Lines documenting every key: 'section.key  kind  default  doc' (for docs and --help);
    a key of one variant only is written 'section.key [variant_key = value]'."""
    lines = []
    entries = [(key, spec, "") for key, spec in schema.fields.items()]
    entries += [(key, spec, f" [{schema.variant_key} = {choice!r}]")
                for choice, fields in schema.variant_fields.items() for key, spec in fields.items()]
    for key, spec, variant in entries:
        full = f"{path}.{key}" if path else key
        if isinstance(spec, Section):
            lines.extend(describe_schema(spec, full))
        else:
            default = "required" if spec.default is REQUIRED else spec.default_doc or repr(spec.default)
            lines.append(f"{full}{variant}  ({_describe(spec)}; default {default})  {spec.doc}")
    return lines
