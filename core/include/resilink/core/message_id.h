// Message ids (mids) of wire protocol v1 and the receiver's seen-map.
//
// A sender numbers its messages 0 (only the first after boot), then 1..255,
// 1..255, ... The receiver remembers which of the 256 ids it has accepted in a
// 32-byte bitmap. Accepting mid m also forgets the 8 ids in the bitmap byte
// 128 ids ahead of m, so an id becomes new again long before the sender's
// counter wraps back to it. A message with mid 0 means the sender restarted,
// and the map is cleared before it is accepted.
#ifndef RESILINK_CORE_MESSAGE_ID_H
#define RESILINK_CORE_MESSAGE_ID_H

#include <stdint.h>
#include <string.h>

namespace resilink::core {

class MidSequence {
 public:
  uint8_t peek() const { return next_; }
  uint8_t take() {
    uint8_t mid = next_;
    next_ = next_ == 255 ? 1 : static_cast<uint8_t>(next_ + 1);
    return mid;
  }

 private:
  uint8_t next_ = 0;
};

// Number of takes from mid `from` to reach mid `to` in the 1..255 cycle.
inline unsigned mid_distance(uint8_t from, uint8_t to) {
  unsigned f = from, t = to;
  return t >= f ? t - f : t + 255 - f;
}

class SeenMap {
 public:
  bool contains(uint8_t mid) const { return (bits_[mid >> 3] & (1u << (mid & 7))) != 0; }

  // Records mid as seen and forgets the ids 128 ahead of it.
  void accept(uint8_t mid) {
    unsigned byte = mid >> 3;
    bits_[byte] = static_cast<uint8_t>(bits_[byte] | (1u << (mid & 7)));
    advance(mid);
  }

  // The peer has sent mid (taken or not): ids 128 ahead of it (so 128
  // behind) are from its previous lap around the id space; forget them, or a
  // new message reusing one would be taken for a duplicate and dropped. A mid
  // up to 127 ahead of the newest one seen moves the map over the whole gap:
  // the mids in between were lost with a connection, and the ids 128 ahead of
  // them are stale too. A mid behind it (a resend) moves nothing further.
  void advance(uint8_t mid) {
    unsigned gap = newest_ < 0 ? 1 : mid_distance(static_cast<uint8_t>(newest_), mid);
    if (gap - 1 < 127)
      newest_ = mid;
    else
      gap = 1;
    do {
      bits_[((mid >> 3) + 16) & 31] = 0;
      mid = mid == 1 ? 255 : static_cast<uint8_t>(mid - 1);
    } while (--gap);
  }

  void clear() {
    memset(bits_, 0, sizeof bits_);
    newest_ = -1;
  }

 private:
  uint8_t bits_[32] = {};
  int16_t newest_ = -1;  // the newest mid passed; -1: none since clear()
};

// Two lowercase hex digits for a mid.
inline void format_mid(uint8_t mid, uint8_t out[2]) {
  static const char digits[] = "0123456789abcdef";
  out[0] = static_cast<uint8_t>(digits[mid >> 4]);
  out[1] = static_cast<uint8_t>(digits[mid & 15]);
}

// Parses two hex digits (either case). Returns false if either is not hex.
inline bool parse_mid(const uint8_t in[2], uint8_t* mid) {
  unsigned value = 0;
  for (int i = 0; i < 2; ++i) {
    uint8_t c = in[i];
    unsigned digit;
    if (c >= '0' && c <= '9') digit = c - '0';
    else if (c >= 'a' && c <= 'f') digit = c - 'a' + 10u;
    else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10u;
    else return false;
    value = value * 16 + digit;
  }
  *mid = static_cast<uint8_t>(value);
  return true;
}

}  // namespace resilink::core

#endif
