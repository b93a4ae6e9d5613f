// Shared by every fuzz target: reading a structured input, and failing loudly.
//
// An invariant failure prints which invariant broke and aborts, so libFuzzer
// (and the plain replay runner, fuzz/replay_main.cpp) records a crash with the
// input that caused it.
#ifndef RESILINK_FUZZ_SUPPORT_H
#define RESILINK_FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, invariant)                                                       \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      fprintf(stderr, "invariant failed: %s\n  check: %s\n  at %s:%d\n", invariant, #cond, \
              __FILE__, __LINE__);                                                        \
      abort();                                                                            \
    }                                                                                     \
  } while (0)

namespace resilink::fuzz {

// Consumes a fuzz input front to back. Past the end every read yields zero, so
// a harness never needs to check lengths; it stops when empty() says so.
class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return empty() ? 0 : size_ - pos_; }
  uint8_t byte() { return empty() ? 0 : data_[pos_++]; }
  uint16_t u16() {
    uint16_t hi = byte();
    return static_cast<uint16_t>(hi << 8 | byte());
  }
  // Up to n bytes, pointed to in place; returns how many.
  size_t take(size_t n, const uint8_t** out) {
    if (n > remaining()) n = remaining();
    *out = data_ + pos_;
    pos_ += n;
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace resilink::fuzz

#endif
