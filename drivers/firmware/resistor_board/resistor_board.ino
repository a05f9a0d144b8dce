// Resistor board firmware (RB16-MCP4251): sixteen rheostat channels on eight MCP4251-103 dual
// digital potentiometers, driven over SPI, commanded over USB serial (PROTOCOL.md, version 2.0).
//
// Everything about the protocol lives in board_core.cpp (portable, tested on the host with g++);
// this file only binds it to the Arduino: Serial, SPI, millis(), the MCU's watchdog and reset
// flags, and the SHDN line.
//
// MCP4251-103 facts used here (Microchip DS22060, "7/8-Bit Single/Dual SPI Digital POT with
// Volatile Memory"):
//   - 8-bit: 256 resistors, 257 wiper positions, codes 0x000..0x100 (0..256);
//   - end-to-end resistance R_AB = 10 kOhm (the -103 option), +-20 %;
//   - typical wiper resistance R_W = 75 Ohm;
//   - terminals A, B and W must stay within VSS..VDD (absolute maximum -0.3 V .. VDD + 0.3 V)
//     and carry at most 2.5 mA: the bench file's max_terminal_volts and max_terminal_amps;
//   - SPI modes 0,0 and 1,1, up to 10 MHz; 16-bit commands: 4 address bits, 2 command bits
//     (00 write data, 11 read data), 10 data bits; volatile wiper 0 at address 00h, wiper 1 at
//     01h, TCON at 04h; on a read the device shifts the register's 9 data bits out on SDO;
//   - hardware shutdown: with the SHDN pin low (or a TCON RxHW bit clear) terminal A is
//     disconnected and the wiper is connected to terminal B, so a rheostat between W and B reads
//     about 0 Ohm whatever its code: the board reports it (STAT? and SAFE: SHDN=1) and the host
//     treats it as unsafe;
//   - power-on reset puts the wipers at mid-scale (0x80): setup() moves them to the safe code
//     at once.
// Wiring: channel 2k is wiper 0 and channel 2k+1 wiper 1 of chip k; each channel is used as a
// rheostat between W and B, R = code / 256 * R_AB + R_W, so the safe code 256 is the largest
// resistance (the smallest current through the network). The SHDN pins of all chips are tied
// together to SHDN_PIN, pulled up to VDD by a resistor (so a floating line during an MCU reset
// keeps the potentiometers out of shutdown); the firmware only reads it.
//
// Supervision: the host's heartbeat feeds the protocol watchdog (board_core: no valid request
// for WDT ms after a SET sends every channel to the safe code). The MCU's own watchdog (500 ms)
// restarts firmware that hangs; setup() then writes the safe code before anything else, and the
// boot announcement ("0 BOOT WDT") and STAT? tell the host why the board restarted. An
// Arduino also restarts when its USB port is opened (DTR pulses the reset pin, the bootloader
// then waits about a second): the host waits for the announcement before its first request.

#include <SPI.h>
#include <avr/wdt.h>

#include "board_core.h"

// MCUSR as the bootloader left it. Optiboot (5 and later) clears MCUSR before starting the
// sketch and hands the value over in r2, which must be saved before the C runtime uses it.
extern "C" {
uint8_t saved_r2 __attribute__((section(".noinit")));
uint8_t saved_mcusr __attribute__((section(".noinit")));
void keep_r2() __attribute__((naked, used, section(".init0")));
void keep_r2() { __asm__ __volatile__("sts saved_r2, r2\n"); }
// After a watchdog reset the watchdog stays enabled at its shortest timeout: clear the flags and
// switch it off before the C runtime, as avr-libc recommends; setup() enables it again.
void keep_mcusr() __attribute__((naked, used, section(".init3")));
void keep_mcusr() {
  saved_mcusr = MCUSR;
  MCUSR = 0;
  wdt_disable();
}
}

