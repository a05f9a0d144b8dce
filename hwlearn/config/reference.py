"""Key-by-key reference tables of the configuration files, generated from their schemas.

docs/configuration.md (every experiment section) and docs/bench.md (the bench file's [network])
hold these tables between marker comments; tests/test_docs.py checks that they match the code,
and ``python -m hwlearn.config.reference [DOCS_DIR]`` rewrites them after a schema changes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from hwlearn.config.schema import REQUIRED, Field, Section

KINDS = {"str|int|list[str]": "str, int or list[str]", "str|list[str]": "str or list[str]",
         "str|float": "str or float"}


def _kind(f: Field) -> str:
    if f.choices:
        return "one of " + ", ".join(repr(c) for c in f.choices)
    return " ".join(part for part in (KINDS.get(f.kind, f.kind), f.bounds()) if part)


def _default(f: Field) -> str:
    if f.default is REQUIRED:
        return "required"
    if f.default_doc:
        return f.default_doc
    return f"`{f.default!r}`"


def _row(key: str, f: Field, meaning: str) -> str:
    return f"| `{key}` | {_kind(f)} | {_default(f)} | {meaning} |"


def table(section: Section) -> str:
    """The Markdown reference of a section's keys (nested sections excluded)."""
    lines = []
    if section.variant_key is not None:
        uses = []
        for choice in section.choices():
            keys = [*section.variants.get(choice, ()), *section.variant_fields.get(choice, {})]
            uses.append(f"`{choice}`: {', '.join(keys) if keys else 'no extra keys'}")
        if section.variants.get("*"):
            uses.append(f"always: {', '.join(section.variants['*'])}")
        lines += [f"`{section.variant_key}` selects which other keys apply: {'; '.join(uses)}.", ""]
    lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, f in section.fields.items():
        if isinstance(f, Field):
            lines.append(_row(key, f, f.doc))
    for choice, fields in section.variant_fields.items():
        for key, f in fields.items():
            lines.append(_row(key, f, f"{choice}: {f.doc}"))
    if section.renamed:
        lines += ["", "Renamed keys, refused with the new name: "
                  + ", ".join(f"`{old}` (now `{new}`)" for old, new in section.renamed.items()) + "."]
    return "\n".join(lines)


def _marker(name: str) -> tuple[str, str]:
    return f"<!-- generated: {name} (python -m hwlearn.config.reference) -->", f"<!-- end generated: {name} -->"


def tables() -> dict[str, dict[str, str]]:
    """{doc file name: {block name: generated text}}."""
    from hwlearn.config.bench import NETWORK as BENCH_NETWORK
    from hwlearn.config.experiment import EXPERIMENT

    experiment = {"top level": table(Section({k: f for k, f in EXPERIMENT.fields.items() if isinstance(f, Field)}))}
    experiment.update({f"[{key}]": table(spec) for key, spec in EXPERIMENT.fields.items() if isinstance(spec, Section)})
    return {"configuration.md": experiment, "bench.md": {"bench [network]": table(BENCH_NETWORK)}}


def blocks(text: str) -> dict[str, str]:
    """The generated blocks found in a document's text, by name."""
    found = {}
    for match in re.finditer(r"<!-- generated: (.+?) \(python -m hwlearn.config.reference\) -->\n(.*?)\n"
                             r"<!-- end generated: \1 -->", text, re.S):
        found[match.group(1)] = match.group(2)
    return found


def rewrite(text: str, generated: dict[str, str]) -> str:
    """``text`` with every generated block replaced by its current version (blocks must exist)."""
    for name, body in generated.items():
        start, end = _marker(name)
        if start not in text or end not in text:
            raise ValueError(f"no block '{name}' (markers {start} ... {end})")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{body}\n{end}{tail}"
    return text


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    docs = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "docs"
    for name, generated in tables().items():
        path = docs / name
        old = path.read_text()
        new = rewrite(old, generated)
        if new != old:
            path.write_text(new)
            print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
