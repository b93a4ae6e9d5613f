// `resilink bench-server` (hidden): the server that `resilink bench`'s scale
// section measures, in a process of its own so that its resident memory and
// CPU time are its alone. A plain resilink::Server with one coroutine per
// connection draining readline(), as the simplest application would.
//
// stdout, one line each:
//   port=<n>      once listening
//   stats connections=<n> up=<n> link_ups=<n> link_downs=<n> outages=<n> heap_in_use=<bytes>
//                 for each "stats" line on stdin, and once more at exit
// It serves until stdin closes, SIGTERM or SIGINT.
#include <malloc.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "commands.h"
#include "resilink/bench/bare_keepalive_server.h"
#include "resilink/server/server.h"

namespace resilink::apps {

namespace {

struct BenchServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;
  uint32_t timeout_ms = 2000;
  unsigned window = RESILINK_TX_WINDOW;
  std::string log_level = "warn";
  std::string app = "callback";  // or "coroutine", or "bare" (no resilink: the floor)
};

asio::awaitable<void> drain_lines(Connection& conn) {
  try {
    for (;;) (void)co_await conn.readline();
  } catch (const std::system_error&) {
    // the server closed
  }
}

class BenchServer {
 public:
  BenchServer(asio::io_context& io, const BenchServerOptions& options)
      : io_(io), server_(io, make_server_options(options)) {
    if (options.app == "coroutine")
      server_.on_connection([this](Connection& conn) { asio::co_spawn(io_, drain_lines(conn), asio::detached); });
    else
      server_.on_line([this](Connection&, std::string_view) { ++lines_; });
    server_.on_status([this](Connection&, bool up) { ++(up ? link_ups_ : link_downs_); });
  }

  std::error_code listen() { return server_.listen(); }
  uint16_t port() const { return server_.port(); }

  void print_stats() {
    size_t up = 0;
    uint64_t outages = 0;
    for (const auto& [id, conn] : server_.connections()) {
      up += conn->status() ? 1 : 0;
      outages += conn->stats().outages;
    }
    // What malloc has handed out and not had back: heap in use, without the
    // allocator's free lists and untouched pages that RSS sees or misses.
    struct mallinfo2 heap = ::mallinfo2();
    std::printf("stats connections=%zu up=%zu link_ups=%llu link_downs=%llu outages=%llu heap_in_use=%zu\n",
                server_.connections().size(), up, static_cast<unsigned long long>(link_ups_),
                static_cast<unsigned long long>(link_downs_), static_cast<unsigned long long>(outages),
                heap.uordblks + heap.hblkhd);
    std::fflush(stdout);
  }

  void shut_down() {
    if (server_.closed()) return;
    print_stats();  // before close(): closing is not an outage, but counts should be the served ones
    server_.close();
    io_.stop();
  }

 private:
  static ServerOptions make_server_options(const BenchServerOptions& o) {
    ServerOptions s;
    s.address = o.address;
    s.port = o.port;
    s.timeout_ms = o.timeout_ms;
    s.window = static_cast<uint8_t>(o.window);
    // One info line per connect would cost more than the connections do.
    s.logger = spdlog::stderr_color_mt("bench-server");
    s.logger->set_level(spdlog::level::from_str(o.log_level));
    return s;
  }

  asio::io_context& io_;
  Server server_;
  uint64_t link_ups_ = 0;
  uint64_t link_downs_ = 0;
  uint64_t lines_ = 0;  // messages taken by the callback application
};

int run_bench_server(const BenchServerOptions& options) {
  if (options.app == "bare") {
    bench::BareKeepaliveOptions bare;
    bare.address = options.address;
    bare.port = options.port;
    bare.timeout_ms = options.timeout_ms;
    bench::run_bare_keepalive_server(bare);
  }
  asio::io_context io;
  BenchServer server(io, options);
  if (server.listen()) return 1;
  std::printf("port=%u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&server](std::error_code ec, int) {
    if (!ec) server.shut_down();
  });

  // A blocking reader thread: stdin may be a file or a terminal, which epoll
  // cannot watch. Commands run on the io thread.
  std::thread reader([&io, &server] {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line == "stats") asio::post(io, [&server] { server.print_stats(); });
      else if (!line.empty()) std::fprintf(stderr, "bench-server: unknown command '%s' (expected: stats)\n", line.c_str());
    }
    asio::post(io, [&server] { server.shut_down(); });
  });
  reader.detach();  // may be blocked in a read when we stop

  io.run();
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(0);  // the detached stdin reader may still be blocked in read()
}

}  // namespace

void register_bench_server(CLI::App& app, int& exit_status) {
  auto options = std::make_shared<BenchServerOptions>();
  BenchServerOptions& o = *options;
  auto* cmd = app.add_subcommand("bench-server",
                                 "the server process `resilink bench` measures: serves idle clients, prints its "
                                 "port, answers 'stats' on stdin, exits when stdin closes");
  cmd->group("");  // hidden: started by `resilink bench`, not by people
  cmd->add_option("--address", o.address, "address to listen on")->capture_default_str();
  cmd->add_option("--port", o.port, "port to listen on (0: a free one, printed)")->capture_default_str();
  cmd->add_option("--timeout", o.timeout_ms, "outage timeout in ms (the clients' must match)")
      ->check(CLI::Range(8u, 3600000u))
      ->capture_default_str();
  cmd->add_option("--window", o.window, "qos messages in flight at once")
      ->check(CLI::Range(1u, static_cast<unsigned>(RESILINK_TX_WINDOW)))
      ->capture_default_str();
  cmd->add_option("--app", o.app,
                  "the application: callback (Server::on_line), coroutine (readline loop per link), or bare (no "
                  "resilink: a bare epoll loop that only keeps the links alive, the CPU floor)")
      ->check(CLI::IsMember({"callback", "coroutine", "bare"}))
      ->capture_default_str();
  cmd->add_option("--log", o.log_level, "the server's log level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  cmd->callback([options, &exit_status] { exit_status = run_bench_server(*options); });
}

}  // namespace resilink::apps
