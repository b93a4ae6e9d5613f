// Options of a write and the payload convention shared by the server's
// Connection and the POSIX Client.
#pragma once

#include <string_view>

#include "resilink/core/engine.h"

namespace resilink {

// Like micropython-iot, a write may end its line with '\n'; one is dropped.
inline std::string_view strip_trailing_newline(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  return line;
}

inline core::Error validate_payload(std::string_view payload) {
  return core::validate_payload(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
}

struct WriteOptions {
  bool qos = true;   // keep until acknowledged, retransmit, deliver exactly once
  bool wait = true;  // qos: wait until nothing else is in flight (keeps order)
};

}  // namespace resilink
