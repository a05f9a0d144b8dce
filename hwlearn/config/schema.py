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


@dataclass(frozen=True)
class Section:
    fields: Mapping[str, Field | Section]
    doc: str = ""
    # Optional: the key whose value selects which other keys are allowed, e.g. the builder.
    variant_key: str | None = None
    variants: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    required: bool = False


def _describe(f: Field) -> str:
    parts = [f.kind]
    if f.choices:
        parts = ["one of " + ", ".join(repr(c) for c in f.choices)]
    if f.minimum is not None:
        parts.append(f"{'>' if f.exclusive_minimum else '>='} {f.minimum:g}")
    if f.maximum is not None:
        parts.append(f"<= {f.maximum:g}")
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
                if f.maximum is not None and item > f.maximum:
                    self.fail(path, value, f"must be <= {f.maximum:g}")
        if f.check is not None:
            message = f.check(out)
            if message:
                self.fail(path, value, message)
        return out

    def section(self, path: str, doc, schema: Section) -> dict:
        if not isinstance(doc, dict):
            self.fail(path or "document", doc, "must be a table")
        allowed = set(schema.fields)
        if schema.variant_key is not None:
            choice = doc.get(schema.variant_key, schema.fields[schema.variant_key].default)
            if choice in schema.variants:
                allowed = {schema.variant_key, *schema.variants[choice], *schema.variants.get("*", ())}
        prefix = f"{path}." if path else ""
        for key in doc:
            if key not in allowed:
                known = sorted(allowed)
                where = f"[{path}]" if path else "the top level"
                extra = ""
                if key in schema.fields and schema.variant_key is not None:
                    extra = f" with {schema.variant_key} = {doc.get(schema.variant_key)!r}"
                raise ConfigError(f"{self.source}: unknown key '{prefix}{key}' in {where}{extra}; "
                                  f"allowed: {', '.join(known)}")
        out = {}
        for key, spec in schema.fields.items():
            if key not in allowed:
                continue
            if isinstance(spec, Section):
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
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start}); TOML files are UTF-8, save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def describe_schema(schema: Section, path: str = "") -> list[str]:
    """Lines documenting every key: 'section.key  kind  default  doc' (for docs and --help)."""
    lines = []
    for key, spec in schema.fields.items():
        full = f"{path}.{key}" if path else key
        if isinstance(spec, Section):
            lines.extend(describe_schema(spec, full))
        else:
            default = "required" if spec.default is REQUIRED else repr(spec.default)
            lines.append(f"{full}  ({_describe(spec)}; default {default})  {spec.doc}")
    return lines
