// std::error_code for the core's errors, so the Linux shells can return
// std::error_code without the core knowing about <system_error>.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>

#include "resilink/core/error.h"

namespace resilink {

class CoreErrorCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "resilink"; }
  std::string message(int value) const override {
    auto e = static_cast<core::Error>(value);
    return std::string(core::error_name(e)) + ": " + core::error_description(e);
  }
};

inline const std::error_category& core_category() {
  static const CoreErrorCategory category;
  return category;
}

}  // namespace resilink

namespace resilink::core {
// Beside the enum, where std::error_code's constructor finds it by ADL.
inline std::error_code make_error_code(Error e) { return {static_cast<int>(e), core_category()}; }
}  // namespace resilink::core

namespace resilink {
using core::make_error_code;

// Monotonic milliseconds: the clock every shell passes to the engine.
inline uint64_t monotonic_ms() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

}  // namespace resilink

template <>
struct std::is_error_code_enum<resilink::core::Error> : std::true_type {};
