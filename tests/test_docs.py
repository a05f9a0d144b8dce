"""The documentation keeps up with the code it describes."""

from pathlib import Path

from hwlearn.config.experiment import EXPERIMENT
from hwlearn.config.schema import Section

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _keys(section: Section, path: str = ""):
    for key, spec in section.fields.items():
        if isinstance(spec, Section):
            yield from _keys(spec, key)
        else:
            yield path, key


def test_every_experiment_key_is_documented():
    text = (DOCS / "configuration.md").read_text()
    for section, key in _keys(EXPERIMENT):
        heading = f"## [{section}]" if section else "## Top level"
        block = text.split(heading, 1)[1].split("\n## ", 1)[0]
        assert f"| `{key}` |" in block, f"docs/configuration.md: {section}.{key} is not documented"


def test_every_bench_file_key_is_documented():
    from hwlearn.config.bench import BENCH, INSTRUMENT

    text = (DOCS / "bench.md").read_text()
    for section, schema in (("### `[bench]`", BENCH), ("### `[instruments.<name>]`", INSTRUMENT)):
        block = text.split(section, 1)[1].split("\n### ", 1)[0]
        for _, key in _keys(schema):
            assert f"| `{key}` |" in block, f"docs/bench.md: {section} {key} is not documented"
