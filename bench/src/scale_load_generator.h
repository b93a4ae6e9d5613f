// The scale section's load: thousands of protocol clients on one or two
// threads. Each generated client is a client-role core::Engine on its own
// non-blocking socket, driven through epoll in the order engine.h prescribes
// (the POSIX resilink::Client drives one link per poll(2) loop, which cannot
// carry 10,000 links on a two-core box). Each engine times the server out by
// itself exactly as the real client does, so the outages counted here are the
// clients' own view of false outages.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "resilink/core/error.h"

namespace resilink::bench::scale {

struct LoadGeneratorOptions {
  uint16_t port = 0;  // the server, on 127.0.0.1
  uint32_t timeout_ms = 2000;
  uint32_t threads = 2;
  // Links started and not yet up, all threads together: keeps the server's
  // accept backlog from overflowing (a dropped SYN costs a 1 s retransmit).
  uint32_t connects_in_flight = 256;
  // Clients per source address 127.0.0.x before moving on to the next, so
  // more links than the ephemeral port range holds can reach one server
  // port. 0: every client connects from the kernel's choice (127.0.0.1).
  uint32_t clients_per_source_address = 0;
  std::string id_prefix = "scale-";  // client ids are <prefix><n>, n from 0
};

constexpr size_t kOutageReasonCount = static_cast<size_t>(core::OutageReason::closed_by_app) + 1;

// Totals over all generated clients, read while the generator runs.
struct LoadGeneratorCounts {
  uint64_t started = 0;           // engines started
  uint64_t up = 0;                // links up now
  uint64_t link_ups = 0;          // times any link came up
  uint64_t outages = 0;           // links the engines declared down (a close by us is not one)
  uint64_t connect_failures = 0;  // connection attempts that failed
  std::array<uint64_t, kOutageReasonCount> outages_by_reason{};
};

class LoadGenerator {
 public:
  explicit LoadGenerator(LoadGeneratorOptions options);
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Starts `count` more clients, spread over the threads; they connect at the
  // pace connects_in_flight allows.
  void add_clients(uint32_t count);
  uint32_t clients() const { return next_client_; }
  LoadGeneratorCounts counts() const;
  // CPU seconds each worker thread has used so far.
  std::vector<double> thread_cpu_seconds() const;
  // Stops the threads and closes every socket (no outage is counted for it).
  void stop();

 private:
  class Worker;
  LoadGeneratorOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  uint32_t next_client_ = 0;
};

// A description of an outage reason for the report ("read_timeout", ...).
const char* outage_reason_label(size_t reason);

}  // namespace resilink::bench::scale