namespace {

const uint8_t CHIPS = 8;
const uint8_t CHIP_SELECT[CHIPS] = {10, 9, 8, 7, 6, 5, 4, 3};  // one per MCP4251, active low
const uint8_t SHDN_PIN = A0;                   // the chips' SHDN line, read only (low: shutdown)
const uint32_t SPI_HZ = 1000000;               // well below the 10 MHz maximum: long board wires
const uint16_t CMD_WRITE = 0x0 << 10;
const uint16_t CMD_READ = 0x3 << 10;
const uint16_t DATA_MASK = 0x01FF;             // 9 data bits: 0..256
const uint16_t TCON_ADDRESS = 0x4;
const uint16_t TCON_R0HW = 1 << 3;             // 0: pot 0 in shutdown
const uint16_t TCON_R1HW = 1 << 7;             // 0: pot 1 in shutdown

// Give each board its own serial number when flashing it. The example bench
// (examples/virtual-bench.toml) names this build: channels = 16, model = "RB16-MCP4251".
const rb::BoardConfig CONFIG = {
    "HWLEARN",      // maker
    "RB16-MCP4251", // model
    "RB0001",       // serial
    "2.0.0",        // firmware
    2 * CHIPS,      // channels
    256,            // code_max
    256,            // safe code: full scale, the largest rheostat resistance
    2000,           // protocol watchdog timeout, ms
};

class Mcp4251Chain : public rb::Potentiometers {
 public:
  void begin() {
    pinMode(SHDN_PIN, INPUT);
    for (uint8_t i = 0; i < CHIPS; ++i) {
      pinMode(CHIP_SELECT[i], OUTPUT);
      digitalWrite(CHIP_SELECT[i], HIGH);
    }
    SPI.begin();
  }
  void write(uint8_t channel, uint16_t code) override {
    transfer(channel >> 1, static_cast<uint16_t>(channel & 1), CMD_WRITE | (code & 0x03FF));
  }
  uint16_t read(uint8_t channel) override {
    return transfer(channel >> 1, static_cast<uint16_t>(channel & 1), CMD_READ) & DATA_MASK;
  }
  bool shutdown() override {
    if (digitalRead(SHDN_PIN) == LOW) return true;
    for (uint8_t chip = 0; chip < CHIPS; ++chip) {
      uint16_t tcon = transfer(chip, TCON_ADDRESS, CMD_READ) & DATA_MASK;
      if ((tcon & TCON_R0HW) == 0 || (tcon & TCON_R1HW) == 0) return true;
    }
    return false;
  }

 private:
  uint16_t transfer(uint8_t chip, uint16_t address, uint16_t command_bits) {
    uint8_t cs = CHIP_SELECT[chip];
    SPI.beginTransaction(SPISettings(SPI_HZ, MSBFIRST, SPI_MODE0));
    digitalWrite(cs, LOW);
    uint16_t reply = SPI.transfer16(static_cast<uint16_t>(address << 12) | command_bits);
    digitalWrite(cs, HIGH);
    SPI.endTransaction();
    return reply;
  }
};

rb::ResetCause reset_cause() {
  uint8_t flags = saved_mcusr ? saved_mcusr : saved_r2;
  if (flags & _BV(WDRF)) return rb::RESET_WATCHDOG;
  if (flags & _BV(BORF)) return rb::RESET_BROWN_OUT;
  if (flags & _BV(EXTRF)) return rb::RESET_EXTERNAL;
  if (flags & _BV(PORF)) return rb::RESET_POWER_ON;
  return rb::RESET_OTHER;
}

Mcp4251Chain pots;
rb::BoardCore core(pots, CONFIG);
rb::LineAssembler assembler;
char reply[rb::MAX_REPLY];

void send_line(size_t n) {
  Serial.write(reinterpret_cast<const uint8_t*>(reply), n);
  Serial.write('\n');
}

}  // namespace

void setup() {
  pots.begin();
  // Every channel to the safe code before anything else; the announcement is sent once the port
  // is up.
  size_t n = core.begin(millis(), reset_cause(), reply, sizeof reply);
  Serial.begin(115200);
  send_line(n);
  wdt_enable(WDTO_500MS);
}

void loop() {
  wdt_reset();  // a loop that stops coming here (a hang) is restarted by the MCU watchdog
  while (Serial.available() > 0) {
    wdt_reset();
    if (assembler.push(static_cast<char>(Serial.read()))) {
      size_t n = core.handle(assembler.line(), assembler.length(), assembler.overflowed(),
                             millis(), reply, sizeof reply);
      if (n > 0) send_line(n);
    }
  }
  core.tick(millis());
}
