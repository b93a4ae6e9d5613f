#include "resilink/client/client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "resilink/core/client_id.h"

namespace resilink {

namespace {

#ifdef MSG_NOSIGNAL
constexpr int kSendFlags = MSG_NOSIGNAL;  // a dead peer is an error code, not SIGPIPE
#else
constexpr int kSendFlags = 0;
#endif

constexpr size_t kRxBufferSize = 4096;
// Bytes read per run_once at most, so a flooding peer cannot starve the
// caller's other fds and timers.
constexpr size_t kMaxRxPerPass = 64 * 1024;
// A wait with no deadline still wakes this often, so a blocking helper never
// sleeps forever on a state with nothing to poll.
constexpr int kMaxPollMs = 1000;

std::shared_ptr<spdlog::logger> default_logger() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    auto l = std::make_shared<spdlog::logger>(
        "resilink.client", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    l->set_level(spdlog::level::info);
    return l;
  }();
  return logger;
}

uint32_t derive_seed(const std::string& id) {
  uint32_t h = 2166136261u;  // FNV-1a of the id, mixed with the clock
  for (unsigned char c : id) h = (h ^ c) * 16777619u;
  h ^= static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return h ? h : 1;
}

uint64_t deadline_after(std::chrono::milliseconds timeout) {
  uint64_t now = monotonic_ms();
  if (timeout.count() <= 0) return now;
  auto count = static_cast<uint64_t>(timeout.count());
  return count >= core::kNoDeadline - now ? core::kNoDeadline : now + count;
}

}  // namespace

// ---------------------------------------------------------------- events

// The observer records (the timeline, the protocol error while the engine
// still has it); logging and callbacks wait for dispatch_events().
void Client::Events::on_link_up() {
  uint64_t at = monotonic_ms();
  LinkTimeline& t = client->timeline_;
  t.up_at = at;
  bool recovered = client->recovering_;
  if (recovered) {
    client->recovering_ = false;
    ++t.recoveries;
    t.last_outage_ms = static_cast<uint32_t>(at - t.down_at);
    t.last_recovery_ms = static_cast<uint32_t>(at - t.reconnect_started_at);
  }
  client->pending_events_.push_back({true, recovered, core::OutageReason::none, 0});
}

void Client::Events::on_link_down(core::OutageReason why, uint32_t silence_ms) {
  if (why == core::OutageReason::protocol_error)
    client->last_protocol_error_ = client->engine_->last_protocol_error();
  if (why != core::OutageReason::closed_by_app) {
    client->timeline_.down_at = monotonic_ms();
    client->reconnect_pending_ = true;
    client->recovering_ = true;
  }
  client->pending_events_.push_back({false, false, why, silence_ms});
}

void Client::dispatch_events() {
  // Swap out first: a callback may run the client and queue more events.
  std::vector<Event> events;
  events.swap(pending_events_);
  for (const Event& e : events) {
    if (e.up && e.recovered) {
      log_->info("[{}] link up to {}:{} (reconnect {}; outage {} ms, recovery {} ms)",
                 options_.id, options_.host, options_.port, reconnects(),
                 timeline_.last_outage_ms, timeline_.last_recovery_ms);
    } else if (e.up) {
      log_->info("[{}] link up to {}:{}", options_.id, options_.host, options_.port);
    } else if (e.why == core::OutageReason::closed_by_app) {
      log_->info("[{}] link closed by the application", options_.id);
    } else {
      if (e.why == core::OutageReason::protocol_error) {
        const core::ProtocolErrorInfo& p = last_protocol_error_;
        log_->error("[{}] protocol error from {}:{}: {} ({}) at line {}, byte offset {}",
                    options_.id, options_.host, options_.port, core::error_name(p.error),
                    core::error_description(p.error), p.line, p.byte_offset);
      }
      uint64_t now = monotonic_ms();
      uint64_t deadline = engine_->next_deadline();
      uint64_t hold_off = deadline == core::kNoDeadline || deadline < now ? 0 : deadline - now;
      std::string cause = core::outage_reason_description(e.why);
      if (last_socket_error_) cause += std::string(": ") + std::strerror(last_socket_error_);
      log_->warn("[{}] link down: {} ({}), silence_ms={}; reconnecting in {} ms", options_.id,
                 core::outage_reason_name(e.why), cause, e.silence_ms, hold_off);
    }
    if (!e.up) last_socket_error_ = 0;
    if (options_.on_status) options_.on_status(e.up);
  }
}

// ---------------------------------------------------------------- lifecycle

