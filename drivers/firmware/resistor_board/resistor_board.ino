// Resistor board firmware: eight rheostat channels on four MCP4251-103 dual digital
// potentiometers, driven over SPI, commanded over USB serial (PROTOCOL.md, version 1.0).
//
// Everything about the protocol lives in board_core.cpp (portable, tested on the host with g++);
// this file only binds it to the Arduino: Serial, SPI, millis().
//
// MCP4251-103 facts used here (Microchip DS22060, "7/8-Bit Single/Dual SPI Digital POT with
// Volatile Memory"):
//   - 8-bit: 256 resistors, 257 wiper positions, codes 0x000..0x100 (0..256);
//   - end-to-end resistance R_AB = 10 kOhm (the -103 option), +-20 %;
//   - typical wiper resistance R_W = 75 Ohm;
//   - SPI modes 0,0 and 1,1, up to 10 MHz; 16-bit commands: 4 address bits, 2 command bits
//     (00 write data, 11 read data), 10 data bits; volatile wiper 0 at address 00h, wiper 1 at
//     01h; on a read the device shifts the register's 9 data bits out on SDO;
//   - power-on reset puts the wipers at mid-scale (0x80): setup() moves them to the safe code
//     at once.
// Wiring: channel 2k is wiper 0 and channel 2k+1 wiper 1 of chip k; each channel is used as a
// rheostat between W and B, R = code / 256 * R_AB + R_W, so the safe code 256 is the largest
// resistance (the smallest current through the network).

#include <SPI.h>

#include "board_core.h"

namespace {

const uint8_t CHIP_SELECT[4] = {10, 9, 8, 7};  // one per MCP4251, active low
const uint32_t SPI_HZ = 1000000;                // well below the 10 MHz maximum: long board wires
const uint16_t CMD_WRITE = 0x0 << 10;
const uint16_t CMD_READ = 0x3 << 10;
const uint16_t DATA_MASK = 0x01FF;              // 9 data bits: 0..256

// Give each board its own serial number when flashing it.
const rb::BoardConfig CONFIG = {
    "HWLEARN",     // maker
    "RB8-MCP4251", // model
    "RB0001",      // serial
    "1.0.0",       // firmware
    8,             // channels
    256,           // code_max
    256,           // safe code: full scale, the largest rheostat resistance
    2000,          // watchdog timeout, ms
};

class Mcp4251Chain : public rb::Potentiometers {
 public:
  void begin() {
    for (uint8_t i = 0; i < 4; ++i) {
      pinMode(CHIP_SELECT[i], OUTPUT);
      digitalWrite(CHIP_SELECT[i], HIGH);
    }
    SPI.begin();
  }
  void write(uint8_t channel, uint16_t code) override {
    transfer(channel, CMD_WRITE | (code & 0x03FF));
  }
  uint16_t read(uint8_t channel) override { return transfer(channel, CMD_READ) & DATA_MASK; }

 private:
  uint16_t transfer(uint8_t channel, uint16_t command_bits) {
    uint16_t address = static_cast<uint16_t>(channel & 1) << 12;  // wiper 0 -> 00h, 1 -> 01h
    uint8_t cs = CHIP_SELECT[channel >> 1];
    SPI.beginTransaction(SPISettings(SPI_HZ, MSBFIRST, SPI_MODE0));
    digitalWrite(cs, LOW);
    uint16_t reply = SPI.transfer16(address | command_bits);
    digitalWrite(cs, HIGH);
    SPI.endTransaction();
    return reply;
  }
};

Mcp4251Chain pots;
rb::BoardCore core(pots, CONFIG);
rb::LineAssembler assembler;
char reply[rb::MAX_REPLY];

}  // namespace

void setup() {
  pots.begin();
  core.begin(millis());  // every channel to the safe code before anything else
  Serial.begin(115200);
}

void loop() {
  while (Serial.available() > 0) {
    if (assembler.push(static_cast<char>(Serial.read()))) {
      size_t n = core.handle(assembler.line(), assembler.length(), assembler.overflowed(),
                             millis(), reply, sizeof reply);
      if (n > 0) {
        Serial.write(reinterpret_cast<const uint8_t*>(reply), n);
        Serial.write('\n');
      }
    }
  }
  core.tick(millis());
}
