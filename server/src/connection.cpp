// Connection: drives one server-role core::Engine with an Asio socket, a timer
// and coroutine-friendly waits. No protocol decisions are made here.
#include <spdlog/spdlog.h>

#include "resilink/error_code.h"
#include "resilink/server/server.h"

namespace resilink {

using asio::ip::tcp;

asio::awaitable<void> Notifier::wait() {
  co_await timer_.async_wait(kUseTuple);
}

namespace {
core::EngineConfig server_engine_config(const ServerOptions& options) {
  core::EngineConfig config;
  config.role = core::Role::server;
  config.timeout_ms = options.timeout_ms;
  config.window = options.window;
  return config;
}
}  // namespace

Connection::Connection(Server& server, std::string id)
    : server_(server),
      id_(std::move(id)),
      engine_(server_engine_config(server.options()), this),
      timer_(server.io_),
      line_ready_(server.io_.get_executor()),
      acked_(server.io_.get_executor()),
      writable_(server.io_.get_executor()),
      status_changed_(server.io_.get_executor()) {}

Connection::~Connection() { close_for_shutdown(); }

uint32_t Connection::reconnects() const {
  uint32_t connects = engine_.stats().connects;
  return connects > 0 ? connects - 1 : 0;
}

void Connection::attach(tcp::socket socket, std::string_view leftover, std::string peer) {
  if (closed_) return;
  close_socket();  // never two sockets feeding one engine
  peer_ = std::move(peer);
  socket_ = std::make_shared<tcp::socket>(std::move(socket));
  uint64_t generation = ++generation_;
  uint64_t now = monotonic_ms();
  engine_.handle_connected(now);
  server_.log().info("client '{}' connected from {} (connection #{})", id_, peer_,
                     engine_.stats().connects);
  if (!leftover.empty())
    engine_.handle_rx(reinterpret_cast<const uint8_t*>(leftover.data()), leftover.size(), now);
  asio::co_spawn(server_.io_, read_loop(socket_, generation), asio::detached);
  after_engine_call();
}

asio::awaitable<void> Connection::read_loop(std::shared_ptr<tcp::socket> socket,
                                            uint64_t generation) {
  std::array<uint8_t, 4096> buffer;
  for (;;) {
    auto [ec, n] = co_await socket->async_read_some(asio::buffer(buffer),
                                                    kUseTuple);
    if (generation != generation_) co_return;  // this socket was replaced or closed
    uint64_t now = monotonic_ms();
    if (ec) {
      bool eof = ec == asio::error::eof || ec == asio::error::connection_reset;
      server_.log().info("client '{}': {} ({})", id_, eof ? "peer closed the connection" : "read error",
                         ec.message());
      engine_.handle_link_lost(eof ? core::OutageReason::peer_closed : core::OutageReason::socket_error,
                               now);
      after_engine_call();
      co_return;
    }
    engine_.handle_rx(buffer.data(), n, now);
    after_engine_call();
  }
}

void Connection::after_engine_call() {
  bool open = engine_.state() == core::LinkState::await_peer || engine_.is_up();
  if (socket_ && !open) close_socket();
  flush();
  rearm_timer();
  if (status_events_.empty()) return;
  std::vector<bool> events;
  events.swap(status_events_);
  status_changed_.notify_all();
  writable_.notify_all();
  server_.connection_changed_.notify_all();
  for (bool up : events) {
    if (up == reported_up_) continue;  // e.g. a link that failed before it came up
    reported_up_ = up;
    if (status_callback_) status_callback_(up);
    if (server_.status_callback_) server_.status_callback_(*this, up);
  }
}

void Connection::close_socket() {
  if (!socket_) return;
  ++generation_;  // the reader and writer of the old socket stand down
  std::error_code ignored;
  socket_->shutdown(tcp::socket::shutdown_both, ignored);
  socket_->close(ignored);
  socket_.reset();
  writing_ = false;
}

void Connection::flush() {
  if (!socket_ || writing_) return;
  const uint8_t* data;
  size_t n = engine_.tx_pending(&data);
  if (n == 0) return;
  out_.assign(data, data + n);
  writing_ = true;
  uint64_t generation = generation_;
  socket_->async_write_some(asio::buffer(out_), [this, generation](std::error_code ec, size_t sent) {
    if (generation != generation_) return;
    writing_ = false;
    uint64_t now = monotonic_ms();
    if (ec) {
      // A reset or broken pipe is the peer closing, whichever call finds it
      // (the read loop and the POSIX client say so too).
      bool by_peer = ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
      server_.log().info("client '{}': {} ({})", id_, by_peer ? "peer closed the connection" : "write error",
                         ec.message());
      engine_.handle_link_lost(by_peer ? core::OutageReason::peer_closed : core::OutageReason::socket_error,
                               now);
    } else {
      engine_.handle_tx_sent(sent, now);
    }
    after_engine_call();
  });
}

void Connection::rearm_timer() {
  uint64_t deadline = engine_.next_deadline();
  if (deadline == armed_deadline_) return;
  armed_deadline_ = deadline;
  if (deadline == core::kNoDeadline) {
    timer_.cancel();
    return;
  }
  uint64_t now = monotonic_ms();
  auto delay = std::chrono::milliseconds(deadline > now ? deadline - now : 0);
  timer_.expires_after(delay);
  timer_.async_wait([this](std::error_code ec) {
    if (ec) return;  // re-armed or cancelled
    armed_deadline_ = core::kNoDeadline;
    engine_.handle_timeout(monotonic_ms());
    after_engine_call();
  });
}

void Connection::on_link_up() {
  status_events_.push_back(true);
  server_.log().info("client '{}' link up", id_);
}

void Connection::on_link_down(core::OutageReason why, uint32_t silence_ms) {
  status_events_.push_back(false);
  if (why == core::OutageReason::protocol_error) {
    const auto& info = engine_.last_protocol_error();
    server_.log().warn("client '{}' from {}: protocol error {} ({}) at line {}, byte {}; closing",
                       id_, peer_, core::error_name(info.error), core::error_description(info.error),
                       info.line, info.byte_offset);
  } else {
    server_.log().info("client '{}' link down: {} ({}), last heard {} ms ago", id_,
                       core::outage_reason_name(why), core::outage_reason_description(why),
                       silence_ms);
  }
}

asio::awaitable<std::string> Connection::readline() {
  for (;;) {
    const uint8_t* data;
    size_t len;
    if (engine_.peek_line(&data, &len)) {
      std::string line(reinterpret_cast<const char*>(data), len);
      engine_.pop_line();
      co_return line;
    }
    if (closed_) throw std::system_error(make_error_code(core::Error::closed));
    co_await line_ready_.wait();
  }
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
    core::Error e = engine_.write(bytes, line.size(), options.qos, monotonic_ms(), &ticket);
    if (e == core::Error::ok) break;
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
  engine_.close(monotonic_ms());
  close_socket();
  timer_.cancel();
  line_ready_.notify_all();
  acked_.notify_all();
  writable_.notify_all();
  status_changed_.notify_all();
}

}  // namespace resilink
