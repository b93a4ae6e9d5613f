// The throughput section's load: many connections per generator thread, each
// thread one epoll loop, so the generator costs less than the server it drives.
//
// A resilink connection is a client-role core::Engine on a non-blocking socket
// (the POSIX Client's driver loop, without its per-call poll(2) of one socket:
// a Client cannot share a wait with others). A raw connection, the baseline,
// writes payload + '\n' lines to a RawAckSink, which answers each with a
// 3-byte line as the server's ACK is. Both keep at most `window` messages
// unacknowledged per connection, so both do the same work per message.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace resilink::bench::loopback {

enum class LinkKind { resilink, raw };

// The outage timeout of throughput links, both ends. Long, because between two
// runs of one system the other runs and nobody drives these links; under load
// it changes nothing (keepalives go out only after T/4 with nothing sent).
constexpr uint32_t kThroughputLinkTimeoutMs = 10000;

struct GeneratorRun {
  double wall_seconds = 0;
  double cpu_seconds = 0;  // summed over the generator threads
};

struct GeneratorLink;

class LoadGenerator {
 public:
  // Opens `connections` links to 127.0.0.1:port and, for resilink, waits until
  // every link is up. Throws std::runtime_error.
  LoadGenerator(LinkKind kind, uint16_t port, uint32_t connections, uint32_t threads, uint8_t window,
                size_t payload_size);
  ~LoadGenerator();
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  // Sends `messages` in all (spread evenly over the links), qos or not, and
  // returns once every one has been acknowledged. Throws if the links stall
  // (an outage, or messages refused and never acknowledged).
  GeneratorRun send(uint64_t messages, bool qos);

 private:
  void run_thread(size_t thread_index, bool qos, double& cpu_seconds);

  LinkKind kind_;
  uint8_t window_;
  std::string payload_;
  std::vector<std::unique_ptr<GeneratorLink>> links_;
  uint32_t threads_;
};

// The raw baseline's receiver: one thread, one epoll loop; reads what each
// connection has (up to 4096 bytes, as the server's read loop does), counts
// the lines and answers each with "00\n".
class RawAckSink {
 public:
  RawAckSink();
  ~RawAckSink();
  RawAckSink(const RawAckSink&) = delete;
  RawAckSink& operator=(const RawAckSink&) = delete;

  uint16_t port() const { return listener_.port; }
  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }
  clockid_t cpu_clock() const { return cpu_clock_; }

 private:
  void serve();

  Listener listener_;
  int wake_fd_ = -1;  // eventfd: tells serve() to stop
  std::atomic<uint64_t> delivered_{0};
  std::thread thread_;
  clockid_t cpu_clock_{};
};

}  // namespace resilink::bench::loopback
