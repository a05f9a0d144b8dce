// Host build of the resistor board firmware core, for tests (tests/test_board_firmware.py).
//
// Reads stdin byte by byte through the same LineAssembler the board uses and writes each reply
// line to stdout. At start it powers the core up and prints its boot announcement, as the board
// sends it. Lines starting with '#' are directives to this harness, never sent to the core:
//   #T <ms>              set the clock (millis()) and run the watchdog tick
//   #STUCK <ch> <code>   potentiometer <ch> ignores writes and reads back <code> (a faulty part)
//   #CODES               print every channel's code as "#CODES c=v,..." (the devices' state)
//   #SHDN <0|1>          release or assert the potentiometers' hardware shutdown
//   #RESET <cause>       the microcontroller restarts (POR, EXT, BOR, WDT or OTHER): the core
//                        powers up again and prints its boot announcement
// Build: g++ -std=c++11 -Wall -Wextra -Werror -I../resistor_board host_main.cpp
//        ../resistor_board/board_core.cpp -o board_host
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "board_core.h"

namespace {

class FakePots : public rb::Potentiometers {
 public:
  FakePots() : shutdown_(false) {
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
  bool shutdown() override { return shutdown_; }
  void stick(int channel, int code) { stuck_[channel] = code; }
  void set_shutdown(bool on) { shutdown_ = on; }

 private:
  uint16_t codes_[rb::MAX_CHANNELS];
  int stuck_[rb::MAX_CHANNELS];
  bool shutdown_;
};

bool parse_cause(const char* name, rb::ResetCause* cause) {
  static const rb::ResetCause all[] = {rb::RESET_POWER_ON, rb::RESET_EXTERNAL,
                                       rb::RESET_BROWN_OUT, rb::RESET_WATCHDOG, rb::RESET_OTHER};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) {
    if (std::strcmp(name, rb::reset_cause_name(all[i])) == 0) {
      *cause = all[i];
      return true;
    }
  }
  return false;
}

void emit(const char* line, size_t n) {
  std::fwrite(line, 1, n, stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  // Optional arguments: channels, watchdog ms (defaults as on the board).
  uint8_t channels = argc > 1 ? static_cast<uint8_t>(std::atoi(argv[1])) : 8;
  uint32_t watchdog_ms = argc > 2 ? static_cast<uint32_t>(std::atol(argv[2])) : 2000;
  rb::BoardConfig config = {"HWLEARN", "RB8-MCP4251", "RB0001", "2.0.0",
                            channels, 256, 256, watchdog_ms};
  FakePots pots;
  rb::BoardCore core(pots, config);
  rb::LineAssembler assembler;
  uint32_t now = 0;
  char reply[rb::MAX_REPLY];
  emit(reply, core.begin(now, rb::RESET_POWER_ON, reply, sizeof reply));
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
      char name[16];
      rb::ResetCause cause;
      if (std::sscanf(directive, "#RESET %15s", name) == 1 && parse_cause(name, &cause)) {
        emit(reply, core.begin(now, cause, reply, sizeof reply));
        continue;
      } else if (std::sscanf(directive, "#SHDN %ld", &a) == 1) {
        pots.set_shutdown(a != 0);
      } else if (std::sscanf(directive, "#T %ld", &a) == 1) {
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
      if (n > 0) emit(reply, n);
    }
  }
  return 0;
}
