"""The bench file's validation: the example loads with the roles its wiring implies, and every
error names the file, the key, the value and what is allowed."""

from __future__ import annotations

import math

import pytest

from hwlearn.builders import lattice
from hwlearn.config.bench import load_bench_file
from hwlearn.errors import ConfigError
from hwlearn.network_file import save_network
from tests.bench_helpers import EXAMPLE, config_of, example_doc


def refused(doc, *words, source="bench.toml"):
    """Validate ``doc``; the ConfigError must contain the file name and every word."""
    with pytest.raises(ConfigError) as info:
        config_of(doc, source)
    message = str(info.value)
    for word in (source, *words):
        assert word in message, f"{word!r} missing from: {message}"
    return message


# ------------------------------------------------------------------------------ the example
def test_example_bench_has_the_documented_roles():
    config = load_bench_file(EXAMPLE)
    net = config.network
    def names(role):
        return sorted(net.edge_names[k] for k in net.role(role))
    assert names("input") == ["Rv0_0", "Rv1_0"]
    assert names("output") == ["Rv0_3", "Rv1_3", "Rv2_3"]
    assert len(names("tunable")) == 16 and len(names("readable")) == 20
    assert set(names("output")) <= set(names("readable"))
    assert not {"Rh3_0", "Rh3_1", "Rh3_2"} & set(names("readable") + names("tunable"))
    assert [w.polarity for w in config.inputs] == [1, -1]
    assert config.calibration["board"][0].ohms_of(0) == 71.0
    assert config.calibration["board"][2].ohms_of(256) == pytest.approx(10075.0)


def test_a_channel_may_be_calibrated_by_a_table():
    doc = example_doc()
    doc["calibration"]["board"]["channels"]["3"] = {"table": [100.0, 150.0, 230.0], "code_min": 10}
    cal = config_of(doc).calibration["board"][3]
    assert (cal.code_min, cal.code_max) == (10, 12)
    assert cal.nearest_code(160.0) == 11 and cal.ohms_of(12) == 230.0
    with pytest.raises(ValueError, match="outside the calibrated range 100..230"):
        cal.nearest_code(231.0)


def test_a_network_file_gives_the_topology_and_its_roles_must_be_wired(tmp_path):
    doc = example_doc()
    wired = list(doc["wiring"]["board"])
    net = lattice(4, 4, inputs=2, outputs=3).with_roles(tunable=wired, readable=wired)
    save_network(net, tmp_path / "board.json")
    doc["network"] = {"builder": "file", "path": str(tmp_path / "board.json")}
    config = config_of(doc)
    assert config.network.n_edges == 24 and config.network.title == net.title
    save_network(net.with_roles(tunable=wired + ["Rh3_0"]), tmp_path / "board.json")
    refused(doc, "network.path", "board.json", "marks edge Rh3_0 tunable", "wiring.board has no entry")


# ------------------------------------------------------------------------------ [bench], tables
def test_unknown_and_missing_tables_are_named():
    doc = example_doc()
    doc["wirings"] = {}
    refused(doc, "[wirings]", "allowed: bench, network, instruments, wiring, calibration")
    doc = example_doc()
    del doc["calibration"]
    refused(doc, "missing table [calibration]")


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_bench_limits_must_be_finite_and_positive(value):
    doc = example_doc()
    doc["bench"]["max_total_watts"] = value
    refused(doc, "bench.max_total_watts", repr(value))


def test_a_missing_key_says_what_it_needs():
    doc = example_doc()
    del doc["bench"]["max_total_watts"]
    refused(doc, "missing key 'bench.max_total_watts'", "float in [1e-06, 1000]")


# ------------------------------------------------------------------------------ [network]
def test_network_errors_name_the_key():
    doc = example_doc()
    doc["network"]["builder"] = "grid"
    refused(doc, "network.builder", "'grid'", "allowed: 'lattice', 'crossbar', 'random', 'file'")
    doc = example_doc()
    del doc["network"]["rows"]
    refused(doc, "missing key 'network.rows'")
    doc = example_doc()
    doc["network"]["nominal_ohms"] = {"Rx9": 100.0}
    refused(doc, "network.nominal_ohms.Rx9", "'Rx9'", "no edge named")
    doc = example_doc()
    doc["network"]["nominal_ohms"] = {"Rh3_0": -5.0}
    refused(doc, "network.nominal_ohms.Rh3_0", "-5.0", "must be > 0")


