// std::error_code outcomes only the blocking client shell has (a timeout, a
// call before start()). The core's errors come from resilink/error_code.h.
#ifndef RESILINK_CLIENT_ERROR_H
#define RESILINK_CLIENT_ERROR_H

#include <system_error>

#include "resilink/error_code.h"

namespace resilink {

enum class ClientErrc {
  // Nothing was queued: the link did not make room before the timeout.
  timed_out = 1,
  // The message was queued but its ACK did not arrive before the timeout. It
  // stays queued and is still delivered, in order, exactly once.
  timed_out_awaiting_ack,
  // A blocking call was made before start(): nothing would ever drive it.
  not_started,
};

const std::error_category& client_category();
std::error_code make_error_code(ClientErrc e);

}  // namespace resilink

namespace resilink::core {
// resilink/error_code.h declares make_error_code(core::Error) in namespace
// resilink, where argument-dependent lookup (which std::error_code's converting
// constructor relies on) does not look for a resilink::core enum. Without this,
// `std::error_code ec = core::Error::closed;` does not compile.
using resilink::make_error_code;
}  // namespace resilink::core

template <>
struct std::is_error_code_enum<resilink::ClientErrc> : std::true_type {};

#endif
