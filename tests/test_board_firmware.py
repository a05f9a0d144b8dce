"""One protocol, two implementations: the same request/reply transcripts run against the
firmware's portable core built for the host with g++ (drivers/firmware/host/host_main.cpp) and
against the Python emulator (simulator/emulators/resistor_board.py), byte for byte.

A transcript is a list of (request, expected reply). Requests are bodies that get their
checksum appended, ``Raw(...)`` lines sent as they are, or harness directives: ``#T <ms>`` sets
the clock, ``#STUCK <ch> <code>`` makes a potentiometer ignore writes, ``#CODES`` prints what
the potentiometers hold, ``#SHDN 0|1`` asserts the potentiometers' hardware shutdown, ``#RESET
<cause>`` restarts the microcontroller. An expected reply is a body (its checksum is appended)
or None. Both implementations announce their power-up first (``0 BOOT POR``), and refuse SET
until the host acknowledges the restart (``ACKNOWLEDGE``).
"""

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulator.emulators.resistor_board import BoardFirmware, crc8, frame
from tests.fake_backend import FakeBackend

FIRMWARE = Path(__file__).resolve().parent.parent / "drivers" / "firmware"
ALL_SAFE = ",".join(f"{k}=256" for k in range(8))
POWER_UP = "0 BOOT POR"
ACKNOWLEDGE = [("1 CLR", "1 OK")]  # the host has verified the restarted board


@dataclass(frozen=True)
class Raw:
    line: str


def codes(**changed) -> str:
    held = {k: 256 for k in range(8)}
    held.update({int(k[1:]): v for k, v in changed.items()})
    return "#CODES " + ",".join(f"{k}={v}" for k, v in sorted(held.items()))


