// Protocol logic of the resistor board; see board_core.h and PROTOCOL.md.
#include "board_core.h"

namespace rb {

namespace {

enum Error : uint8_t {
  E_CHECKSUM = 1,
  E_FRAME = 2,
  E_UNKNOWN = 3,
  E_ARGS = 4,
  E_CHANNEL = 5,
  E_RANGE = 6,
  E_TOOLONG = 7,
  E_TRIPPED = 8,
  E_BOOTED = 9,
};

const char* error_name(uint8_t code) {
  switch (code) {
    case E_CHECKSUM: return "CHECKSUM";
    case E_FRAME: return "FRAME";
    case E_UNKNOWN: return "UNKNOWN";
    case E_ARGS: return "ARGS";
    case E_CHANNEL: return "CHANNEL";
    case E_RANGE: return "RANGE";
    case E_TOOLONG: return "TOOLONG";
    case E_TRIPPED: return "TRIPPED";
    default: return "BOOTED";
  }
}

// Appends to a fixed buffer; silently stops at its end (replies are sized well below it).
struct Writer {
  char* buf;
  size_t cap;
  size_t len;
  void put(char c) {
    if (len + 1 < cap) buf[len++] = c;
    buf[len] = '\0';
  }
  void puts(const char* s) {
    while (*s) put(*s++);
  }
  void putu(uint32_t value) {
    char digits[10];
    uint8_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value);
    while (n) put(digits[--n]);
  }
  // Closes the frame with "*" and the checksum of everything written so far.
  size_t finish() {
    static const char hex[] = "0123456789ABCDEF";
    uint8_t crc = crc8(reinterpret_cast<const uint8_t*>(buf), len);
    put('*');
    put(hex[crc >> 4]);
    put(hex[crc & 0x0F]);
    return len;
  }
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Parses 1..max_digits decimal digits at [*p, end); advances *p past them.
bool parse_uint(const char** p, const char* end, uint8_t max_digits, uint32_t* value) {
  uint32_t v = 0;
  uint8_t n = 0;
  while (*p < end && is_digit(**p)) {
    if (++n > max_digits) return false;
    v = v * 10 + static_cast<uint32_t>(**p - '0');
    ++*p;
  }
  if (n == 0) return false;
  *value = v;
  return true;
}

bool equals(const char* s, size_t n, const char* word) {
  size_t i = 0;
  for (; i < n; ++i) {
    if (word[i] == '\0' || word[i] != s[i]) return false;
  }
  return word[i] == '\0';
}

size_t reply_error(Writer& w, uint32_t id, uint8_t code) {
  w.putu(id);
  w.puts(" ERR ");
  w.putu(code);
  w.put(' ');
  w.puts(error_name(code));
  return w.finish();
}

}  // namespace

const char* reset_cause_name(ResetCause cause) {
  switch (cause) {
    case RESET_POWER_ON: return "POR";
    case RESET_EXTERNAL: return "EXT";
    case RESET_BROWN_OUT: return "BOR";
    case RESET_WATCHDOG: return "WDT";
    default: return "OTHER";
  }
}

uint8_t crc8(const uint8_t* data, size_t len) {
  uint8_t crc = 0;
  for (size_t i = 0; i < len; ++i) {
    crc ^= data[i];
    for (uint8_t bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x80) ? static_cast<uint8_t>((crc << 1) ^ 0x07) : static_cast<uint8_t>(crc << 1);
    }
  }
  return crc;
}

bool LineAssembler::push(char c) {
  if (done_) {  // the previous line was handed out: start a new one
    len_ = 0;
    overflow_ = false;
    done_ = false;
  }
  if (c == '\n') {
    buf_[len_] = '\0';
    done_ = true;
    return true;
  }
  if (len_ < MAX_FRAME + 1) {
    buf_[len_++] = c;
  } else {
    overflow_ = true;
  }
  return false;
}

BoardCore::BoardCore(Potentiometers& pots, const BoardConfig& config)
    : pots_(pots),
      config_(config),
      armed_(false),
      tripped_(false),
      booted_(false),
      cause_(RESET_OTHER),
      last_valid_ms_(0) {
  if (config_.channels > MAX_CHANNELS) config_.channels = MAX_CHANNELS;
}

size_t BoardCore::begin(uint32_t now_ms, ResetCause cause, char* out, size_t cap) {
  go_safe();
  armed_ = false;
  tripped_ = false;
  booted_ = true;
  cause_ = cause;
  last_valid_ms_ = now_ms;
  Writer w = {out, cap, 0};
  out[0] = '\0';
  w.puts("0 BOOT ");
  w.puts(reset_cause_name(cause));
  return w.finish();
}

void BoardCore::go_safe() {
  for (uint8_t ch = 0; ch < config_.channels; ++ch) pots_.write(ch, config_.safe_code);
}

void BoardCore::tick(uint32_t now_ms) {
  // Unsigned subtraction stays right when millis() wraps after 49.7 days.
  if (armed_ && static_cast<uint32_t>(now_ms - last_valid_ms_) > config_.watchdog_ms) {
    go_safe();
    armed_ = false;
    tripped_ = true;
  }
}

