// `resilink server`: a stdio bridge in front of the resilink Server.
#pragma once

#include <cstdint>
#include <set>
#include <string>

namespace resilink::apps {

struct ServerBridgeOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 8123;
  uint32_t timeout_ms = 2000;
  std::set<std::string> expected;
  bool reject_duplicates = false;
  std::string port_file;  // if set, the bound port is written here once listening
};

// Each message delivered from client ID goes to stdout as `ID<TAB>payload`.
// Each stdin line `ID<TAB>payload` is queued for that client and sent with qos,
// kept while it is offline. Logs go to stderr. Runs until SIGINT or SIGTERM.
int run_server_bridge(const ServerBridgeOptions& options);

}  // namespace resilink::apps