@pytest.mark.parametrize("old", ["resistance_ohms", "cross_ohms"])
def test_network_keys_of_earlier_bench_files_are_refused_naming_the_new_key(old):
    doc = example_doc()
    doc["network"][old] = doc["network"].pop("ohms")
    refused(doc, f"network.{old} has been renamed: write network.ohms instead")


def test_nominal_ohms_override_one_edge():
    doc = example_doc()
    doc["network"]["nominal_ohms"] = {"Rh3_0": 2200.0}
    net = config_of(doc).network
    assert net.resistance[net.edge_indices(["Rh3_0"])[0]] == 2200.0


# ------------------------------------------------------------------------------ [instruments]
@pytest.mark.parametrize("key, value, words", [
    ("max_volts", math.inf, ["finite", "NaN and inf"]),
    ("max_volts", math.nan, ["finite"]),
    ("max_volts", 300.0, ["at most 210"]),
    ("max_amps", 0.0, ["must be > 0"]),
    ("compliance_amps", 0.5, ["must be <= max_amps = 0.01"]),
    ("ramp_volts", "fast", ["must be a number"]),
    ("channels", 8, ["unknown key 'instruments.smu_in0.channels'", "with driver = 'keithley2450'",
                     "allowed:"]),
])
def test_source_meter_settings_are_checked(key, value, words):
    doc = example_doc()
    doc["instruments"]["smu_in0"][key] = value
    refused(doc, *words)
    if key != "channels":
        refused(doc, f"instruments.smu_in0.{key}", repr(value))


def test_unknown_driver_lists_the_drivers():
    doc = example_doc()
    doc["instruments"]["smu_in0"]["driver"] = "keithley2600"
    refused(doc, "instruments.smu_in0.driver", "'keithley2600'", "'keithley2400'", "'resistor_board'")


@pytest.mark.parametrize("name, resource, words", [
    ("smu_in0", "ASRL1::INSTR", ["not a resource this link accepts", "GPIB"]),
    ("smu_in0", "TCPIP0::10.0.0.5::5025::SOCKET", ["host '10.0.0.5'", "allow_remote"]),
    ("smu_in0", "TCPIP0::127.0.0.1::5025::SOCKET\n*RST", ["one word of ASCII"]),
    ("smu_in0", "TCPIP0::127.0.0.1::99999::SOCKET", ["port 99999"]),
    ("board", "socket://192.168.1.20:4000", ["host '192.168.1.20'", "allow_remote"]),
    ("board", "loop://", ["socket://host:port"]),
    ("board", "TCPIP0::127.0.0.1::5025::SOCKET", ["a serial device"]),
])
def test_resource_strings_are_checked_against_their_link(name, resource, words):
    doc = example_doc()
    doc["instruments"][name]["resource"] = resource
    refused(doc, f"instruments.{name}.resource", repr(resource), *words)


def test_allow_remote_admits_other_hosts():
    doc = example_doc()
    doc["bench"]["allow_remote"] = True
    doc["instruments"]["smu_in0"]["resource"] = "TCPIP0::10.0.0.5::5025::SOCKET"
    doc["instruments"]["board"]["resource"] = "rfc2217://lab-pc:4000"
    config = config_of(doc)
    assert config.instruments["smu_in0"].link.is_remote
    assert config.instruments["board"].link.host == "lab-pc"
    for resource in ("GPIB0::24::INSTR", "USB0::0x05E6::0x2450::04096218::INSTR",
                     "TCPIP::192.168.0.9::INSTR"):
        doc["instruments"]["smu_in0"]["resource"] = resource
        assert config_of(doc).instruments["smu_in0"].resource == resource
    doc["instruments"]["board"]["resource"] = "/dev/ttyACM0"
    assert config_of(doc).instruments["board"].link.form == "serial device"


def test_instrument_names_and_scanner_count():
    doc = example_doc()
    doc["instruments"]["9lives"] = doc["instruments"].pop("smu_out2")
    refused(doc, "instruments.9lives", "a letter followed by")
    doc = example_doc()
    doc["instruments"]["dmm2"] = dict(doc["instruments"]["dmm"], resource="GPIB0::9::INSTR")
    refused(doc, "instruments.dmm2.driver", "one scanning voltmeter")


@pytest.mark.parametrize("key, value, words", [
    ("volt_range", 5.0, ["'AUTO' or one of 0.1, 1, 10, 100, 300"]),
    ("volt_range", "auto-ish", ["'AUTO' or one of"]),
    ("nplc", 3.0, ["allowed: 0.02, 0.2, 1.0"]),
    ("cards", ["34901A", "34901A", "34901A", "34901A"], ["slots 1-3"]),
    ("cards", ["34999Z"], ["allowed: '34901A', '34902A', '34908A'"]),
])
def test_scanner_settings_are_checked(key, value, words):
    doc = example_doc()
    doc["instruments"]["dmm"][key] = value
    refused(doc, f"instruments.dmm.{key}", *words)


