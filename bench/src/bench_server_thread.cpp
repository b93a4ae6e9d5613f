#include "bench_server_thread.h"

#include <future>
#include <stdexcept>

#include "bench_util.h"

namespace resilink::bench::loopback {

namespace {

// A named coroutine, not a capturing lambda: g++ 12 miscompiles those.
asio::awaitable<void> drain_lines(Connection& connection, std::atomic<uint64_t>& delivered) {
  try {
    for (;;) {
      std::string line = co_await connection.readline();
      delivered.fetch_add(1, std::memory_order_relaxed);
    }
  } catch (const std::system_error&) {
    // core::Error::closed: the server is shutting down.
  }
}

ServerOptions bench_server_options(uint32_t timeout_ms, uint8_t window) {
  ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  options.timeout_ms = timeout_ms;
  options.window = window;
  options.logger = quiet_logger("bench.server");
  return options;
}

}  // namespace

BenchServerThread::BenchServerThread(uint32_t timeout_ms, uint8_t window)
    : server_(io_, bench_server_options(timeout_ms, window)) {
  if (std::error_code ec = server_.listen())
    throw std::runtime_error("resilink server: cannot listen on 127.0.0.1: " + ec.message());
  port_ = server_.port();
  server_.on_connection([this](Connection& connection) {
    asio::co_spawn(io_, drain_lines(connection, delivered_), asio::detached);
  });
  thread_ = std::thread([this] { io_.run(); });
  cpu_clock_ = cpu_clock_of(thread_.native_handle());
}

BenchServerThread::~BenchServerThread() {
  asio::post(io_, [this] { server_.close(); });
  // Everything ends once the server is closed; stop() guards against a
  // straggling handler keeping run() alive.
  auto done = std::async(std::launch::async, [this] { thread_.join(); });
  if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    io_.stop();
    done.wait();
  }
}

core::EngineStats BenchServerThread::stats() {
  std::promise<core::EngineStats> result;
  asio::post(io_, [this, &result] {
    core::EngineStats sum;
    for (const auto& [id, connection] : server_.connections()) {
      const core::EngineStats& s = connection->stats();
      sum.messages_received += s.messages_received;
      sum.deferred += s.deferred;
      sum.duplicates_discarded += s.duplicates_discarded;
      sum.acks_sent += s.acks_sent;
      sum.outages += s.outages;
      sum.connects += s.connects;
    }
    result.set_value(sum);
  });
  return result.get_future().get();
}

}  // namespace resilink::bench::loopback
