// Server: accepts sockets, reads the id line, routes the socket to the
// persistent Connection for that id.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "resilink/error_code.h"
#include "resilink/server/handshake.h"
#include "resilink/server/server.h"

namespace resilink {

using asio::ip::tcp;

namespace {
std::string join(const std::set<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
  return out.empty() ? "(none)" : out;
}

}  // namespace

std::string Server::describe(const Socket& socket) {
  std::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown peer";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

Server::Server(asio::io_context& io, ServerOptions options)
    : io_(io),
      options_(std::move(options)),
      logger_(options_.logger ? options_.logger : spdlog::default_logger()),
      acceptor_(io),
      wheel_(monotonic_ms()),
      wheel_timer_(io),
      read_buffer_(new uint8_t[kReadBufferBytes]) {}

Server::~Server() { close(); }

void Server::schedule(TimerWheel::Timer& timer, uint64_t deadline) {
  wheel_.idle_to(monotonic_ms());
  wheel_.arm(timer, deadline);
  set_wheel_timer();
}

void Server::set_wheel_timer() {
  uint64_t wake = wheel_.next_wake();
  // A later wake needs nothing: the set timer fires first and looks again.
  if (closed_ || wake >= wheel_timer_at_) return;
  wheel_timer_at_ = wake;
  wheel_timer_.expires_at(std::chrono::steady_clock::time_point(std::chrono::milliseconds(wake)));
  wheel_timer_.async_wait([this](std::error_code ec) {
    // Aborted: set again for an earlier wake, or closed (the Server may be gone).
    if (!ec) on_wheel_timer();
  });
}

void Server::on_wheel_timer() {
  wheel_timer_at_ = TimerWheel::kNever;
  wheel_.expire(monotonic_ms());
  set_wheel_timer();
}

std::error_code Server::listen() {
  std::error_code ec;
  auto address = asio::ip::make_address(options_.address, ec);
  if (ec) return ec;
  tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    logger_->error("cannot listen on {}:{}: {}", options_.address, options_.port, ec.message());
    return ec;
  }
  logger_->info("listening on {}:{} (timeout {} ms, expecting {})", options_.address, port(),
                options_.timeout_ms, join(options_.expected));
  asio::co_spawn(io_, accept_loop(), asio::detached);
  return {};
}

uint16_t Server::port() const {
  std::error_code ec;
  auto ep = acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

asio::awaitable<void> Server::accept_loop() {
  while (!closed_) {
    auto [ec, socket] = co_await acceptor_.async_accept(kUseTuple);
    if (closed_) co_return;
    if (ec) {
      logger_->warn("accept failed: {}", ec.message());
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
        // Out of file descriptors: pause instead of spinning.
        asio::steady_timer pause(io_, std::chrono::milliseconds(100));
        co_await pause.async_wait(kUseTuple);
      }
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    if (options_.send_buffer_bytes > 0) {
      int bytes = static_cast<int>(options_.send_buffer_bytes);
      socket.set_option(asio::socket_base::send_buffer_size(bytes), ec);
    }
    asio::co_spawn(io_, handshake(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> Server::handshake(Socket accepted) {
  std::string peer = describe(accepted);
  // The id line must arrive within twice the timeout, like any first read.
  // The deadline handler may run after this coroutine has ended (it can be
  // queued in the same turn as the read), so it owns what it touches.
  auto socket_ptr = std::make_shared<Socket>(std::move(accepted));
  std::erase_if(handshaking_, [](const auto& weak) { return weak.expired(); });
  handshaking_.push_back(socket_ptr);
  auto timed_out_ptr = std::make_shared<bool>(false);
  Socket& socket = *socket_ptr;
  const bool& timed_out = *timed_out_ptr;
  asio::steady_timer deadline(io_, std::chrono::milliseconds(2ull * options_.timeout_ms));
  deadline.async_wait([socket_ptr, timed_out_ptr](std::error_code ec) {
    if (ec) return;
    *timed_out_ptr = true;
    std::error_code ignored;
    socket_ptr->cancel(ignored);
  });

  IdLineReader reader;
  std::array<uint8_t, 512> chunk;
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(chunk),
                                                   kUseTuple);
    if (closed_) co_return;
    if (ec) {
      if (timed_out)
        logger_->warn("connection from {}: no id line within {} ms; closed", peer,
                      2ull * options_.timeout_ms);
      else
        logger_->warn("connection from {}: closed before sending its id ({})", peer, ec.message());
      co_return;
    }
    auto r = reader.feed(chunk.data(), n);
    if (r.status == IdLineReader::Status::need_more) continue;
    deadline.cancel();
    if (r.status == IdLineReader::Status::rejected) {
      logger_->warn("connection from {}: {}; closed", peer, reader.reason());
      co_return;
    }
    std::string_view leftover(reinterpret_cast<const char*>(chunk.data()) + r.consumed,
                              n - r.consumed);
    route(std::move(socket), std::string(reader.id()), leftover, std::move(peer));
    co_return;
  }
}

void Server::route(Socket socket, std::string id, std::string_view leftover, std::string peer) {
  if (!options_.expected.empty() && !options_.expected.count(id))
    logger_->warn("unexpected client id '{}' from {} (expected {}); serving it anyway", id, peer,
                  join(options_.expected));
  Connection& conn = connection(id);
  if (conn.socket_open()) {
    if (options_.duplicate_policy == DuplicatePolicy::reject_new) {
      logger_->warn("client '{}' from {}: a connection for this id is still open (from {}); "
                    "refusing the newcomer",
                    id, peer, conn.peer());
      return;  // socket closes as it goes out of scope
    }
    logger_->warn("client '{}' from {}: replaces its still-open connection from {}", id, peer,
                  conn.peer());
  }
  conn.attach(std::move(socket), leftover, peer);
}

Connection& Server::connection(const std::string& id) {
  auto it = connections_.find(id);
  if (it != connections_.end()) return *it->second;
  it = connections_.emplace(id, nullptr).first;
  try {
    // The Connection names itself by its key, which lives as long as it does.
    it->second.reset(new Connection(*this, it->first));
  } catch (...) {
    connections_.erase(it);
    throw;
  }
  Connection* conn = it->second.get();
  if (connection_callback_) connection_callback_(*conn);
  connection_changed_.notify_all();
  return *conn;
}

Connection* Server::find(const std::string& id) {
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second.get();
}

asio::awaitable<std::reference_wrapper<Connection>> Server::client(std::string id) {
  for (;;) {
    Connection* conn = find(id);
    if (conn && conn->status()) co_return std::ref(*conn);
    if (closed_) throw std::system_error(make_error_code(core::Error::closed));
    co_await connection_changed_.wait();
  }
}

asio::awaitable<void> Server::wait_all(std::set<std::string> ids) {
  if (ids.empty()) ids = options_.expected;
  for (;;) {
    bool all = true;
    for (const auto& id : ids) {
      Connection* conn = find(id);
      if (!conn || conn->stats().connects == 0) all = false;
    }
    if (all || closed_) co_return;
    co_await connection_changed_.wait();
  }
}

void Server::close() {
  if (closed_) return;
  closed_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  for (auto& weak : handshaking_)
    if (auto socket = weak.lock()) socket->close(ignored);
  handshaking_.clear();
  for (auto& [id, conn] : connections_) conn->close_for_shutdown();
  wheel_timer_.cancel();
  wheel_timer_at_ = TimerWheel::kNever;
  connection_changed_.notify_all();
}

}  // namespace resilink