def test_board_channel_count_is_bounded_by_the_firmware():
    doc = example_doc()
    doc["instruments"]["board"]["channels"] = 24
    refused(doc, "instruments.board.channels", "24", "must be <= 16")


# ------------------------------------------------------------------------------ [wiring]
def test_a_mux_channel_must_exist_on_the_card():
    doc = example_doc()
    doc["wiring"]["mux"]["Rh0_1"] = 121
    message = refused(doc)
    assert "bench.toml: wiring.mux.Rh0_1 = 121: the DMM card has channels 101-120" in message
    doc["wiring"]["mux"]["Rh0_1"] = {"channel": 121, "at_a": "HI"}
    refused(doc, "wiring.mux.Rh0_1.channel = 121", "101-120")


def test_two_cards_widen_the_channels():
    doc = example_doc()
    doc["instruments"]["dmm"]["cards"] = ["34901A", "34902A"]
    doc["wiring"]["mux"]["Rh3_0"] = 216
    assert len(config_of(doc).mux) == 21
    doc["wiring"]["mux"]["Rh3_1"] = 217
    refused(doc, "wiring.mux.Rh3_1 = 217", "slot 2 34902A has 201-216")


@pytest.mark.parametrize("table, edge, entry, words", [
    ("mux", "Rh3_0", 101, ["wiring.mux.Rh3_0 = 101", "channel 101 already spans Rh0_0"]),
    ("mux", "Rz1", 101, ["wiring.mux.Rz1 = 'Rz1'", "no edge named"]),
    ("mux", "Rh3_0", {"channel": 105, "at_a": "MID"}, ["wiring.mux.Rh3_0.at_a = 'MID'", "'HI', 'LO'"]),
    ("inputs", "Rh3_0", "dmm", ["wiring.inputs.Rh3_0.smu = 'dmm'", "not a source-measure unit",
                                "smu_in0"]),
    ("inputs", "Rh3_0", "smu_in0", ["wiring.inputs.Rh3_0.smu = 'smu_in0'", "already drives "
                                    "wiring.inputs.Rv0_0"]),
    ("outputs", "Rv0_0", "smu_out9", ["wiring.outputs.Rv0_0.smu = 'smu_out9'"]),
    ("board", "Rh3_0", 16, ["wiring.board.Rh3_0 = 16", "board board has channels 0-15"]),
    ("board", "Rh3_0", 3, ["wiring.board.Rh3_0 = 3", "board channel 3 is already Rh1_0"]),
    ("board", "Rh3_0", {"board": "dmm", "channel": 0}, ["wiring.board.Rh3_0.board = 'dmm'",
                                                         "not a resistor board"]),
])
def test_wiring_entries_are_checked(table, edge, entry, words):
    doc = example_doc()
    doc["wiring"][table][edge] = entry
    refused(doc, *words)


def test_inputs_and_outputs_are_disjoint():
    doc = example_doc()
    doc["instruments"]["smu_out3"] = dict(doc["instruments"]["smu_out2"],
                                          resource="TCPIP0::127.0.0.1::15040::SOCKET")
    doc["wiring"]["outputs"]["Rv0_0"] = "smu_out3"
    refused(doc, "wiring.outputs.Rv0_0", "also an input", "disjoint")


def test_every_output_is_read_by_the_scan():
    doc = example_doc()
    del doc["wiring"]["mux"]["Rv2_3"]
    refused(doc, "wiring.outputs.Rv2_3", "not spanned by a multiplexer channel")


def test_an_input_unit_needs_a_current_limit():
    doc = example_doc()
    del doc["instruments"]["smu_in1"]["compliance_amps"]
    refused(doc, "instruments.smu_in1.compliance_amps", "needs a current limit")


def test_declared_instruments_must_be_wired():
    doc = example_doc()
    doc["instruments"]["spare"] = dict(doc["instruments"]["smu_out2"], resource="GPIB0::7::INSTR")
    refused(doc, "instruments.spare", "declared but not wired")


def test_unknown_wiring_table():
    doc = example_doc()
    doc["wiring"]["switches"] = {}
    refused(doc, "[wiring.switches]", "allowed: inputs, outputs, mux, board")


