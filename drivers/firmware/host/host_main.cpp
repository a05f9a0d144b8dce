// Host build of the resistor board firmware core, for tests (tests/test_board_firmware.py).
//
// Reads stdin byte by byte through the same LineAssembler the board uses and writes each reply
// line to stdout. Lines starting with '#' are directives to this harness, never sent to the core:
//   #T <ms>              set the clock (millis()) and run the watchdog tick
//   #STUCK <ch> <code>   potentiometer <ch> ignores writes and reads back <code> (a faulty part)
//   #CODES               print every channel's code as "#CODES c=v,..." (the devices' state)
// Build: g++ -std=c++11 -Wall -Wextra -Werror -I../resistor_board host_main.cpp
//        ../resistor_board/board_core.cpp -o board_host
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "board_core.h"

namespace {

class FakePots : public rb::Potentiometers {
 public:
  FakePots() {
    for (int i = 0; i < rb::MAX_CHANNELS; ++i) {
      codes_[i] = 0x80;  // the MCP4251's power-on mid-scale
      stuck_[i] = -1;
    }
  }
  void write(uint8_t channel, uint16_t code) override {
    if (stuck_[channel] < 0) codes_[channel] = code;
  }
  uint16_t read(uint8_t channel) override {
    return stuck_[channel] >= 0 ? static_cast<uint16_t>(stuck_[channel]) : codes_[channel];
  }
  void stick(int channel, int code) { stuck_[channel] = code; }

 private:
  uint16_t codes_[rb::MAX_CHANNELS];
  int stuck_[rb::MAX_CHANNELS];
};

}  // namespace

int main(int argc, char** argv) {
  // Optional arguments: channels, watchdog ms (defaults as on the board).
  uint8_t channels = argc > 1 ? static_cast<uint8_t>(std::atoi(argv[1])) : 8;
  uint32_t watchdog_ms = argc > 2 ? static_cast<uint32_t>(std::atol(argv[2])) : 2000;
  rb::BoardConfig config = {"HWLEARN", "RB8-MCP4251", "RB0001", "1.0.0",
                            channels, 256, 256, watchdog_ms};
  FakePots pots;
  rb::BoardCore core(pots, config);
  rb::LineAssembler assembler;
  uint32_t now = 0;
  core.begin(now);
  char reply[rb::MAX_REPLY];
  char directive[256];
  size_t dlen = 0;
  bool in_directive = false, at_line_start = true;

  int c;
  while ((c = std::getchar()) != EOF) {
    if (at_line_start && c == '#') in_directive = true;
    at_line_start = (c == '\n');
    if (in_directive) {
      if (c != '\n') {
        if (dlen + 1 < sizeof directive) directive[dlen++] = static_cast<char>(c);
        continue;
      }
      directive[dlen] = '\0';
      dlen = 0;
      in_directive = false;
      long a = 0, b = 0;
      if (std::sscanf(directive, "#T %ld", &a) == 1) {
        now = static_cast<uint32_t>(a);
        core.tick(now);
      } else if (std::sscanf(directive, "#STUCK %ld %ld", &a, &b) == 2) {
        pots.stick(static_cast<int>(a), static_cast<int>(b));
      } else if (std::strcmp(directive, "#CODES") == 0) {
        std::printf("#CODES ");
        for (uint8_t ch = 0; ch < channels; ++ch) {
          std::printf(ch ? ",%u=%u" : "%u=%u", ch, pots.read(ch));
        }
        std::printf("\n");
      } else {
        std::fprintf(stderr, "unknown directive %s\n", directive);
        return 2;
      }
      std::fflush(stdout);
      continue;
    }
    if (assembler.push(static_cast<char>(c))) {
      size_t n = core.handle(assembler.line(), assembler.length(), assembler.overflowed(), now,
                             reply, sizeof reply);
      if (n > 0) {
        std::fwrite(reply, 1, n, stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
