// The floor under the scale section's CPU figure: the least a server can do to
// keep N idle links alive at resilink's keepalive rate on this kernel.
//
// One epoll thread, no protocol and no library: each accepted socket gets a
// one-byte keepalive every timeout/4 and has whatever arrives read and thrown
// away, one recv per readable event; a link silent for the timeout is closed
// and counted as an outage. Deadlines sit in one FIFO (every re-arm is now +
// timeout/4, so appending keeps it sorted). A resilink client engine cannot
// tell it from a resilink server while the links are idle, so the same load
// generator drives both, and the difference in CPU is what resilink adds on
// top of the syscalls and TCP work that any server of these links must pay.
#pragma once

#include <cstdint>
#include <string>

namespace resilink::bench {

struct BareKeepaliveOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: a free one
  uint32_t timeout_ms = 2000;
};

// Serves until stdin closes. Prints "port=<n>" once listening and, for each
// "stats" line on stdin (and once at the end), "stats connections=<n> up=<n>
// link_ups=<n> link_downs=<n> outages=<n> heap_in_use=0" as `resilink
// bench-server` does. Ends the process (its stdin reader may be blocked in a
// read): exit status 0, or 1 if it cannot listen.
[[noreturn]] void run_bare_keepalive_server(const BareKeepaliveOptions& options);

}  // namespace resilink::bench
