// A resilink::Server on 127.0.0.1 (kernel-chosen port) running its own
// io_context in its own thread, as an application runs it: one coroutine per
// connection drains readline() and counts what it is handed.
#pragma once

#include <pthread.h>

#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <thread>

#include "resilink/server/server.h"

namespace resilink::bench::loopback {

class BenchServerThread {
 public:
  explicit BenchServerThread(uint32_t timeout_ms = 2000, uint8_t window = RESILINK_TX_WINDOW);
  ~BenchServerThread();  // closes the server and joins its thread
  BenchServerThread(const BenchServerThread&) = delete;
  BenchServerThread& operator=(const BenchServerThread&) = delete;

  uint16_t port() const { return port_; }
  // Messages the application coroutines have read, over all connections.
  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }
  // The server thread's CPU clock, readable from any thread.
  clockid_t cpu_clock() const { return cpu_clock_; }
  // Counters summed over every connection's engine, read in the server thread.
  core::EngineStats stats();

 private:
  asio::io_context io_;
  Server server_;
  uint16_t port_ = 0;
  std::atomic<uint64_t> delivered_{0};
  std::thread thread_;
  clockid_t cpu_clock_{};
};

}  // namespace resilink::bench::loopback