def test_board_shorthand_needs_a_single_board():
    doc = example_doc()
    doc["instruments"]["board2"] = dict(doc["instruments"]["board"], resource="/dev/ttyACM1")
    doc["wiring"]["board"]["Rh3_0"] = {"board": "board2", "channel": 0}
    doc["calibration"]["board2"] = {}
    refused(doc, "wiring.board.Rh0_0 = 0", "with 2 boards")


# ------------------------------------------------------------------------------ [calibration]
def test_calibration_errors_name_the_channel():
    doc = example_doc()
    doc["calibration"]["board"]["channels"]["16"] = {"end_to_end_ohms": 9000.0}
    refused(doc, "calibration.board.channels.16", "board board has channels 0-15")
    doc = example_doc()
    doc["calibration"]["board"]["channels"]["2"] = {"table": [1.0, 2.0], "wiper_ohms": 3.0}
    refused(doc, "calibration.board.channels.2.wiper_ohms = 3.0", "a table or by the linear model")
    doc = example_doc()
    doc["calibration"]["board"]["channels"]["2"] = {"table": [1.0, 2.0, 3.0], "code_max": 5}
    refused(doc, "calibration.board.channels.2.code_max = 5", "lists codes 0..2")
    doc = example_doc()
    doc["calibration"]["board"]["channels"]["2"] = {"table": [1.0, math.nan]}
    refused(doc, "calibration.board.channels.2.table[1]", "finite")
    doc = example_doc()
    doc["calibration"]["board"]["code_max"] = 0
    refused(doc, "calibration.board.code_max = 0", "above code_min = 0")
    doc = example_doc()
    doc["calibration"]["stranger"] = {}
    refused(doc, "calibration.stranger", "not a resistor board")
    doc = example_doc()
    del doc["calibration"]["board"]
    refused(doc, "missing table [calibration.board]", "code -> ohms")


def test_with_resources_checks_the_new_resource():
    config = config_of(example_doc())
    moved = config.with_resources({"smu_in0": "TCPIP0::127.0.0.1::40000::SOCKET"})
    assert moved.instruments["smu_in0"].link.port == 40000
    with pytest.raises(ConfigError, match="smu_in0: resource 'TCPIP0::8.8.8.8::1::SOCKET'.*allow_remote"):
        config.with_resources({"smu_in0": "TCPIP0::8.8.8.8::1::SOCKET"})


# ------------------------------------------------------------------------------ defects found by users
@pytest.mark.parametrize("resource", ["TCPIP0::127.0.0.1::15025::SOCKET",   # the very same string
                                      "TCPIP::localhost::15025::SOCKET"])   # another spelling
def test_two_instruments_on_one_address_are_refused_naming_both(resource):
    doc = example_doc()
    doc["instruments"]["smu_in1"]["resource"] = resource
    refused(doc, "instruments.smu_in1.resource", repr(resource),
            "same instrument as instruments.smu_in0.resource", "cannot share one address")


def test_a_serial_url_and_a_visa_socket_on_one_port_are_one_address():
    doc = example_doc()
    doc["instruments"]["smu_in1"]["resource"] = "TCPIP0::127.0.0.1::15031::SOCKET"  # the board's
    refused(doc, "instruments.board.resource = 'socket://127.0.0.1:15031'",
            "same instrument as instruments.smu_in1.resource")


def test_gpib_and_usb_addresses_compare_by_what_they_reach():
    doc = example_doc()
    doc["bench"]["allow_remote"] = True
    doc["instruments"]["smu_in0"]["resource"] = "GPIB0::24::INSTR"
    doc["instruments"]["smu_in1"]["resource"] = "GPIB::24"
    refused(doc, "instruments.smu_in1.resource", "same instrument as instruments.smu_in0")
    doc["instruments"]["smu_in1"]["resource"] = "GPIB0::25::INSTR"
    doc["instruments"]["smu_out0"]["resource"] = "USB0::0x05E6::0x2450::04096218::INSTR"
    doc["instruments"]["smu_out1"]["resource"] = "USB::1510::9296::04096218"
    refused(doc, "instruments.smu_out1.resource", "same instrument as instruments.smu_out0")


@pytest.mark.parametrize("key, value, words", [
    ("ramp_volts", 1e-12, ["ramp_volts = 1e-12", "more than 500 steps", "must be >= 0.004"]),
    ("ramp_amps", 1e-15, ["ramp_amps = 1e-15", "more than 500 steps", "must be >= 2e-05"]),
    ("ramp_volts", 3.0, ["ramp_volts = 3.0", "must be <= max_volts = 2.0"]),
    ("timeout_s", 1e300, ["timeout_s = 1e+300", "must be <= 600"]),
    ("timeout_s", 1e-6, ["timeout_s = 1e-06", "must be >= 0.01"]),
    ("max_watts", 50.0, ["max_watts = 50.0", "must be <= 22"]),
    ("measure_timeout_s", 1e9, ["measure_timeout_s = 1000000000.0", "must be <= 3600"]),
])
def test_every_source_limit_is_bounded_at_load(key, value, words):
    doc = example_doc()
    doc["instruments"]["smu_in0"][key] = value
    refused(doc, f"instruments.smu_in0.{key}", *words)


