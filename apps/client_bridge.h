// `resilink client`: a stdio bridge over one resilient link.
//
// Each stdin line is sent to the server as a qos message, one at a time (the
// next only after the previous one's ACK): in order, exactly once, across
// outages. Each message from the server is written to stdout with a '\n'.
// At stdin EOF the bridge delivers every line it has read, then exits 0.
//
// stdin is read only when poll(2) says it is ready, so waiting for input
// never stalls the link, and at most kBridgeMaxQueuedLines lines are held at
// once (stdin is not read while they are). stdout is written only when it is
// writable; until then received messages stay in the engine, whose full queue
// makes the server hold back (flow control, not loss). Empty lines are skipped
// with a warning; a line longer than Client::kMaxPayload is skipped with an
// error naming its line number. Logs go to the command line's stderr logger.
#ifndef RESILINK_APPS_CLIENT_BRIDGE_H
#define RESILINK_APPS_CLIENT_BRIDGE_H

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace resilink {

inline constexpr size_t kBridgeMaxQueuedLines = 64;

struct ClientBridgeOptions {
  std::string id, host;
  uint16_t port = 0;
  uint32_t timeout_ms = 2000;
  // Test seams: the descriptors used as stdin/stdout and the log destination
  // (empty: spdlog's default logger, which the command line sends to stderr).
  int input_fd = STDIN_FILENO;
  int output_fd = STDOUT_FILENO;
  std::shared_ptr<spdlog::logger> logger;
};

// Returns 0 once stdin is at EOF and every line read is acknowledged, 1 if
// stdout fails, 2 for bad options (logged).
int run_client_bridge(const ClientBridgeOptions& options);

}  // namespace resilink

#endif