TRANSCRIPTS = {
    "identity_and_info": [
        ("1 *IDN?", "1 OK HWLEARN,RB8-MCP4251,RB0001,2.0.0,2.0"),
        ("2 INFO?", "2 OK CH=8 MIN=0 MAX=256 SAFE=256 WDT=2000"),
    ],
    "power_up_puts_every_channel_at_the_safe_code": [
        ("#CODES", codes()),
        ("9 STAT?", "9 OK ARMED=0 TRIPPED=0 BOOTED=1 RESET=POR SHDN=0"),
    ],
    "a_restarted_board_refuses_codes_until_acknowledged": [
        ("3 SET 0=10", "3 ERR 9 BOOTED"),
        ("#CODES", codes()),
        ("4 STAT?", "4 OK ARMED=0 TRIPPED=0 BOOTED=1 RESET=POR SHDN=0"),
        ("5 CLR", "5 OK"),
        ("6 STAT?", "6 OK ARMED=0 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
        ("7 SET 0=10", "7 OK"),
        ("#RESET WDT", "0 BOOT WDT"),                 # hung firmware, restarted by the MCU
        ("#CODES", codes()),
        ("8 STAT?", "8 OK ARMED=0 TRIPPED=0 BOOTED=1 RESET=WDT SHDN=0"),
        ("9 SET 0=10", "9 ERR 9 BOOTED"),
        ("#RESET EXT", "0 BOOT EXT"),                 # the USB port opened (DTR)
        ("10 STAT?", "10 OK ARMED=0 TRIPPED=0 BOOTED=1 RESET=EXT SHDN=0"),
    ],
    "hardware_shutdown_is_reported_by_stat_and_safe": [
        ("#SHDN 1", None),
        ("3 STAT?", "3 OK ARMED=0 TRIPPED=0 BOOTED=1 RESET=POR SHDN=1"),
        ("4 SAFE", "4 OK SHDN=1"),
        ("#SHDN 0", None),
        ("5 SAFE", "5 OK SHDN=0"),
    ],
    "set_many_channels_then_read_back": ACKNOWLEDGE + [
        ("3 SET 0=10,3=200,7=0", "3 OK"),
        ("4 GET? 3,0", "4 OK 3=200,0=10"),
        ("5 GET?", "5 OK 0=10,1=256,2=256,3=200,4=256,5=256,6=256,7=0"),
        ("#CODES", codes(c0=10, c3=200, c7=0)),
        ("6 STAT?", "6 OK ARMED=1 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
    ],
    "a_refused_set_changes_nothing": ACKNOWLEDGE + [
        ("3 SET 0=5,9=5", "3 ERR 5 CHANNEL"),
        ("4 SET 0=5,1=257", "4 ERR 6 RANGE"),
        ("5 SET 0=5,0=6", "5 ERR 4 ARGS"),
        ("#CODES", codes()),
        ("6 STAT?", "6 OK ARMED=0 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
    ],
    "malformed_requests_get_error_replies": ACKNOWLEDGE + [
        (Raw("1 HB"), "0 ERR 2 FRAME"),
        (Raw("1 HB*00"), "0 ERR 1 CHECKSUM"),
        (Raw("1 HB*ZZ"), "0 ERR 2 FRAME"),
        (Raw("1 HB*1"), "0 ERR 2 FRAME"),
        # lower-case checksum digits are fine
        (Raw(f"1 HB*{crc8(b'1 HB'):02x}"), "1 OK ARMED=0 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
        ("0 HB", "0 ERR 2 FRAME"),
        ("65536 HB", "0 ERR 2 FRAME"),
        ("123456 HB", "0 ERR 2 FRAME"),
        ("65535 HB", "65535 OK ARMED=0 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
        ("007 HB", "7 OK ARMED=0 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
        ("HB", "0 ERR 2 FRAME"),
        ("5 ", "0 ERR 2 FRAME"),
        ("5", "0 ERR 2 FRAME"),
        ("5  HB", "5 ERR 3 UNKNOWN"),
        ("5 hb", "5 ERR 3 UNKNOWN"),
        ("5 RESET", "5 ERR 3 UNKNOWN"),
        ("5 HB now", "5 ERR 4 ARGS"),
        ("5 HB ", "5 ERR 4 ARGS"),
        ("5 SET", "5 ERR 4 ARGS"),
        ("5 SET ", "5 ERR 4 ARGS"),
        ("5 SET 0=1,", "5 ERR 4 ARGS"),
        ("5 SET 0", "5 ERR 4 ARGS"),
        ("5 SET 0=", "5 ERR 4 ARGS"),
        ("5 SET 0=12345", "5 ERR 4 ARGS"),
        ("5 SET 1000=1", "5 ERR 4 ARGS"),
        ("5 SET 0=1 1=2", "5 ERR 4 ARGS"),
        ("5 SET -1=2", "5 ERR 4 ARGS"),
        ("5 GET? ", "5 ERR 4 ARGS"),
        ("5 GET? 1,1", "5 ERR 4 ARGS"),
        ("5 GET? 8", "5 ERR 5 CHANNEL"),
        ("5 GET? 0=1", "5 ERR 4 ARGS"),
        ("5 SET 0=0256", "5 OK"),                        # leading zeros are digits like any
        (Raw("x" * 121), "0 ERR 7 TOOLONG"),
        (Raw("x" * 500), "0 ERR 7 TOOLONG"),
        (Raw(""), None),                                  # empty lines are ignored
        (Raw("\r"), None),
        # CR LF line ends are fine
        (Raw(frame("6 HB") + "\r"), "6 OK ARMED=1 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
        ("7 SET 0=1,1=1,2=1,3=1,4=1,5=1,6=1,7=1", "7 OK"),
    ],
    "frames_up_to_120_characters_are_read_longer_ones_refused": [
        (Raw(frame("9 HB " + "x" * 112)), "9 ERR 4 ARGS"),          # 120: parsed
        (Raw(frame("9 HB " + "x" * 112) + "\r"), "9 ERR 4 ARGS"),   # 120 and a CR
        (Raw(frame("9 HB " + "x" * 113)), "0 ERR 7 TOOLONG"),       # 121
        (Raw(frame("9 HB " + "x" * 114) + "\r"), "0 ERR 7 TOOLONG"),
        # and the next line is fine
        ("10 HB", "10 OK ARMED=0 TRIPPED=0 BOOTED=1 RESET=POR SHDN=0"),
    ],
    "watchdog_trips_after_the_timeout_and_set_is_refused_until_clr": ACKNOWLEDGE + [
        ("3 SET 0=10", "3 OK"),
        ("#T 2000", None),
        ("4 STAT?", "4 OK ARMED=1 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),  # 2000 ms: not yet
        ("#T 4001", None),                             # 2001 ms after the last request
        ("#CODES", codes()),
        ("5 STAT?", "5 OK ARMED=0 TRIPPED=1 BOOTED=0 RESET=POR SHDN=0"),
        ("6 SET 0=10", "6 ERR 8 TRIPPED"),
        ("7 GET? 0", "7 OK 0=256"),
        ("8 CLR", "8 OK"),
        ("9 SET 0=10", "9 OK"),
        ("10 STAT?", "10 OK ARMED=1 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
    ],
    "heartbeats_keep_the_watchdog_fed": ACKNOWLEDGE + [
        ("3 SET 1=77", "3 OK"),
        ("#T 1500", None), ("4 HB", "4 OK ARMED=1 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
        ("#T 3000", None), ("5 HB", "5 OK ARMED=1 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
        ("#T 4500", None), ("6 HB", "6 OK ARMED=1 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
        ("#T 6000", None),
        ("7 STAT?", "7 OK ARMED=1 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
        ("#CODES", codes(c1=77)),
    ],
    "requests_with_bad_checksums_do_not_feed_the_watchdog": ACKNOWLEDGE + [
        ("3 SET 1=77", "3 OK"),
        ("#T 1500", None),
        (Raw("4 HB*00"), "0 ERR 1 CHECKSUM"),
        ("#T 2001", None),
        ("5 STAT?", "5 OK ARMED=0 TRIPPED=1 BOOTED=0 RESET=POR SHDN=0"),
    ],
    "refused_but_well_formed_requests_do_feed_the_watchdog": ACKNOWLEDGE + [
        ("3 SET 1=77", "3 OK"),
        ("#T 1500", None),
        ("4 NOPE", "4 ERR 3 UNKNOWN"),
        ("#T 3000", None),
        ("5 STAT?", "5 OK ARMED=1 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
    ],
    "safe_sends_every_channel_to_the_safe_code_and_disarms": ACKNOWLEDGE + [
        ("3 SET 0=1,5=2", "3 OK"),
        ("4 SAFE", "4 OK SHDN=0"),
        ("#CODES", codes()),
        ("#T 100000", None),
        ("5 STAT?", "5 OK ARMED=0 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
        ("6 SAFE", "6 OK SHDN=0"),
        ("#CODES", codes()),
    ],
    "a_stuck_potentiometer_reads_back_what_it_holds": ACKNOWLEDGE + [
        ("#STUCK 2 100", None),
        ("3 SET 2=50", "3 OK"),
        ("4 GET? 2", "4 OK 2=100"),
    ],
    "the_watchdog_survives_the_millisecond_counter_wrapping": ACKNOWLEDGE + [
        ("#T 4294967000", None),
        ("3 SET 0=1", "3 OK"),
        ("#T 1000", None),                             # 1296 ms later, after the wrap
        ("4 STAT?", "4 OK ARMED=1 TRIPPED=0 BOOTED=0 RESET=POR SHDN=0"),
        ("#T 3001", None),                             # 2001 ms after request 4
        ("5 STAT?", "5 OK ARMED=0 TRIPPED=1 BOOTED=0 RESET=POR SHDN=0"),
    ],
}


def _request_line(request) -> str:
    if isinstance(request, Raw):
        return request.line
    if request.startswith("#"):
        return request
    return frame(request)


def _expected(request, reply):
    if reply is None:
        return None
    if isinstance(request, str) and request == "#CODES":
        return reply
    return frame(reply)


# -- the two implementations ------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.ms = 0

    def __call__(self) -> float:
        return self.ms / 1000.0


def run_python(transcript) -> list[str]:
    backend = FakeBackend()
    clock = FakeClock()
    firmware = BoardFirmware(backend, clock=clock)
    out = firmware.take_unsolicited()
    for request, _ in transcript:
        line = _request_line(request)
        if line.startswith("#RESET "):
            firmware.reboot(line.split()[1])
            out.extend(firmware.take_unsolicited())
        elif line.startswith("#SHDN "):
            firmware.shutdown = line.split()[1] == "1"
        elif line.startswith("#T "):
            clock.ms = int(line.split()[1])
            firmware.tick()
        elif line.startswith("#STUCK "):
            _, ch, code = line.split()
            backend.stuck[int(ch)] = int(code)
        elif line == "#CODES":
            out.append("#CODES " + ",".join(f"{k}={v}" for k, v in firmware.codes().items()))
        else:
            reply = firmware.receive(line)
            if reply is not None:
                out.append(reply)
    return out


@pytest.fixture(scope="session")
def board_host(tmp_path_factory):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ is not installed: the firmware core cannot be built for the host")
    binary = tmp_path_factory.mktemp("firmware") / "board_host"
    # -fno-exceptions -fno-rtti: what avr-gcc gives the sketch, so the core must not need them.
    command = [compiler, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic",
               "-fno-exceptions", "-fno-rtti", f"-I{FIRMWARE / 'resistor_board'}",
               str(FIRMWARE / "host" / "host_main.cpp"),
               str(FIRMWARE / "resistor_board" / "board_core.cpp"), "-o", str(binary)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"g++ failed:\n{' '.join(command)}\n{result.stderr}"
    return binary


def run_cpp(binary, transcript) -> list[str]:
    stdin = "".join(_request_line(request) + "\n" for request, _ in transcript)
    result = subprocess.run([str(binary)], input=stdin.encode("latin-1"), capture_output=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode("latin-1").splitlines()


@pytest.fixture(params=["python-emulator", "g++-firmware"])
def implementation(request):
    if request.param == "python-emulator":
        return run_python
    binary = request.getfixturevalue("board_host")
    return lambda transcript: run_cpp(binary, transcript)


@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
def test_transcript(implementation, name):
    transcript = TRANSCRIPTS[name]
    expected = [frame(POWER_UP)] + [_expected(req, rep) for req, rep in transcript]
    expected = [line for line in expected if line is not None]
    actual = implementation(transcript)
    assert actual == expected, "\n".join(
        f"{'ok ' if a == e else '!! '}expected {e!r:55} got {a!r}"
        for e, a in zip(expected + [None] * len(actual), actual + [None] * len(expected))
        if e is not None or a is not None)


def test_the_example_in_protocol_md_is_what_both_implementations_answer(implementation):
    text = (FIRMWARE / "PROTOCOL.md").read_text()
    pairs = re.findall(r"host:\s+(\S.*)\n\s+board:\s+(\S.*)", text)
    assert len(pairs) >= 3
    for host, board in pairs:
        for line in (host, board):
            body, _, digits = line.rpartition("*")
            assert f"{crc8(body.encode()):02X}" == digits, f"PROTOCOL.md: bad checksum in {line!r}"
    assert implementation([(Raw(h), None) for h, _ in pairs]) == [frame(POWER_UP)] + [b for _, b in pairs]


def test_crc8_check_value():
    assert crc8(b"123456789") == 0xF4
    assert crc8(b"") == 0
