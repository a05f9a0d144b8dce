"""The documentation keeps up with the code it describes."""

import re
from pathlib import Path

from hwlearn.config.reference import blocks, tables

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_every_generated_key_table_matches_the_schema():
    for name, generated in tables().items():
        found = blocks((DOCS / name).read_text())
        for block, text in generated.items():
            assert block in found, f"docs/{name}: no generated block '{block}'"
            assert found[block] == text, (f"docs/{name}: the '{block}' table is out of date; "
                                          "run python -m hwlearn.config.reference")


def test_every_rule_parameter_is_in_the_reference():
    from hwlearn.rules import RULES, parameters

    rule_table = tables()["configuration.md"]["[rule]"]
    for name, cls in RULES.items():
        for key, (spec, default) in parameters(cls).items():
            allowed = "" if spec.kind == "bool" else f" {spec.allowed()}"  # a bool's type says it all
            row = f"| `{key}` | {spec.kind}{allowed} | `{default!r}` | {name}: {spec.doc}"
            assert row in rule_table, (name, key, rule_table)


def test_no_comment_points_to_a_file_outside_the_repository():
    # The notes the project started from are not in the repository: docs/theory.md (the science)
    # and docs/architecture.md (the design) are where comments point.
    sources = [p for p in ROOT.rglob("*") if p.suffix in (".py", ".md", ".toml") and ".venv" not in p.parts
               and ".ci" not in p.parts]
    stale = [str(p.relative_to(ROOT)) for p in sources if re.search(r"\b(PAPER|DESIGN)\.md", p.read_text())]
    assert not stale, stale