Client::Client(ClientOptions options)
    : options_(std::move(options)),
      log_(options_.logger ? options_.logger : default_logger()),
      rx_buffer_(new unsigned char[kRxBufferSize]) {
  events_.client = this;
  core::EngineConfig config;
  config.role = core::Role::client;
  config.timeout_ms = options_.timeout_ms;
  config.client_id = options_.id.c_str();
  config.hold_off_ms = options_.hold_off_ms;
  config.backoff_initial_ms = options_.backoff_initial_ms;
  config.backoff_max_ms = options_.backoff_max_ms;
  config.connect_timeout_ms = options_.connect_timeout_ms;
  config.random_seed = options_.random_seed ? options_.random_seed : derive_seed(options_.id);
  config.window = options_.window;
  engine_ = std::make_unique<core::Engine>(config, &events_);
}

Client::~Client() {
  options_.on_status = nullptr;  // the owner may be half torn down
  if (engine_->state() != core::LinkState::closed) close();
  close_socket();
}

core::Error Client::start() {
  core::Error id_error = core::validate_client_id(
      reinterpret_cast<const uint8_t*>(options_.id.data()), options_.id.size());
  if (id_error != core::Error::ok) {
    log_->error("invalid client id '{}': {} ({})", options_.id, core::error_name(id_error),
                core::error_description(id_error));
    return core::Error::bad_config;
  }
  if (options_.port == 0) {
    log_->error("[{}] no server port given", options_.id);
    return core::Error::bad_config;
  }
  core::Error e = engine_->start(monotonic_ms());
  if (e != core::Error::ok) {
    log_->error("[{}] start: {} ({})", options_.id, core::error_name(e),
                core::error_description(e));
  }
  return e;
}

void Client::close() {
  uint64_t now = monotonic_ms();
  if (connection_open() && !connect_in_progress_) flush_tx(now);  // pending ACKs, best effort
  engine_->close(now);
  close_socket();
  dispatch_events();
}

uint32_t Client::reconnects() const {
  uint32_t connects = engine_->stats().connects;
  return connects > 0 ? connects - 1 : 0;
}

bool Client::connection_open() const {
  core::LinkState s = engine_->state();
  return s == core::LinkState::await_peer || s == core::LinkState::up;
}

// ---------------------------------------------------------------- driver loop

void Client::run_once(int max_wait_ms, std::span<pollfd> extra_fds) {
  service(monotonic_ms());

  poll_set_.clear();
  bool watch_socket = socket_ >= 0;
  if (watch_socket) {
    short events = POLLIN;
    const uint8_t* data;
    if (connect_in_progress_) events = POLLOUT;
    else if (engine_->tx_pending(&data) > 0) events |= POLLOUT;
    poll_set_.push_back({socket_, events, 0});
  }
  poll_set_.insert(poll_set_.end(), extra_fds.begin(), extra_fds.end());

  uint64_t now = monotonic_ms();
  int64_t wait = max_wait_ms < 0 ? kMaxPollMs : max_wait_ms;
  uint64_t deadline = engine_->next_deadline();
  if (deadline != core::kNoDeadline)
    wait = std::min<int64_t>(wait, deadline > now ? static_cast<int64_t>(deadline - now) : 0);
  int ready = ::poll(poll_set_.data(), static_cast<nfds_t>(poll_set_.size()),
                     static_cast<int>(wait));
  if (ready < 0) {
    if (errno != EINTR) log_->error("[{}] poll: {}", options_.id, std::strerror(errno));
    for (pollfd& p : poll_set_) p.revents = 0;
  }
  size_t first_extra = watch_socket ? 1 : 0;
  for (size_t i = 0; i < extra_fds.size(); ++i)
    extra_fds[i].revents = poll_set_[first_extra + i].revents;

  now = monotonic_ms();
  if (watch_socket && socket_ >= 0) {
    short revents = poll_set_[0].revents;
    if (connect_in_progress_) {
      if (revents) finish_connect(now);
    } else if (revents & (POLLIN | POLLHUP | POLLERR)) {
      receive(now);
    }
  }
  service(now);
}

// Steps 1, 2 and 4 of the engine's driver loop.
void Client::service(uint64_t now) {
  engine_->handle_timeout(now);
  act_on_state();
  flush_tx(now);
  act_on_state();  // a failed send may have ended the connection
  dispatch_events();
}