size_t BoardCore::handle(const char* line, size_t len, bool overflowed, uint32_t now_ms,
                         char* out, size_t cap) {
  Writer w = {out, cap, 0};
  out[0] = '\0';
  tick(now_ms);  // a request that arrives after the timeout does not undo the trip
  if (len > 0 && line[len - 1] == '\r') --len;
  if (len == 0 && !overflowed) return 0;
  if (overflowed || len > MAX_FRAME) return reply_error(w, 0, E_TOOLONG);

  // Frame: body "*" two hex digits.
  size_t star = len;
  for (size_t i = len; i > 0; --i) {
    if (line[i - 1] == '*') {
      star = i - 1;
      break;
    }
  }
  if (star == len || len - star != 3) return reply_error(w, 0, E_FRAME);
  int hi = hex_value(line[star + 1]);
  int lo = hex_value(line[star + 2]);
  if (hi < 0 || lo < 0) return reply_error(w, 0, E_FRAME);
  if (crc8(reinterpret_cast<const uint8_t*>(line), star) != static_cast<uint8_t>(hi * 16 + lo)) {
    return reply_error(w, 0, E_CHECKSUM);
  }

  // Id, one space, a verb.
  const char* p = line;
  const char* end = line + star;
  uint32_t id = 0;
  if (!parse_uint(&p, end, 5, &id) || id < 1 || id > 65535 || p >= end || *p != ' ' ||
      p + 1 >= end) {
    return reply_error(w, 0, E_FRAME);
  }
  ++p;
  last_valid_ms_ = now_ms;  // a well-formed request: the host is alive

  const char* verb = p;
  while (p < end && *p != ' ') ++p;
  size_t verb_len = static_cast<size_t>(p - verb);
  bool has_args = p < end;  // a space follows the verb
  const char* args = has_args ? p + 1 : end;

  bool is_set = equals(verb, verb_len, "SET");
  bool is_get = equals(verb, verb_len, "GET?");
  bool bare = equals(verb, verb_len, "*IDN?") || equals(verb, verb_len, "INFO?") ||
              equals(verb, verb_len, "HB") || equals(verb, verb_len, "SAFE") ||
              equals(verb, verb_len, "STAT?") || equals(verb, verb_len, "CLR");
  if (!is_set && !is_get && !bare) return reply_error(w, id, E_UNKNOWN);
  if (bare && has_args) return reply_error(w, id, E_ARGS);

  if (bare) {
    w.putu(id);
    w.puts(" OK");
    if (equals(verb, verb_len, "*IDN?")) {
      w.put(' ');
      w.puts(config_.maker);
      w.put(',');
      w.puts(config_.model);
      w.put(',');
      w.puts(config_.serial);
      w.put(',');
      w.puts(config_.firmware);
      w.put(',');
      w.putu(PROTOCOL_MAJOR);
      w.put('.');
      w.putu(PROTOCOL_MINOR);
    } else if (equals(verb, verb_len, "INFO?")) {
      w.puts(" CH=");
      w.putu(config_.channels);
      w.puts(" MIN=0 MAX=");
      w.putu(config_.code_max);
      w.puts(" SAFE=");
      w.putu(config_.safe_code);
      w.puts(" WDT=");
      w.putu(config_.watchdog_ms);
    } else if (equals(verb, verb_len, "SAFE")) {
      go_safe();
      armed_ = false;
      w.puts(pots_.shutdown() ? " SHDN=1" : " SHDN=0");
    } else if (equals(verb, verb_len, "STAT?") || equals(verb, verb_len, "HB")) {
      // HB feeds the watchdog (above) and reports the status, so the host's heartbeat also
      // learns of a trip or a restart.
      w.puts(armed_ ? " ARMED=1" : " ARMED=0");
      w.puts(tripped_ ? " TRIPPED=1" : " TRIPPED=0");
      w.puts(booted_ ? " BOOTED=1" : " BOOTED=0");
      w.puts(" RESET=");
      w.puts(reset_cause_name(cause_));
      w.puts(pots_.shutdown() ? " SHDN=1" : " SHDN=0");
    } else if (equals(verb, verb_len, "CLR")) {
      tripped_ = false;
      booted_ = false;
    }
    return w.finish();
  }

  // SET and GET?: parse the whole list before touching anything.
  uint32_t channels[MAX_CHANNELS];
  uint32_t codes[MAX_CHANNELS];
  uint8_t n = 0;
  if (is_get && !has_args) {
    for (uint8_t ch = 0; ch < config_.channels; ++ch) channels[n++] = ch;
  } else {
    if (args >= end) return reply_error(w, id, E_ARGS);
    while (true) {
      if (n == MAX_CHANNELS) return reply_error(w, id, E_ARGS);
      if (!parse_uint(&args, end, 3, &channels[n])) return reply_error(w, id, E_ARGS);
      if (is_set) {
        if (args >= end || *args != '=') return reply_error(w, id, E_ARGS);
        ++args;
        if (!parse_uint(&args, end, 4, &codes[n])) return reply_error(w, id, E_ARGS);
      }
      for (uint8_t k = 0; k < n; ++k) {
        if (channels[k] == channels[n]) return reply_error(w, id, E_ARGS);
      }
      ++n;
      if (args == end) break;
      if (*args != ',') return reply_error(w, id, E_ARGS);
      ++args;
    }
  }
  for (uint8_t k = 0; k < n; ++k) {
    if (channels[k] >= config_.channels) return reply_error(w, id, E_CHANNEL);
  }
  if (is_set) {
    for (uint8_t k = 0; k < n; ++k) {
      if (codes[k] > config_.code_max) return reply_error(w, id, E_RANGE);
    }
    if (tripped_) return reply_error(w, id, E_TRIPPED);
    if (booted_) return reply_error(w, id, E_BOOTED);
    for (uint8_t k = 0; k < n; ++k) {
      pots_.write(static_cast<uint8_t>(channels[k]), static_cast<uint16_t>(codes[k]));
    }
    armed_ = true;
    w.putu(id);
    w.puts(" OK");
    return w.finish();
  }
  w.putu(id);
  w.puts(" OK ");
  for (uint8_t k = 0; k < n; ++k) {
    if (k) w.put(',');
    w.putu(channels[k]);
    w.put('=');
    w.putu(pots_.read(static_cast<uint8_t>(channels[k])));
  }
  return w.finish();
}

}  // namespace rb
