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
// The Connection drives a core::EngineBase and holds no protocol logic of its
// own; the engine's buffers are lent to it from the server's pool only while
// it has something stored, so an idle link costs about a kilobyte.
//
// One thread: a Server and its Connections are used from the thread running
// io.run() (one thread only; apps post to it). They share state without locks:
// one read buffer that every socket is read into in turn, and one timer wheel
// holding every connection's next deadline behind a single asio timer.
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
#include "resilink/server/buffer_pool.h"
#include "resilink/server/timer_wheel.h"
#include "resilink/server/wait_list.h"
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
  // SO_SNDBUF of each accepted socket; 0 keeps the kernel's default, which
  // Linux grows up to megabytes. A server of many devices sending small
  // messages may bound it: kernel memory per link stays small, and a peer
  // that stops reading backs up the engine (send_stalled) sooner.
  uint32_t send_buffer_bytes = 0;
  std::shared_ptr<spdlog::logger> logger;  // default: spdlog's default logger
};

class Server;

// Sockets bound to the io_context's own executor: 8 bytes where
// any_io_executor takes 56, in every socket and every pending operation.
using Socket = asio::basic_stream_socket<asio::ip::tcp, asio::io_context::executor_type>;

class Connection final : private core::EngineObserver, private TimerWheel::Timer {
 public:
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& id() const { return id_; }
  // True while the link is up (data flows).
  bool status() const { return engine_.is_up(); }
  // Times the client connected again after its first connection.
  uint32_t reconnects() const;
  const core::EngineStats& stats() const { return engine_.stats(); }
  const core::EngineBase& engine() const { return engine_; }

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
  void on_status(std::function<void(bool up)> callback) {
    status_callback_.reset(callback ? new std::function<void(bool)>(std::move(callback)) : nullptr);
  }

 private:
  friend class Server;

  // id: the key of its entry in Server::connections_, which outlives it.
  Connection(Server& server, const std::string& id);
  void attach(Socket socket, std::string_view leftover, std::string_view peer);
  // "address:port" of the client while its socket is open.
  std::string peer() const;
  void close_for_shutdown();
  bool link_open() const {
    return engine_.state() == core::LinkState::await_peer || engine_.is_up();
  }
  // Reading: wait until the socket is readable, then read it into the
  // server's buffer with non-blocking reads. No buffer per connection.
  void wait_readable();
  void on_readable(std::error_code ec);
  void after_engine_call();
  void close_socket();
  // Writes the engine's bytes straight from its send buffer with
  // non-blocking writes; waits for the socket only when it is full.
  void flush();
  void on_writable_socket(std::error_code ec);
  void rearm_timer();
  void report_status_events();
  void deliver_lines();  // to Server::on_line's callback, if set
  // readline()'s result: the oldest message, or throws closed if none.
  std::string take_line();
  // The engine's buffers are borrowed from the server's pool for each engine
  // call and given back once the engine holds nothing in them.
  void lend_buffers();
  void return_buffers_if_idle();
  bool socket_open() const { return socket_.is_open(); }

  // core::EngineObserver
  void on_link_up() override;
  void on_link_down(core::OutageReason why, uint32_t silence_ms) override;
  void on_line_ready() override { line_ready_.notify_all(); }
  void on_write_acked(uint32_t) override { acked_.notify_all(); }
  void on_writable() override { writable_.notify_all(); }

  // TimerWheel::Timer: the engine's next deadline came.
  void on_deadline(uint64_t now) override;

  Server& server_;
  const std::string& id_;
  core::EngineBase engine_;
  std::unique_ptr<BufferBlock> buffers_;  // lent to engine_, or null
  Socket socket_;  // closed between connections
  // Bumped whenever the socket is closed or replaced: a completion for an
  // older socket stands down.
  uint32_t generation_ = 0;
  bool writing_ = false;  // waiting for the socket to take more bytes
  bool reported_up_ = false;  // what observers were last told
  bool closed_ = false;
  bool delivering_ = false;  // inside deliver_lines()
  // Ups and downs the engine reported during the current call, in order, a
  // bit each (1: up): one call can drop a link and open its successor (a
  // takeover). Oldest in bit 0.
  uint8_t status_events_ = 0;
  uint8_t status_event_count_ = 0;
  WaitList line_ready_, acked_, writable_, status_changed_;
  // Few applications watch single links: 8 bytes for those that do not.
  std::unique_ptr<std::function<void(bool)>> status_callback_;
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
  // Every message from any client, as it arrives, instead of readline(): no
  // coroutine waits per connection, so thousands of idle links cost nothing
  // in the application. The callback runs on the server's thread and must
  // not block; it may start coroutines (to write, say). Lines are taken after
  // each read from the socket, so the receive queue pushes back only on a
  // burst longer than it (the refused rest is resent, as with readline()).
  void on_line(std::function<void(Connection&, std::string_view line)> callback) {
    line_callback_ = std::move(callback);
  }
  void on_status(std::function<void(Connection&, bool up)> callback) {
    status_callback_ = std::move(callback);
  }

  // Engine buffer blocks lent to connections now (links with something
  // stored: a partial line, unread messages, unacknowledged ones, bytes the
  // socket has not taken), and blocks kept free for reuse.
  size_t buffer_blocks_lent() const { return buffers_.lent(); }
  size_t buffer_blocks_free() const { return buffers_.free_blocks(); }

  // Stops accepting and closes every socket.
  void close();
  bool closed() const { return closed_; }

 private:
  friend class Connection;
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> handshake(Socket socket);
  void route(Socket socket, std::string id, std::string_view leftover, std::string peer);
  // "address:port" of a socket's peer, for the log.
  static std::string describe(const Socket& socket);
  // Arms a connection's deadline on the wheel, and the wheel's asio timer if
  // it now has to fire sooner.
  void schedule(TimerWheel::Timer& timer, uint64_t deadline);
  void set_wheel_timer();
  void on_wheel_timer();

  // The read buffer every connection reads into in turn (one thread).
  static constexpr size_t kReadBufferBytes = 16 * 1024;

  asio::io_context& io_;
  ServerOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  asio::basic_socket_acceptor<asio::ip::tcp, asio::io_context::executor_type> acceptor_;
  // Before connections_: a Connection cancels its timer as it goes.
  TimerWheel wheel_;
  asio::basic_waitable_timer<std::chrono::steady_clock, asio::wait_traits<std::chrono::steady_clock>,
                             asio::io_context::executor_type>
      wheel_timer_;
  uint64_t wheel_timer_at_ = TimerWheel::kNever;  // when wheel_timer_ fires; kNever: not set
  std::unique_ptr<uint8_t[]> read_buffer_;
  // Before connections_: a Connection gives its block back as it goes.
  BufferPool buffers_;
  std::map<std::string, std::unique_ptr<Connection>> connections_;
  // Sockets that have not sent their id line yet; close() closes them.
  std::vector<std::weak_ptr<Socket>> handshaking_;
  WaitList connection_changed_;
  std::function<void(Connection&)> connection_callback_;
  std::function<void(Connection&, bool)> status_callback_;
  std::function<void(Connection&, std::string_view)> line_callback_;
  bool closed_ = false;
};

}  // namespace resilink