void Client::act_on_state() {
  if (engine_->state() == core::LinkState::link_check) {
    if (options_.link_check) options_.link_check();
    uint64_t now = monotonic_ms();  // the hook may have taken a while
    engine_->handle_link_ready(now);
    if (reconnect_pending_) {
      reconnect_pending_ = false;
      timeline_.reconnect_started_at = now;
    }
  }
  if (engine_->state() == core::LinkState::connecting && socket_ < 0) start_connect(monotonic_ms());
  bool keep = engine_->state() == core::LinkState::connecting ? connect_in_progress_
                                                               : connection_open();
  if (socket_ >= 0 && !keep) {
    if (connect_in_progress_ && engine_->state() == core::LinkState::connect_wait) {
      // The engine's connect timeout ran out (no answer at all: radio down,
      // packets dropped).
      uint64_t now = monotonic_ms();
      uint64_t deadline = engine_->next_deadline();
      log_->warn("[{}] connect to {}:{} failed: no answer within the connect timeout; "
                 "retrying in {} ms (failure {})",
                 options_.id, options_.host, options_.port, deadline > now ? deadline - now : 0,
                 engine_->stats().connect_failures);
    }
    close_socket();
  }
}

// ---------------------------------------------------------------- connect

void Client::start_connect(uint64_t now) {
  ++connect_attempts_;
  addresses_.clear();
  next_address_ = 0;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(options_.port);
  int rc = ::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    connect_failed(now, 0, ::gai_strerror(rc));
    return;
  }
  for (addrinfo* a = found; a; a = a->ai_next) {
    if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
    Address address{};
    std::memcpy(&address.storage, a->ai_addr, a->ai_addrlen);
    address.length = a->ai_addrlen;
    addresses_.push_back(address);
  }
  ::freeaddrinfo(found);
  log_->info("[{}] connecting to {}:{} (attempt {})", options_.id, options_.host, options_.port,
             connect_attempts_);
  try_next_address(now);
}

void Client::try_next_address(uint64_t now) {
  int error = EHOSTUNREACH;
  while (next_address_ < addresses_.size()) {
    const Address& a = addresses_[next_address_++];
    int type = SOCK_STREAM;
#ifdef SOCK_CLOEXEC
    type |= SOCK_CLOEXEC;
#endif
    int fd = ::socket(a.storage.ss_family, type, 0);
    if (fd < 0) {
      error = errno;
      continue;
    }
    int flags = ::fcntl(fd, F_GETFL, 0);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
      error = errno;
      ::close(fd);
      continue;
    }
    // Lines are small and latency matters more than segment count.
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc;
    do {
      rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a.storage), a.length);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0 || errno == EINPROGRESS) {
      socket_ = fd;
      connect_in_progress_ = rc != 0;
      if (rc == 0) finish_connect(now);
      return;
    }
    error = errno;
    ::close(fd);
  }
  connect_failed(now, error, nullptr);
}

void Client::finish_connect(uint64_t now) {
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(socket_, SOL_SOCKET, SO_ERROR, &error, &length) < 0) error = errno;
  connect_in_progress_ = false;
  if (error != 0) {
    close_socket();
    if (next_address_ < addresses_.size()) {
      log_->debug("[{}] address {} of {}: {}", options_.id, next_address_, addresses_.size(),
                  std::strerror(error));
      try_next_address(now);
    } else {
      connect_failed(now, error, nullptr);
    }
    return;
  }
  log_->info("[{}] connected to {}:{}", options_.id, options_.host, options_.port);
  engine_->handle_connected(now);
}

void Client::connect_failed(uint64_t now, int error, const char* what) {
  close_socket();
  engine_->handle_connect_failed(now);
  uint64_t deadline = engine_->next_deadline();
  uint64_t backoff = deadline == core::kNoDeadline || deadline < now ? 0 : deadline - now;
  log_->warn("[{}] connect to {}:{} failed: {}; retrying in {} ms (failure {})", options_.id,
             options_.host, options_.port, what ? what : std::strerror(error), backoff,
             engine_->stats().connect_failures);
}

// ---------------------------------------------------------------- data

