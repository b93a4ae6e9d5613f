// The qos demo: one server and one client through a relay that cuts the link
// every few seconds (like a WiFi drop). Both ends send numbered messages with
// qos and count, on receipt, duplicates, missing and out-of-order numbers,
// which must all stay at zero.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <thread>

#include "resilink/client/client.h"
#include "resilink/lab/stall_relay.h"
#include "resilink/server/server.h"

namespace {

// Counts what a stream of increasing numbers lost, repeated or reordered.
class SequenceCheck {
 public:
  void operator()(long n) {
    ++received_;
    if (n < next_) {
      if (n >= 0 && seen_.count(n)) ++duplicates_;
      else ++out_of_order_;
    } else {
      missing_ += n - next_;
      next_ = n + 1;
    }
    seen_.insert(n);
  }
  // Numbers never received, counting those the sender had sent by the end.
  long missing(long sent) const { return missing_ + (sent > next_ ? sent - next_ : 0); }
  long received() const { return received_; }
  long duplicates() const { return duplicates_; }
  long out_of_order() const { return out_of_order_; }

 private:
  std::set<long> seen_;
  long next_ = 0, received_ = 0, missing_ = 0, duplicates_ = 0, out_of_order_ = 0;
};

asio::awaitable<void> server_reader(resilink::Connection& conn, SequenceCheck& check) {
  try {
    for (;;) check(std::stol(co_await conn.readline()));
  } catch (const std::system_error&) {
  }
}

asio::awaitable<void> server_writer(resilink::Server& server, std::atomic<long>& sent,
                                    SequenceCheck& check, std::atomic<bool>& stop) {
  resilink::Connection& conn = co_await server.client("qos");
  asio::co_spawn(co_await asio::this_coro::executor, server_reader(conn, check), asio::detached);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!stop) {
    if (co_await conn.write(std::to_string(sent.load()))) break;
    ++sent;
    timer.expires_after(std::chrono::milliseconds(20));
    co_await timer.async_wait(resilink::kUseTuple);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"resilink qos demo: exactly-once delivery through repeated outages"};
  int duration_s = 20;
  uint32_t timeout_ms = 500;
  app.add_option("--duration", duration_s, "seconds of traffic")->check(CLI::Range(1, 86400));
  app.add_option("--timeout-ms", timeout_ms, "outage timeout")->check(CLI::Range(50u, 60000u));
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("qos"));
  spdlog::set_level(spdlog::level::warn);

  asio::io_context io;
  resilink::ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  options.timeout_ms = timeout_ms;
  options.expected = {"qos"};
  resilink::Server server(io, options);
  if (server.listen()) return 1;
  resilink::lab::StallRelay relay(server.port());

  std::atomic<long> server_sent{0};
  std::atomic<bool> stop{false};
  SequenceCheck at_server, at_client;
  asio::co_spawn(io, server_writer(server, server_sent, at_server, stop), asio::detached);
  std::thread server_thread([&] { io.run(); });

  resilink::ClientOptions client_options;
  client_options.id = "qos";
  client_options.port = relay.port();
  client_options.timeout_ms = timeout_ms;
  resilink::Client client(client_options);
  client.start();

  auto start = std::chrono::steady_clock::now();
  auto end = start + std::chrono::seconds(duration_s);
  auto next_cut = start + std::chrono::seconds(2);
  bool cut = false;
  long client_sent = 0;
  while (std::chrono::steady_clock::now() < end) {
    auto now = std::chrono::steady_clock::now();
    if (now >= next_cut) {
      cut = !cut;
      relay.set_stalled(cut);
      std::printf("%5.1f s: link %s\n", std::chrono::duration<double>(now - start).count(),
                  cut ? "cut" : "restored");
      next_cut = now + (cut ? std::chrono::milliseconds(3 * timeout_ms) : std::chrono::seconds(3));
    }
    // timed_out_awaiting_ack: queued, and it will still be delivered.
    auto ec = client.write(std::to_string(client_sent), {}, std::chrono::milliseconds(50));
    if (!ec || ec == resilink::ClientErrc::timed_out_awaiting_ack) ++client_sent;
    while (auto line = client.readline(std::chrono::milliseconds(0))) at_client(std::stol(*line));
  }
  relay.set_stalled(false);
  stop = true;
  // Let what is in flight land, then stop.
  for (auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(6 * timeout_ms);
       std::chrono::steady_clock::now() < until;)
    if (auto line = client.readline(std::chrono::milliseconds(20))) at_client(std::stol(*line));
  client.close();
  asio::post(io, [&] { server.close(); });
  server_thread.join();

  long missing_up = at_server.missing(client_sent), missing_down = at_client.missing(server_sent);
  std::printf("client -> server: %ld sent, %ld received, %ld duplicates, %ld missing, %ld out of order\n",
              client_sent, at_server.received(), at_server.duplicates(), missing_up,
              at_server.out_of_order());
  std::printf("server -> client: %ld sent, %ld received, %ld duplicates, %ld missing, %ld out of order\n",
              server_sent.load(), at_client.received(), at_client.duplicates(), missing_down,
              at_client.out_of_order());
  std::printf("outages: %d, client reconnects: %u, last recovery %u ms (reconnect start to link up), "
              "last outage %u ms (link down to link up)\n",
              relay.stalls(), client.reconnects(), client.timeline().last_recovery_ms,
              client.timeline().last_outage_ms);
  bool ok = at_server.duplicates() + at_server.out_of_order() + missing_up + at_client.duplicates() +
                at_client.out_of_order() + missing_down == 0;
  return ok ? 0 : 1;
}
