"""SPICE netlist import: the subset we read, and a clear error for everything else."""

import pytest

from hwlearn.errors import NetlistError
from hwlearn.netlist import parse_netlist, parse_value, to_netlist


@pytest.mark.parametrize("token, value", [
    ("1", 1.0), ("4.7k", 4700.0), ("4.7K", 4700.0), ("1meg", 1e6), ("1MEG", 1e6), ("2.2u", 2.2e-6),
    ("10mA", 0.01), ("3n", 3e-9), ("5p", 5e-12), ("1f", 1e-15), ("2g", 2e9), ("1t", 1e12),
    ("1e3", 1e3), ("-2.5", -2.5), (".5", 0.5), ("5V", 5.0), ("10kOhm", 1e4), ("1.5e-3m", 1.5e-6),
])
def test_values_take_si_suffixes_and_ignore_trailing_units(token, value):
    assert parse_value(token) == pytest.approx(value, rel=1e-15)


def test_first_line_is_the_title_and_comments_continuations_and_end_are_honoured():
    net = parse_netlist(
        "My Circuit\n"
        "* a comment line\n"
        "V1 IN 0 DC 5 ; inline comment\n"
        "R1 in\n"
        "+ out 1k\n"
        "r2 OUT 0 2K\n"
        "I1 0 out 1m\n"
        ".op\n"
        ".end\n"
        "R9 this line is after .end and ignored\n"
    )
    assert net.title == "My Circuit"
    assert net.node_names == ("0", "in", "out")
    assert net.edge_names == ("R1", "r2")
    assert list(net.resistance) == [1000.0, 2000.0]
    assert net.vsources.names == ("V1",) and net.vsources.values[0] == 5.0
    assert net.isources.names == ("I1",) and net.isources.values[0] == 1e-3
    assert list(net.edge_indices(["r1", "R2"])) == [0, 1]  # names are case-insensitive


@pytest.mark.parametrize("line, message", [
    ("C1 a 0 1u", "line 3: unsupported element 'C1'"),
    ("D1 a 0 dmod", "line 3: unsupported element 'D1'"),
    ("R2 a 0", "line 3: expected 'R<name> <n1> <n2> <ohms>'"),
    ("R2 a 0 1k 2k", "line 3: expected 'R<name> <n1> <n2> <ohms>'"),
    ("R2 a 0 abc", "line 3: 'abc' is not a number"),
    ("R2 a 0 0", "line 3: resistance of R2 must be > 0 ohm, got 0.0"),
    ("R2 a 0 -1k", "line 3: resistance of R2 must be > 0 ohm"),
    ("V2 a 0 AC 1", "line 3: expected 'V<name> <n\\+> <n-> \\[DC\\] <value>'"),
    ("R2 a a 1k", "line 3: R2 connects node 'a' to itself"),
    ("R1 a 0 1k", "line 3: element 'R1' is already defined on line 2"),
    (".tran 1n 1u", "line 3: unsupported directive '.tran'"),
    ("+ 5", "line 3: continuation with nothing to continue"),
])
def test_malformed_or_unsupported_lines_name_the_line_number_and_text(line, message):
    text = "title\nR1 a 0 1k\n" + line + "\n.end\n"
    if line.startswith("+"):
        text = "title\n" + line + "\nR1 a 0 1k\n.end\n"
        message = message.replace("line 3", "line 2")
    with pytest.raises(NetlistError, match=message) as info:
        parse_netlist(text, "deck.cir")
    assert str(info.value).startswith("deck.cir, line ")
    assert line.split()[0] in str(info.value)


def test_netlist_without_ground_or_resistors_is_refused():
    with pytest.raises(NetlistError, match="no element connects to ground node '0'"):
        parse_netlist("t\nR1 a b 1k\n")
    with pytest.raises(NetlistError, match="no resistors"):
        parse_netlist("t\nV1 a 0 1\n")


def test_export_round_trips_through_the_parser():
    text = "t\nV1 in 0 DC 5\nR1 in out 1.5k\nR2 out 0 2.2k\nI1 0 out 1m\nV2 out x 2\nR3 x 0 1k\n.end\n"
    net = parse_netlist(text)
    again = parse_netlist(to_netlist(net))
    assert again.node_names == net.node_names
    assert list(again.resistance) == list(net.resistance)
    assert again.vsources.names == net.vsources.names
    assert list(again.isources.values) == list(net.isources.values)