@pytest.mark.parametrize("key, value, words", [
    ("heartbeat_s", 100.0, ["heartbeat_s = 100.0", "must be <= watchdog_s / 2 = 1 s"]),
    ("watchdog_s", 1e6, ["watchdog_s = 1000000.0", "must be <= 60"]),
    ("boot_wait_s", 60.0, ["boot_wait_s = 60.0", "must be <= 10"]),
    ("max_terminal_amps", 0.01, ["max_terminal_amps = 0.01", "must be <= 0.0025"]),
    ("max_terminal_volts", 12.0, ["max_terminal_volts = 12.0", "must be <= 5.5"]),
    ("baudrate", 10**9, ["baudrate = 1000000000", "must be <= 2e+06"]),
])
def test_board_settings_are_bounded_at_load(key, value, words):
    doc = example_doc()
    doc["instruments"]["board"][key] = value
    refused(doc, f"instruments.board.{key}", *words)


def test_dmm_read_timeout_is_bounded_at_load():
    doc = example_doc()
    doc["instruments"]["dmm"]["read_timeout_s"] = 1e300
    refused(doc, "instruments.dmm.read_timeout_s", "must be <= 3600")


@pytest.mark.parametrize("value, words", [
    (1e-9, ["bench.max_total_watts = 1e-09", "must be >= 1e-06"]),
    (1e300, ["must be <= 1000"]),
    (0.004, ["bench.max_total_watts = 0.004", "must be >= 0.005 W", "one ramp step"]),
])
def test_the_total_power_limit_is_bounded_at_load(value, words):
    doc = example_doc()
    doc["bench"]["max_total_watts"] = value
    refused(doc, *words)


def test_the_visa_library_is_a_known_name_or_a_library_file(tmp_path):
    doc = example_doc()
    assert config_of(doc).visa_library == "pyvisa-py"
    doc["bench"]["visa_library"] = "ni-visa"
    assert config_of(doc).visa_library == "ni-visa"
    doc["bench"]["visa_library"] = "keysight"
    refused(doc, "bench.visa_library = 'keysight'", "'pyvisa-py', 'ni-visa'", "absolute path")
    doc["bench"]["visa_library"] = str(tmp_path / "libvisa.so")
    refused(doc, "no such VISA library file")
    (tmp_path / "libvisa.so").write_bytes(b"")
    assert config_of(doc).visa_library == str(tmp_path / "libvisa.so")


def test_a_single_ended_34908a_is_refused_for_channels_whose_lo_would_short_two_nodes():
    doc = example_doc()
    doc["instruments"]["dmm"]["cards"] = ["34908A"]
    refused(doc, "wiring.mux.Rh0_1 = 102", "slot 1 holds a 34908A, single-ended",
            "Channel 102 has its LO at node n0_2", "channel 101 (Rh0_0) at node n0_1",
            "would short them", "Use a 34901A or 34902A")


def test_a_34908a_is_accepted_when_every_channel_has_its_lo_on_one_node():
    doc = example_doc()
    doc["instruments"]["dmm"]["cards"] = ["34908A"]
    # The four edges meeting at node n1_1, every channel's LO there: one common LO, no short.
    doc["wiring"]["mux"] = {"Rh1_0": {"channel": 101, "at_a": "HI"},   # n1_0 -> n1_1: LO at b
                            "Rh1_1": {"channel": 102, "at_a": "LO"},   # n1_1 -> n1_2: LO at a
                            "Rv0_1": {"channel": 103, "at_a": "HI"},   # n0_1 -> n1_1: LO at b
                            "Rv1_1": {"channel": 104, "at_a": "LO"}}   # n1_1 -> n2_1: LO at a
    doc["wiring"]["outputs"] = {"Rv0_1": "smu_out0", "Rh1_0": "smu_out1", "Rh1_1": "smu_out2"}
    for edge in ("Rh1_0", "Rh1_1", "Rv0_1"):
        del doc["wiring"]["board"][edge]
    assert sorted(w.channel for w in config_of(doc).mux) == [101, 102, 103, 104]