void Client::receive(uint64_t now) {
  size_t total = 0;
  while (socket_ >= 0 && connection_open() && total < kMaxRxPerPass) {
    ssize_t n = ::recv(socket_, rx_buffer_.get(), kRxBufferSize, 0);
    if (n > 0) {
      engine_->handle_rx(rx_buffer_.get(), static_cast<size_t>(n), now);
      total += static_cast<size_t>(n);
      // A short read emptied the socket: another recv would only say EAGAIN
      // (a syscall per round trip); poll reports whatever comes next.
      if (static_cast<size_t>(n) < kRxBufferSize) return;
      continue;
    }
    if (n == 0) {
      engine_->handle_link_lost(core::OutageReason::peer_closed, now);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    socket_failed(errno, "recv", now);
    return;
  }
}

void Client::flush_tx(uint64_t now) {
  while (socket_ >= 0 && !connect_in_progress_ && connection_open()) {
    const uint8_t* data;
    size_t length = engine_->tx_pending(&data);
    if (length == 0) return;
    ssize_t n = ::send(socket_, data, length, kSendFlags);
    if (n > 0) {
      engine_->handle_tx_sent(static_cast<size_t>(n), now);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    socket_failed(n < 0 ? errno : EPIPE, "send", now);
    return;
  }
}

void Client::socket_failed(int error, const char* what, uint64_t now) {
  last_socket_error_ = error;
  log_->debug("[{}] {}: {}", options_.id, what, std::strerror(error));
  bool by_peer = error == ECONNRESET || error == EPIPE;
  engine_->handle_link_lost(by_peer ? core::OutageReason::peer_closed
                                    : core::OutageReason::socket_error,
                            now);
}

void Client::close_socket() {
  if (socket_ < 0) return;
  ::close(socket_);
  socket_ = -1;
  connect_in_progress_ = false;
}

// ---------------------------------------------------------------- app API

core::Error Client::try_write(std::string_view payload, bool qos, uint32_t* ticket) {
  payload = strip_trailing_newline(payload);
  return engine_->write(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), qos,
                        monotonic_ms(), ticket);
}

bool Client::is_pending(uint32_t ticket) const { return engine_->is_pending(ticket); }

std::optional<std::string> Client::try_readline() {
  const uint8_t* data;
  size_t length;
  if (!engine_->peek_line(&data, &length)) return std::nullopt;
  std::string line(reinterpret_cast<const char*>(data), length);
  engine_->pop_line();
  return line;
}

Client::WaitResult Client::wait_until(const std::function<bool()>& done, uint64_t deadline) {
  for (;;) {
    if (done()) return WaitResult::done;
    if (engine_->state() == core::LinkState::closed) return WaitResult::closed;
    uint64_t now = monotonic_ms();
    if (now >= deadline) return WaitResult::timed_out;
    uint64_t left = deadline - now;
    run_once(left > static_cast<uint64_t>(kMaxPollMs) ? kMaxPollMs : static_cast<int>(left));
  }
}

std::error_code Client::write(std::string_view payload, WriteOptions options,
                              std::chrono::milliseconds timeout) {
  payload = strip_trailing_newline(payload);
  if (core::Error e = validate_payload(payload); e != core::Error::ok) return make_error_code(e);
  switch (engine_->state()) {
    case core::LinkState::closed:
      return make_error_code(core::Error::closed);
    case core::LinkState::idle:
      return ClientErrc::not_started;
    default:
      break;
  }
  uint64_t deadline = deadline_after(timeout);
  auto fail = [](WaitResult r, ClientErrc on_timeout) -> std::error_code {
    if (r == WaitResult::closed) return make_error_code(core::Error::closed);
    return on_timeout;
  };

  if (options.qos && options.wait) {
    WaitResult r = wait_until([this] { return engine_->inflight() == 0; }, deadline);
    if (r != WaitResult::done) return fail(r, ClientErrc::timed_out);
  }
  uint32_t ticket = 0;
  core::Error result = core::Error::ok;
  WaitResult r = wait_until(
      [&] {
        result = try_write(payload, options.qos, &ticket);
        return result != core::Error::would_block && result != core::Error::link_down;
      },
      deadline);
  if (r != WaitResult::done) return fail(r, ClientErrc::timed_out);
  if (result != core::Error::ok) return make_error_code(result);
  if (!options.qos) {
    run_once(0);  // put it on the wire now; the caller may not drive us again soon
    return {};
  }
  if (!options.wait) return {};
  r = wait_until([&] { return !engine_->is_pending(ticket); }, deadline);
  if (r != WaitResult::done) return fail(r, ClientErrc::timed_out_awaiting_ack);
  return {};
}

std::optional<std::string> Client::readline(std::chrono::milliseconds timeout) {
  if (engine_->state() == core::LinkState::idle) return try_readline();
  std::optional<std::string> line;
  wait_until(
      [&] {
        line = try_readline();
        return line.has_value();
      },
      deadline_after(timeout));
  return line;
}

}  // namespace resilink
