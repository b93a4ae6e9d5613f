#include "server_bridge.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <semaphore>
#include <thread>

#include "resilink/core/client_id.h"
#include "resilink/error_code.h"
#include "resilink/server/server.h"

namespace resilink::apps {

namespace {

// Lines read from stdin but not yet acknowledged by their client. The stdin
// reader waits when this many are outstanding, so memory stays bounded.
constexpr std::ptrdiff_t kMaxQueuedLines = 100000;

class Bridge {
 public:
  Bridge(asio::io_context& io, const ServerBridgeOptions& options)
      : io_(io), options_(options), server_(io, make_server_options(options)) {
    server_.on_connection([this](Connection& conn) { start_reader(conn); });
  }

  std::error_code listen() { return server_.listen(); }
  uint16_t port() const { return server_.port(); }
  void close() { server_.close(); }

  // Called on the io thread for each stdin line.
  void accept_stdin_line(std::string line, uint64_t line_number) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      spdlog::error("stdin line {}: expected ID<TAB>payload, found no tab; line skipped", line_number);
      return release();
    }
    std::string id = line.substr(0, tab);
    std::string payload = line.substr(tab + 1);
    core::Error e = core::validate_client_id(reinterpret_cast<const uint8_t*>(id.data()), id.size());
    if (e != core::Error::ok) {
      spdlog::error("stdin line {}: invalid client id '{}': {}; line skipped", line_number, id,
                    core::error_description(e));
      return release();
    }
    if (!options_.expected.empty() && !options_.expected.count(id)) {
      spdlog::error("stdin line {}: unknown client id '{}' (not in --expect); line skipped",
                    line_number, id);
      return release();
    }
    if (validate_payload(payload) != core::Error::ok) {
      spdlog::error("stdin line {}: payload for '{}' is {} bytes; it must be 1..{}; line skipped",
                    line_number, id, payload.size(), RESILINK_MAX_PAYLOAD);
      return release();
    }
    Outbox& box = outboxes_[id];
    box.lines.push_back(std::move(payload));
    if (!box.sending) {
      box.sending = true;
      asio::co_spawn(io_, send_loop(id), asio::detached);
    }
  }

  std::counting_semaphore<kMaxQueuedLines>& credits() { return credits_; }

 private:
  struct Outbox {
    std::deque<std::string> lines;
    bool sending = false;
  };

  static ServerOptions make_server_options(const ServerBridgeOptions& o) {
    ServerOptions s;
    s.address = o.address;
    s.port = o.port;
    s.timeout_ms = o.timeout_ms;
    s.expected = o.expected;
    s.duplicate_policy = o.reject_duplicates ? DuplicatePolicy::reject_new : DuplicatePolicy::replace_old;
    return s;
  }

  void release() { credits_.release(); }

  void start_reader(Connection& conn) {
    asio::co_spawn(io_, read_loop(conn), asio::detached);
  }

  asio::awaitable<void> read_loop(Connection& conn) {
    try {
      for (;;) {
        std::string line = co_await conn.readline();
        std::string out = conn.id() + "\t" + line + "\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
        std::fflush(stdout);
      }
    } catch (const std::system_error&) {
      // server closed
    }
  }

  // One sender per client: qos with wait, so each client's lines arrive
  // exactly once and in stdin order; clients do not hold each other up.
  asio::awaitable<void> send_loop(std::string id) {
    Connection& conn = server_.connection(id);
    Outbox& box = outboxes_[id];
    while (!box.lines.empty()) {
      std::error_code ec = co_await conn.write(box.lines.front());
      if (ec && ec == resilink::make_error_code(core::Error::closed)) break;
      if (ec) spdlog::error("client '{}': line not sent: {}", id, ec.message());
      box.lines.pop_front();
      release();
    }
    box.sending = false;
  }

  asio::io_context& io_;
  ServerBridgeOptions options_;
  Server server_;
  std::map<std::string, Outbox> outboxes_;
  std::counting_semaphore<kMaxQueuedLines> credits_{kMaxQueuedLines};
};

}  // namespace

int run_server_bridge(const ServerBridgeOptions& options) {
  asio::io_context io;
  Bridge bridge(io, options);
  if (std::error_code ec = bridge.listen()) return 1;
  if (!options.port_file.empty()) {
    std::ofstream(options.port_file) << bridge.port() << "\n";
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", signal);
    bridge.close();
    io.stop();
  });

  // stdin may be a pipe, a terminal or a regular file, which epoll cannot
  // watch: a plain blocking reader thread hands each line to the io thread.
  std::thread reader([&] {
    std::string line;
    uint64_t number = 0;
    while (std::getline(std::cin, line)) {
      ++number;
      if (line.empty()) continue;
      bridge.credits().acquire();
      asio::post(io, [&bridge, l = std::move(line), number]() mutable {
        bridge.accept_stdin_line(std::move(l), number);
      });
      line.clear();
    }
    spdlog::info("stdin closed after {} lines; still serving", number);
  });
  reader.detach();  // may be blocked in a read when we stop

  io.run();
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(0);  // the detached stdin reader may still be blocked in read()
}

}  // namespace resilink::apps
