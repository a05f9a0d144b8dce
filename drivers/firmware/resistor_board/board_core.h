// The resistor board's protocol logic (PROTOCOL.md, version 2.0), free of Arduino specifics so
// that the same file runs on the board and in a host build for tests. No heap, no STL, no
// printf: it must fit an ATmega328P (2 KB RAM) and behave identically everywhere.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace rb {

const uint8_t PROTOCOL_MAJOR = 2;
const uint8_t PROTOCOL_MINOR = 0;
const size_t MAX_FRAME = 120;      // characters in a frame, without CR LF
const uint8_t MAX_CHANNELS = 16;   // what the request parser can hold
const size_t MAX_REPLY = 160;      // reply buffer the caller provides (GET? of 16 channels fits)

// CRC-8, polynomial 0x07, init 0x00, no reflection, no final XOR ("123456789" -> 0xF4).
uint8_t crc8(const uint8_t* data, size_t len);

// The potentiometers, as the firmware sees them. The sketch implements this over SPI; the host
// build with an array.
class Potentiometers {
 public:
  virtual ~Potentiometers() {}
  virtual void write(uint8_t channel, uint16_t code) = 0;
  virtual uint16_t read(uint8_t channel) = 0;  // read back from the device, not a cached copy
  // True if any potentiometer is in hardware shutdown (MCP4251: SHDN pin low, or a TCON RxHW
  // bit clear): its wiper is then tied to terminal B whatever its code, a rheostat near 0 ohm.
  virtual bool shutdown() = 0;
};

// Why the microcontroller last started (ATmega328P MCUSR flags).
enum ResetCause : uint8_t {
  RESET_POWER_ON = 0,  // PORF: power applied
  RESET_EXTERNAL = 1,  // EXTRF: the reset pin, e.g. the USB adapter's DTR when the port opens
  RESET_BROWN_OUT = 2, // BORF: the supply sagged
  RESET_WATCHDOG = 3,  // WDRF: the firmware hung and the MCU watchdog restarted it
  RESET_OTHER = 4,     // no flag set (a jump to the reset vector)
};
const char* reset_cause_name(ResetCause cause);

struct BoardConfig {
  const char* maker;
  const char* model;
  const char* serial;
  const char* firmware;
  uint8_t channels;      // <= MAX_CHANNELS
  uint16_t code_max;     // codes are 0..code_max
  uint16_t safe_code;
  uint32_t watchdog_ms;
};

// Collects received bytes into lines. A line longer than the buffer is remembered as too long
// instead of being split, so a garbled flood gives one TOOLONG reply, not many bad frames.
class LineAssembler {
 public:
  LineAssembler() : len_(0), overflow_(false), done_(false) {}
  // Feed one byte; true when a line (ended by LF) is complete. Read it with line()/length()/
  // overflowed() before the next push.
  bool push(char c);
  const char* line() const { return buf_; }
  size_t length() const { return len_; }
  bool overflowed() const { return overflow_; }

 private:
  char buf_[MAX_FRAME + 2];  // a frame, its CR, and a NUL
  size_t len_;
  bool overflow_;
  bool done_;
};

class BoardCore {
 public:
  BoardCore(Potentiometers& pots, const BoardConfig& config);
  // Power-up: every channel to the safe code, watchdog disarmed, tripped clear, BOOTED set
  // (SET is refused until the host acknowledges with CLR). Writes the boot announcement frame
  // "0 BOOT <cause>*CC" (without LF, NUL-terminated) into out and returns its length; the
  // caller sends it as the board's only unsolicited line.
  size_t begin(uint32_t now_ms, ResetCause cause, char* out, size_t cap);
  // Handle one request line (without LF; a trailing CR is ignored). Writes the reply frame
  // (without LF, NUL-terminated) into out and returns its length; 0 means no reply (an empty
  // line). `out` must hold MAX_REPLY characters.
  size_t handle(const char* line, size_t len, bool overflowed, uint32_t now_ms, char* out,
                size_t cap);
  // The watchdog: call often (every loop). Trips if armed and starved longer than the timeout.
  void tick(uint32_t now_ms);
  bool armed() const { return armed_; }
  bool tripped() const { return tripped_; }
  bool booted() const { return booted_; }

 private:
  void go_safe();
  Potentiometers& pots_;
  BoardConfig config_;
  bool armed_;
  bool tripped_;
  bool booted_;
  ResetCause cause_;
  uint32_t last_valid_ms_;
};

}  // namespace rb
