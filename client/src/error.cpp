#include "resilink/client/error.h"

#include <string>

namespace resilink {

namespace {

class ClientCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "resilink.client"; }
  std::string message(int value) const override {
    switch (static_cast<ClientErrc>(value)) {
      case ClientErrc::timed_out:
        return "timed_out: the link made no room for the message in time; nothing was queued";
      case ClientErrc::timed_out_awaiting_ack:
        return "timed_out_awaiting_ack: no ACK in time; the message stays queued and will "
               "still be delivered";
      case ClientErrc::not_started:
        return "not_started: call Client::start() before a blocking call";
    }
    return "unknown resilink.client error";
  }
};

}  // namespace

const std::error_category& client_category() {
  static const ClientCategory category;
  return category;
}

std::error_code make_error_code(ClientErrc e) { return {static_cast<int>(e), client_category()}; }

}  // namespace resilink
