// The main demo: a resilink server and N clients (4 by default, as in
// micropython-iot's demo) on loopback, exchanging qos messages both ways.
// Every client reports [count, reconnects]; every server app answers with
// [count, last value heard]. At the end each side checks that it received
// exactly what the other sent, in order, and the demo exits 0 only then.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "resilink/client/client.h"
#include "resilink/server/server.h"

namespace {

struct Tally {
  std::mutex mutex;
  std::map<std::string, std::vector<std::string>> sent_to_server, got_by_server;
  std::map<std::string, std::vector<std::string>> sent_to_client, got_by_client;
};

// Coroutines are plain functions taking their state as parameters: a
// capturing lambda coroutine would outlive its captures.
asio::awaitable<void> server_reader(resilink::Connection& conn, Tally& tally,
                                    std::shared_ptr<std::string> last_heard) {
  try {
    for (;;) {
      std::string line = co_await conn.readline();  // waits out outages
      spdlog::info("server got {} from client {}", line, conn.id());
      *last_heard = line;
      std::lock_guard lock(tally.mutex);
      tally.got_by_server[conn.id()].push_back(line);
    }
  } catch (const std::system_error&) {
    // the server closed
  }
}

// One server-side application per client id.
asio::awaitable<void> server_app(resilink::Server& server, std::string id, Tally& tally,
                                 std::chrono::steady_clock::time_point end) {
  resilink::Connection& conn = co_await server.client(id);
  auto last_heard = std::make_shared<std::string>("none");
  asio::co_spawn(co_await asio::this_coro::executor, server_reader(conn, tally, last_heard),
                 asio::detached);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (int count = 0; std::chrono::steady_clock::now() < end; ++count) {
    std::string msg = "[" + std::to_string(count) + ", \"" + *last_heard + "\"]";
    if (co_await conn.write(msg)) break;  // qos: returns when acknowledged
    {
      std::lock_guard lock(tally.mutex);
      tally.sent_to_client[id].push_back(msg);
    }
    timer.expires_after(std::chrono::milliseconds(1000));
    co_await timer.async_wait(resilink::kUseTuple);
  }
}

void client_app(std::string id, uint16_t port, uint32_t timeout_ms, Tally& tally,
                std::chrono::steady_clock::time_point end) {
  resilink::ClientOptions options;
  options.id = id;
  options.host = "127.0.0.1";
  options.port = port;
  options.timeout_ms = timeout_ms;
  resilink::Client client(options);
  client.start();
  auto next_write = std::chrono::steady_clock::now();
  int count = 0;
  while (std::chrono::steady_clock::now() < end) {
    if (std::chrono::steady_clock::now() >= next_write) {
      std::string msg = "[" + std::to_string(count++) + ", " + std::to_string(client.reconnects()) + "]";
      auto ec = client.write(msg, {}, std::chrono::milliseconds(5000));
      // timed_out_awaiting_ack: queued, and it will still be delivered.
      if (!ec || ec == resilink::ClientErrc::timed_out_awaiting_ack) {
        std::lock_guard lock(tally.mutex);
        tally.sent_to_server[id].push_back(msg);
      }
      if (ec) {
        spdlog::warn("client {}: write not confirmed yet: {}", id, ec.message());
      }
      next_write += std::chrono::milliseconds(700 + 150 * std::stoi(id));
    }
    if (auto line = client.readline(std::chrono::milliseconds(50))) {
      spdlog::info("client {} got {}", id, *line);
      std::lock_guard lock(tally.mutex);
      tally.got_by_client[id].push_back(*line);
    }
  }
  // Collect what is still in flight towards us.
  auto drain_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2 * timeout_ms);
  while (std::chrono::steady_clock::now() < drain_end) {
    if (auto line = client.readline(std::chrono::milliseconds(50))) {
      std::lock_guard lock(tally.mutex);
      tally.got_by_client[id].push_back(*line);
    }
  }
  client.close();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"resilink demo: a server and N clients exchanging qos messages on loopback"};
  int duration_s = 20, clients = 4;
  uint32_t timeout_ms = 2000;
  app.add_option("--duration", duration_s, "seconds of traffic")->check(CLI::Range(1, 86400));
  app.add_option("--clients", clients, "number of clients")->check(CLI::Range(1, 64));
  app.add_option("--timeout-ms", timeout_ms, "outage timeout")->check(CLI::Range(50u, 60000u));
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("demo"));
  spdlog::set_pattern("%H:%M:%S.%e %v");

  asio::io_context io;
  resilink::ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  options.timeout_ms = timeout_ms;
  for (int i = 1; i <= clients; ++i) options.expected.insert(std::to_string(i));
  resilink::Server server(io, options);
  if (server.listen()) return 1;

  Tally tally;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(duration_s);
  for (const auto& id : options.expected)
    asio::co_spawn(io, server_app(server, id, tally, end), asio::detached);
  std::thread server_thread([&] { io.run(); });

  std::vector<std::thread> client_threads;
  for (const auto& id : options.expected)
    client_threads.emplace_back(client_app, id, server.port(), timeout_ms, std::ref(tally), end);
  for (auto& t : client_threads) t.join();
  asio::post(io, [&] { server.close(); });  // readers end, the loop runs dry
  server_thread.join();

  bool ok = true;
  for (const auto& id : options.expected) {
    bool up_ok = tally.sent_to_server[id] == tally.got_by_server[id];
    // The server may have sent one last message the client saw after its end.
    auto& sent = tally.sent_to_client[id];
    auto& got = tally.got_by_client[id];
    bool down_ok = got.size() <= sent.size() + 1 && std::equal(got.begin(), got.end(), sent.begin(),
                                                                 sent.begin() + std::min(got.size(), sent.size()));
    std::printf("client %s: %zu sent, %zu received by server%s; %zu sent by server, %zu received%s\n",
                id.c_str(), tally.sent_to_server[id].size(), tally.got_by_server[id].size(),
                up_ok ? "" : " (MISMATCH)", sent.size(), got.size(), down_ok ? "" : " (MISMATCH)");
    ok = ok && up_ok && down_ok;
  }
  std::printf("demo: %d clients, %s\n", clients, ok ? "every message delivered once, in order" : "FAILED");
  return ok ? 0 : 1;
}
