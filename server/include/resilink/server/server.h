// The resilink server: standalone Asio, C++20 coroutines, one thread.
//
// A Server accepts TCP connections, reads each client's id line and hands the
// socket to that id's Connection. A Connection is created the first time an id
// is seen (or asked for) and lives as long as the Server, across any number of
// outages: applications hold on to it and simply wait out outages in
// readline() and write().
//
//   asio::io_context io;
//   resilink::Server server(io, {.port = 8123, .expected = {"1", "2"}});
//   server.listen();
//   asio::co_spawn(io, [&]() -> asio::awaitable<void> {
//     resilink::Connection& conn = co_await server.client("1");
//     co_await conn.write("hello");               // qos, waits for the ACK
//     std::string line = co_await conn.readline();
//   }, asio::detached);
//   io.run();
//
// The Connection drives a core::Engine and holds no protocol logic of its own.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "resilink/core/engine.h"
#include "resilink/write_options.h"

namespace spdlog {
class logger;
}

namespace resilink {

// Completion token: coroutine resumes with (error_code, results...) instead of throwing.
inline constexpr auto kUseTuple = asio::experimental::as_tuple(asio::use_awaitable);

// What to do when a client id connects while the server still holds an open
// connection for that id (the client came back before the server noticed its
// outage, or two devices share an id).
enum class DuplicatePolicy {
  // The newcomer takes over; the old socket is closed first. Fastest recovery:
  // a rebooted device is served at once. Two devices sharing an id steal the
  // link from each other, and each takeover is logged as a warning.
  replace_old,
  // The newcomer is refused, as micropython-iot does. A client that reconnects
  // before the server noticed its outage is refused until the server's read
  // timeout fires: up to timeout_ms of extra recovery time.
  reject_new,
};

struct ServerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 8123;  // 0 picks a free port; see Server::port()
  uint32_t timeout_ms = 2000;
  std::set<std::string> expected;  // ids we expect; others are logged as strangers
  DuplicatePolicy duplicate_policy = DuplicatePolicy::replace_old;
  uint8_t window = RESILINK_TX_WINDOW;
  std::shared_ptr<spdlog::logger> logger;  // default: spdlog's default logger
};

class Server;


// Wakes every coroutine waiting on it. Waiters re-check their condition.
class Notifier {
 public:
  explicit Notifier(asio::any_io_executor ex) : timer_(ex, asio::steady_timer::time_point::max()) {}
  asio::awaitable<void> wait();
  void notify_all() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

class Connection final : private core::EngineObserver {
 public:
  Connection(Server& server, std::string id);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& id() const { return id_; }
  // True while the link is up (data flows).
  bool status() const { return engine_.is_up(); }
  // Times the client connected again after its first connection.
  uint32_t reconnects() const;
  const core::EngineStats& stats() const { return engine_.stats(); }
  const core::Engine& engine() const { return engine_; }

  // The next message from the client; waits (through outages) until one comes.
  // Throws std::system_error(core::Error::closed) once the server is closed.
  asio::awaitable<std::string> readline();
  // Sends one line (a trailing '\n' is dropped). With qos, completes when the
  // client has acknowledged it, waiting out outages. Returns an error for a
  // line the protocol cannot carry (empty, embedded '\n', too long) or when
  // the server is closed.
  asio::awaitable<std::error_code> write(std::string_view line, WriteOptions options = {});
  // Waits until the link is up.
  asio::awaitable<void> wait_up();
  // Called on every status change, after the engine has acted.
  void on_status(std::function<void(bool up)> callback) { status_callback_ = std::move(callback); }

 private:
  friend class Server;

  void attach(asio::ip::tcp::socket socket, std::string_view leftover, std::string peer);
  void close_for_shutdown();
  asio::awaitable<void> read_loop(std::shared_ptr<asio::ip::tcp::socket> socket, uint64_t generation);
  void after_engine_call();
  void close_socket();
  void flush();
  void rearm_timer();
  bool socket_open() const { return socket_ != nullptr; }

  // core::EngineObserver
  void on_link_up() override;
  void on_link_down(core::OutageReason why, uint32_t silence_ms) override;
  void on_line_ready() override { line_ready_.notify_all(); }
  void on_write_acked(uint32_t) override { acked_.notify_all(); }
  void on_writable() override { writable_.notify_all(); }

  Server& server_;
  std::string id_;
  std::string peer_;
  core::Engine engine_;
  std::shared_ptr<asio::ip::tcp::socket> socket_;
  uint64_t generation_ = 0;
  bool writing_ = false;
  std::vector<uint8_t> out_;
  asio::steady_timer timer_;
  uint64_t armed_deadline_ = core::kNoDeadline;
  Notifier line_ready_, acked_, writable_, status_changed_;
  std::function<void(bool)> status_callback_;
  // Ups and downs the engine reported during the current call, in order: one
  // call can drop a link and open its successor (a takeover).
  std::vector<bool> status_events_;
  bool reported_up_ = false;  // what observers were last told
  bool closed_ = false;
};

class Server {
 public:
  Server(asio::io_context& io, ServerOptions options);
  ~Server();

  // Binds and starts accepting. Returns the bind/listen error, if any.
  std::error_code listen();
  // The bound port (useful with port 0).
  uint16_t port() const;
  const ServerOptions& options() const { return options_; }
  spdlog::logger& log() const { return *logger_; }

  // The Connection for `id` once its client has connected (waits).
  asio::awaitable<std::reference_wrapper<Connection>> client(std::string id);
  // Waits until every id in `ids` (default: the expected set) has connected.
  asio::awaitable<void> wait_all(std::set<std::string> ids = {});
  // The Connection for `id`, created if new: lets an application queue qos
  // messages for a client that has not connected yet.
  Connection& connection(const std::string& id);
  Connection* find(const std::string& id);
  const std::map<std::string, std::unique_ptr<Connection>>& connections() const {
    return connections_;
  }

  // Called when a Connection is created, and on every status change.
  void on_connection(std::function<void(Connection&)> callback) {
    connection_callback_ = std::move(callback);
  }
  void on_status(std::function<void(Connection&, bool up)> callback) {
    status_callback_ = std::move(callback);
  }

  // Stops accepting and closes every socket.
  void close();
  bool closed() const { return closed_; }

 private:
  friend class Connection;
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> handshake(asio::ip::tcp::socket socket);
  void route(asio::ip::tcp::socket socket, std::string id, std::string_view leftover,
             std::string peer);

  asio::io_context& io_;
  ServerOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  asio::ip::tcp::acceptor acceptor_;
  std::map<std::string, std::unique_ptr<Connection>> connections_;
  // Sockets that have not sent their id line yet; close() closes them.
  std::vector<std::weak_ptr<asio::ip::tcp::socket>> handshaking_;
  Notifier connection_changed_;
  std::function<void(Connection&)> connection_callback_;
  std::function<void(Connection&, bool)> status_callback_;
  bool closed_ = false;
};

}  // namespace resilink
