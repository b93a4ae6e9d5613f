// Connection: drives one server-role core::Engine with an Asio socket, the
// server's timer wheel and coroutine-friendly waits. No protocol decisions are
// made here.
#include <spdlog/spdlog.h>

#include "resilink/error_code.h"
#include "resilink/server/server.h"

namespace resilink {

namespace {
core::EngineConfig server_engine_config(const ServerOptions& options) {
  core::EngineConfig config;
  config.role = core::Role::server;
  config.timeout_ms = options.timeout_ms;
  config.window = options.window;
  return config;
}

// Reads per readiness: a client sending without pause does not keep the
// others waiting.
constexpr int kReadsPerWake = 4;

// Allocates through operator new at the exact size asked for.
template <class T>
struct ExactAllocator {
  using value_type = T;
  ExactAllocator() = default;
  template <class U>
  ExactAllocator(const ExactAllocator<U>&) {}
  T* allocate(size_t n) { return std::allocator<T>().allocate(n); }
  void deallocate(T* p, size_t n) { std::allocator<T>().deallocate(p, n); }
  template <class U>
  bool operator==(const ExactAllocator<U>&) const { return true; }
};

// A socket wait's handler, whose operation asio allocates at its exact size
// (88 bytes) instead of from its per-thread cache: a cached block keeps the
// size of the largest operation that used it (an accept: 224 bytes), and a
// read wait stays pending for as long as its link is idle.
template <class Handler>
struct ExactlyAllocated {
  Handler handler;
  using allocator_type = ExactAllocator<void>;
  allocator_type get_allocator() const noexcept { return {}; }
  void operator()(std::error_code ec) { handler(ec); }
};
template <class Handler>
ExactlyAllocated(Handler) -> ExactlyAllocated<Handler>;
}  // namespace

Connection::Connection(Server& server, const std::string& id)
    : server_(server),
      id_(id),
      engine_(server_engine_config(server.options()), this),
      socket_(server.io_) {}

Connection::~Connection() {
  close_for_shutdown();
  // The engine may still hold messages; its block goes with it.
  if (buffers_) server_.buffers_.give_back(std::move(buffers_));
}

void Connection::lend_buffers() {
  if (buffers_) return;
  buffers_ = server_.buffers_.take();
  engine_.attach_buffers(buffers_->bytes);
}

void Connection::return_buffers_if_idle() {
  if (!buffers_ || !engine_.buffers_idle() || writing_) return;
  engine_.detach_buffers();
  server_.buffers_.give_back(std::move(buffers_));
}

uint32_t Connection::reconnects() const {
  uint32_t connects = engine_.stats().connects;
  return connects > 0 ? connects - 1 : 0;
}

std::string Connection::peer() const {
  return socket_open() ? Server::describe(socket_) : "no socket";
}

void Connection::attach(Socket socket, std::string_view leftover, std::string_view peer) {
  if (closed_) return;
  close_socket();  // never two sockets feeding one engine
  std::error_code ec;
  socket.non_blocking(true, ec);  // reads and writes are tried at once
  if (ec) {
    server_.log().warn("client '{}' from {}: cannot make the socket non-blocking ({}); closed", id_,
                       peer, ec.message());
    return;
  }
  socket_ = std::move(socket);
  ++generation_;
  uint64_t now = monotonic_ms();
  lend_buffers();
  engine_.handle_connected(now);
  server_.log().info("client '{}' connected from {} (connection #{})", id_, peer,
                     engine_.stats().connects);
  if (!leftover.empty())
    engine_.handle_rx(reinterpret_cast<const uint8_t*>(leftover.data()), leftover.size(), now);
  after_engine_call();
  if (socket_open()) wait_readable();
}

void Connection::wait_readable() {
  auto ready = [this, generation = generation_](std::error_code ec) {
    // Closing the socket aborts the wait: the Connection may be gone by then.
    if (ec == asio::error::operation_aborted || generation != generation_) return;
    on_readable(ec);
  };
  socket_.async_wait(Socket::wait_read, ExactlyAllocated{ready});
}

void Connection::on_readable(std::error_code ec) {
  uint8_t* buffer = server_.read_buffer_.get();
  const uint32_t generation = generation_;
  for (int reads = 0; !ec; ++reads) {
    size_t n = socket_.read_some(asio::buffer(buffer, Server::kReadBufferBytes), ec);
    if (ec == asio::error::would_block) {
      ec = {};
      break;
    }
    if (ec) break;
    lend_buffers();
    engine_.handle_rx(buffer, n, monotonic_ms());
    after_engine_call();
    if (generation != generation_) return;  // the engine closed the link, or an observer did
    // A short read emptied the socket. After a full one, lines waiting for
    // the application, or enough reads, let others run first.
    if (n < Server::kReadBufferBytes || engine_.rx_queued() > 0 || reads + 1 == kReadsPerWake)
      break;
  }
  if (ec) {
    bool eof = ec == asio::error::eof || ec == asio::error::connection_reset;
    server_.log().info("client '{}': {} ({})", id_, eof ? "peer closed the connection" : "read error",
                       ec.message());
    lend_buffers();
    engine_.handle_link_lost(eof ? core::OutageReason::peer_closed : core::OutageReason::socket_error,
                             monotonic_ms());
    after_engine_call();
    return;
  }
  wait_readable();
}

void Connection::after_engine_call() {
  if (socket_open() && !link_open()) close_socket();
  flush();
  // A failed write ends the link.
  if (socket_open() && !link_open()) close_socket();
  rearm_timer();
  report_status_events();
  deliver_lines();
  return_buffers_if_idle();
}

void Connection::deliver_lines() {
  // A callback that writes can get here again (co_spawn may run a coroutine
  // inline): the outer loop delivers everything, in order.
  if (!server_.line_callback_ || delivering_) return;
  delivering_ = true;
  const uint8_t* data;
  size_t len;
  while (engine_.peek_line(&data, &len)) {
    std::string_view line(reinterpret_cast<const char*>(data), len);
    server_.line_callback_(*this, line);
    engine_.pop_line();
  }
  delivering_ = false;
}

void Connection::report_status_events() {
  if (status_event_count_ == 0) return;
  uint8_t events = status_events_;
  uint8_t count = status_event_count_;
  status_events_ = status_event_count_ = 0;
  status_changed_.notify_all();
  writable_.notify_all();
  server_.connection_changed_.notify_all();
  for (uint8_t i = 0; i < count; ++i) {
    bool up = (events >> i) & 1u;
    if (up == reported_up_) continue;  // e.g. a link that failed before it came up
    reported_up_ = up;
    if (status_callback_) (*status_callback_)(up);
    if (server_.status_callback_) server_.status_callback_(*this, up);
  }
}

void Connection::close_socket() {
  if (!socket_open()) return;
  ++generation_;  // completions for the old socket stand down
  std::error_code ignored;
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
  writing_ = false;
}

void Connection::flush() {
  if (!socket_open() || writing_) return;
  for (;;) {
    const uint8_t* data;
    size_t n = engine_.tx_pending(&data);
    if (n == 0) return;
    // Straight from the engine's send buffer: it stays put until
    // handle_tx_sent(), which is called before anything else can queue.
    std::error_code ec;
    size_t sent = socket_.write_some(asio::buffer(data, n), ec);
    if (ec == asio::error::would_block) {
      sent = 0;
    } else if (ec) {
      // A reset or broken pipe is the peer closing, whichever call finds it
      // (the read side and the POSIX client say so too).
      bool by_peer = ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
      server_.log().info("client '{}': {} ({})", id_, by_peer ? "peer closed the connection" : "write error",
                         ec.message());
      engine_.handle_link_lost(by_peer ? core::OutageReason::peer_closed : core::OutageReason::socket_error,
                               monotonic_ms());
      return;
    }
    if (sent > 0) engine_.handle_tx_sent(sent, monotonic_ms());
    if (sent < n) break;  // the socket's buffer is full
  }
  writing_ = true;
  auto ready = [this, generation = generation_](std::error_code ec) {
    if (ec == asio::error::operation_aborted || generation != generation_) return;
    on_writable_socket(ec);
  };
  socket_.async_wait(Socket::wait_write, ExactlyAllocated{ready});
}

void Connection::on_writable_socket(std::error_code ec) {
  writing_ = false;
  if (ec) {
    server_.log().info("client '{}': write error ({})", id_, ec.message());
    lend_buffers();
    engine_.handle_link_lost(core::OutageReason::socket_error, monotonic_ms());
  }
  after_engine_call();
}

void Connection::rearm_timer() {
  uint64_t deadline = engine_.next_deadline();
  if (deadline == core::kNoDeadline) {
    server_.wheel_.cancel(*this);
    return;
  }
  if (armed() && this->deadline() == deadline) return;
  server_.schedule(*this, deadline);
}

void Connection::on_deadline(uint64_t now) {
  lend_buffers();
  engine_.handle_timeout(now);
  after_engine_call();
}

void Connection::on_link_up() {
  if (status_event_count_ < 8) status_events_ |= static_cast<uint8_t>(1u << status_event_count_++);
  server_.log().info("client '{}' link up", id_);
}

void Connection::on_link_down(core::OutageReason why, uint32_t silence_ms) {
  if (status_event_count_ < 8) ++status_event_count_;  // its bit stays 0
  if (why == core::OutageReason::protocol_error) {
    const auto& info = engine_.last_protocol_error();
    server_.log().warn("client '{}' from {}: protocol error {} ({}) at line {}, byte {}; closing",
                       id_, peer(), core::error_name(info.error), core::error_description(info.error),
                       info.line, info.byte_offset);
  } else {
    server_.log().info("client '{}' link down: {} ({}), last heard {} ms ago", id_,
                       core::outage_reason_name(why), core::outage_reason_description(why),
                       silence_ms);
  }
}

asio::awaitable<std::string> Connection::readline() {
  // Only the wait is in the coroutine: its frame stays small while an idle
  // link's application waits here.
  while (engine_.rx_queued() == 0 && !closed_) co_await line_ready_.wait();
  co_return take_line();
}

std::string Connection::take_line() {
  const uint8_t* data;
  size_t len;
  if (!engine_.peek_line(&data, &len))
    throw std::system_error(make_error_code(core::Error::closed));
  std::string line(reinterpret_cast<const char*>(data), len);
  engine_.pop_line();
  return_buffers_if_idle();
  return line;
}

asio::awaitable<void> Connection::wait_up() {
  while (!engine_.is_up() && !closed_) co_await status_changed_.wait();
}

asio::awaitable<std::error_code> Connection::write(std::string_view line, WriteOptions options) {
  line = strip_trailing_newline(line);
  // A line the protocol cannot carry is refused now, not after a wait.
  if (core::Error e = validate_payload(line); e != core::Error::ok) co_return make_error_code(e);
  const auto* bytes = reinterpret_cast<const uint8_t*>(line.data());
  uint32_t ticket = 0;
  if (options.qos && options.wait) {
    // Exactly once and in order: one qos message in flight at a time.
    while (engine_.inflight() > 0 && !closed_) co_await writable_.wait();
  }
  for (;;) {
    if (closed_) co_return make_error_code(core::Error::closed);
    lend_buffers();
    core::Error e = engine_.write(bytes, line.size(), options.qos, monotonic_ms(), &ticket);
    if (e == core::Error::ok) break;
    return_buffers_if_idle();
    if (e != core::Error::would_block && e != core::Error::link_down) co_return make_error_code(e);
    co_await writable_.wait();
  }
  after_engine_call();
  if (options.qos) {
    while (engine_.is_pending(ticket) && !closed_) co_await acked_.wait();
    if (closed_ && engine_.is_pending(ticket)) co_return make_error_code(core::Error::closed);
  }
  co_return std::error_code{};
}

void Connection::close_for_shutdown() {
  if (closed_) return;
  closed_ = true;
  lend_buffers();
  engine_.close(monotonic_ms());
  close_socket();
  return_buffers_if_idle();
  server_.wheel_.cancel(*this);
  line_ready_.notify_all();
  acked_.notify_all();
  writable_.notify_all();
  status_changed_.notify_all();
}

}  // namespace resilink
