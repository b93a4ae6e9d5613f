// One proxied connection: two sockets, two ToxicPipes, the coroutines that
// drive them (see chaos_internal.h for the state table).
#include <algorithm>
#include <array>

#include "chaos_internal.h"

namespace resilink::lab {

namespace {

constexpr size_t kReadChunk = 16 * 1024;

std::string describe(const tcp::socket& socket) {
  std::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown peer";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

void reset_socket(tcp::socket& socket) {
  std::error_code ignored;
  socket.set_option(asio::socket_base::linger(true, 0), ignored);
  socket.close(ignored);
}

// FIN, then throw away what the peer sent that nobody will read, so the
// close itself does not turn into an RST.
void close_gracefully(tcp::socket& socket) {
  std::error_code ec;
  socket.non_blocking(true, ec);
  socket.shutdown(tcp::socket::shutdown_send, ec);
  std::array<uint8_t, 4096> sink;
  for (int i = 0; i < 64 && socket.is_open(); ++i) {
    socket.read_some(asio::buffer(sink), ec);
    if (ec) break;
  }
  socket.close(ec);
}

}  // namespace

ChaosConnection::ChaosConnection(std::shared_ptr<ChaosProxy::Impl> proxy, uint64_t id, tcp::socket client)
    : proxy_(std::move(proxy)),
      id_(id),
      peer_(describe(client)),
      sockets_{std::move(client), tcp::socket(proxy_->io)},
      resolver_(proxy_->io),
      dirs_{Direction(proxy_->io, Stream::upstream, derive_seed(~proxy_->options.seed, id * 2)),
            Direction(proxy_->io, Stream::downstream, derive_seed(~proxy_->options.seed, id * 2 + 1))} {}

void ChaosConnection::start() {
  for (auto& dir : dirs_) dir.pipe.set_toxics(proxy_->toxics);
  arm_reset_timers();
  if (state_ == State::closed) return;  // reset_peer with no timeout
  if (proxy_->blocking()) {
    proxy_->log->info("chaos #{}: connection from {} held: an outage is active, so it is not connected "
                      "upstream until the outage ends",
                      id_, peer_);
    return;
  }
  begin_connect();
}

void ChaosConnection::begin_connect() {
  state_ = State::connecting;
  asio::co_spawn(proxy_->io, connect_upstream(shared_from_this()), asio::detached);
}

void ChaosConnection::toxics_changed() {
  if (state_ == State::closed) return;
  for (int d = 0; d < 2; ++d) {
    dirs_[d].pipe.set_toxics(proxy_->toxics);
    wake(d);
  }
  arm_reset_timers();
  if (state_ == State::pending && !proxy_->blocking()) begin_connect();
}

void ChaosConnection::arm_reset_timers() {
  // Cancel the timers of reset_peer toxics that are gone.
  for (auto it = reset_timers_.begin(); it != reset_timers_.end();) {
    bool active = std::any_of(proxy_->toxics.begin(), proxy_->toxics.end(), [&](const Toxic& t) {
      return t.type == ToxicType::reset_peer && t.name == it->first;
    });
    if (active) {
      ++it;
    } else {
      it->second->cancel();
      it = reset_timers_.erase(it);
    }
  }
  for (const Toxic& t : proxy_->toxics) {
    if (t.type != ToxicType::reset_peer || reset_timers_.count(t.name)) continue;
    std::string name = t.name;
    if (t.timeout_ms == 0) {
      ++proxy_->counters.resets;
      close(Close::reset_both, "reset_peer '" + name + "'");
      return;
    }
    auto timer = std::make_unique<asio::steady_timer>(proxy_->io, std::chrono::milliseconds(t.timeout_ms));
    timer->async_wait([self = shared_from_this(), name](std::error_code ec) {
      if (ec || self->state_ == State::closed) return;
      ++self->proxy_->counters.resets;
      self->close(Close::reset_both, "reset_peer '" + name + "'");
    });
    reset_timers_[name] = std::move(timer);
  }
}

asio::awaitable<void> ChaosConnection::connect_upstream(std::shared_ptr<ChaosConnection> self) {
  const ChaosOptions& o = self->proxy_->options;
  auto [rec, endpoints] =
      co_await self->resolver_.async_resolve(o.upstream_host, std::to_string(o.upstream_port), kAsTuple);
  if (self->state_ != State::connecting) co_return;
  std::error_code ec = rec;
  if (!ec) {
    auto [cec, endpoint] = co_await asio::async_connect(self->sockets_[1], endpoints, kAsTuple);
    if (self->state_ != State::connecting) co_return;
    ec = cec;
  }
  if (ec) {
    self->proxy_->log->warn("chaos #{}: connection from {}: upstream {}:{} unreachable ({}); closing it",
                            self->id_, self->peer_, o.upstream_host, o.upstream_port, ec.message());
    self->close(Close::plain, "upstream unreachable");
    co_return;
  }
  for (auto& socket : self->sockets_) {
    std::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // slicer pieces leave as they are written
    socket.non_blocking(true, ignored);
  }
  self->state_ = State::open;
  self->proxy_->log->info("chaos #{}: connection from {} open to {}:{}", self->id_, self->peer_,
                          o.upstream_host, o.upstream_port);
  for (int d = 0; d < 2; ++d) {
    asio::co_spawn(self->proxy_->io, read_loop(self, d), asio::detached);
    asio::co_spawn(self->proxy_->io, write_loop(self, d), asio::detached);
  }
}

asio::awaitable<void> ChaosConnection::read_loop(std::shared_ptr<ChaosConnection> self, int d) {
  Direction& dir = self->dirs_[d];
  tcp::socket& from = self->sockets_[d];
  std::vector<uint8_t> buffer(kReadChunk);
  while (self->state_ == State::open && !dir.pipe.end_seen()) {
    if (dir.pipe.room() == 0) {
      // Held or full: do not read, not even to notice a close.
      dir.reader_wake.expires_at(std::chrono::steady_clock::time_point::max());
      co_await dir.reader_wake.async_wait(kAsTuple);
      continue;
    }
    auto [wait_error] = co_await from.async_wait(tcp::socket::wait_read, kAsTuple);
    if (self->state_ != State::open) co_return;
    size_t room = dir.pipe.room();
    if (room == 0) continue;  // became held while waiting: leave the bytes in the kernel
    std::error_code ec = wait_error;
    size_t n = 0;
    if (!ec) n = from.read_some(asio::buffer(buffer.data(), std::min(room, buffer.size())), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
    uint64_t now = steady_now_us();
    if (ec) {
      bool reset = ec != asio::error::eof || self->dead_[d];
      self->proxy_->log->debug("chaos #{}: {} {} ({})", self->id_, side(d),
                               reset ? "reset the connection" : "closed its side", ec.message());
      dir.pipe.push_end(reset ? ToxicPipe::End::reset : ToxicPipe::End::eof, now);
      self->wake(d);
      self->maybe_finish();
      co_return;
    }
    dir.pipe.push_data(buffer.data(), n, now);
    self->wake(d);
  }
}

asio::awaitable<void> ChaosConnection::write_loop(std::shared_ptr<ChaosConnection> self, int d) {
  Direction& dir = self->dirs_[d];
  tcp::socket& to = self->sockets_[1 - d];
  while (self->state_ == State::open) {
    ToxicPipe::Action a = dir.pipe.next(steady_now_us());
    switch (a.kind) {
      case ToxicPipe::Action::Kind::idle:
        dir.writer_wake.expires_at(std::chrono::steady_clock::time_point::max());
        co_await dir.writer_wake.async_wait(kAsTuple);
        break;
      case ToxicPipe::Action::Kind::wait:
        dir.writer_wake.expires_at(steady_from_us(a.until_us));
        co_await dir.writer_wake.async_wait(kAsTuple);
        break;
      case ToxicPipe::Action::Kind::write: {
        auto [ec, n] = co_await to.async_write_some(asio::buffer(a.data, a.size), kAsTuple);
        if (self->state_ != State::open) co_return;
        if (ec) {
          self->destination_failed(d, ec);
          break;
        }
        dir.pipe.wrote(n, steady_now_us());
        (d == 0 ? self->proxy_->counters.bytes_upstream : self->proxy_->counters.bytes_downstream) += n;
        dir.reader_wake.cancel();  // room again
        break;
      }
      case ToxicPipe::Action::Kind::shutdown: {
        std::error_code ignored;
        to.shutdown(tcp::socket::shutdown_send, ignored);
        dir.pipe.passed_end();
        self->proxy_->log->debug("chaos #{}: passed the {}'s close on to the {}", self->id_, side(d),
                                 side(1 - d));
        self->maybe_finish();
        break;
      }
      case ToxicPipe::Action::Kind::reset:
        self->pass_reset(d);
        co_return;
      case ToxicPipe::Action::Kind::limit_close:
        self->limit_close(d, a.toxic);
        co_return;
    }
  }
}

void ChaosConnection::destination_failed(int d, const std::error_code& ec) {
  int dead = 1 - d;
  proxy_->log->debug("chaos #{}: write to the {} failed ({}); its data is dropped", id_, side(dead),
                     ec.message());
  dirs_[d].pipe.discard();
  dead_[dead] = true;
  // The dead side's reset travels back through the other direction, behind
  // what that side sent before it died, and only when nothing holds it. If
  // that direction's reader has already ended, the reset is queued here; if
  // not, the reader finds it (dead_ turns its EOF into a reset).
  Direction& back = dirs_[dead];
  if (back.pipe.end_seen()) back.pipe.push_end(ToxicPipe::End::reset, steady_now_us());
  wake(0);
  wake(1);
  maybe_finish();
}

void ChaosConnection::pass_reset(int d) {
  int dest = 1 - d;
  dirs_[d].pipe.passed_end();
  proxy_->log->debug("chaos #{}: passing the {}'s reset on to the {}", id_, side(d), side(dest));
  reset_socket(sockets_[dest]);
  close(Close::plain, std::string(side(d)) + " reset the connection");
}

void ChaosConnection::limit_close(int d, const std::string& toxic) {
  ++proxy_->counters.limit_closes;
  close(Close::graceful, "limit_data '" + toxic + "' spent after " + std::to_string(dirs_[d].pipe.crossed()) +
                             " bytes " + to_string(dirs_[d].pipe.direction()));
}

void ChaosConnection::maybe_finish() {
  if (state_ == State::open && dirs_[0].pipe.finished() && dirs_[1].pipe.finished())
    close(Close::plain, "both sides closed");
}

void ChaosConnection::close(Close how, const std::string& why) {
  if (state_ == State::closed) return;
  bool was_open = state_ == State::open;
  state_ = State::closed;
  std::error_code ignored;
  resolver_.cancel();
  for (auto& [name, timer] : reset_timers_) timer->cancel();
  reset_timers_.clear();
  for (int d = 0; d < 2; ++d) wake(d);
  for (auto& socket : sockets_) {
    if (!socket.is_open()) continue;
    switch (how) {
      case Close::plain:
        socket.close(ignored);
        break;
      case Close::graceful:
        close_gracefully(socket);
        break;
      case Close::reset_both:
        reset_socket(socket);
        break;
    }
  }
  if (was_open)
    proxy_->log->info("chaos #{}: connection from {} closed: {} ({} bytes up, {} down)", id_, peer_, why,
                      dirs_[0].pipe.crossed(), dirs_[1].pipe.crossed());
  else
    proxy_->log->info("chaos #{}: connection from {} closed before it was connected upstream: {}", id_, peer_,
                      why);
  proxy_->connection_closed(id_);
}

}  // namespace resilink::lab
