#include "throughput_generator.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <stdexcept>
#include <system_error>

#include "resilink/core/engine.h"
#include "resilink/error_code.h"

namespace resilink::bench::loopback {

namespace {

// No link can stay this long without an acknowledgement in a healthy run.
constexpr uint64_t kStallMs = 3000;
constexpr uint64_t kTimerCheckMs = 50;
[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

}  // namespace

struct GeneratorLink {
  int fd = -1;
  std::unique_ptr<core::Engine> engine;  // resilink links only
  std::string raw_tx;                    // raw links: bytes the socket has not taken
  size_t raw_tx_offset = 0;
  uint64_t to_send = 0;       // messages still to write in this run
  uint64_t unacked = 0;       // written, ACK line not seen yet (non-qos and raw pacing)
  size_t rx_line_length = 0;  // bytes so far of the line being received
  bool watching_out = false;  // EPOLLOUT registered
  bool done = false;
  uint64_t last_progress_ms = 0;

  GeneratorLink() = default;
  GeneratorLink(const GeneratorLink&) = delete;
  GeneratorLink& operator=(const GeneratorLink&) = delete;
  ~GeneratorLink() {
    if (fd >= 0) ::close(fd);
  }

  // ACK lines ("HH\n") in received bytes. The engine ignores ACKs of non-qos
  // messages, so pacing them by the window needs its own count.
  uint64_t count_ack_lines(const char* data, size_t length) {
    uint64_t acks = 0;
    const char* end = data + length;
    while (data < end) {
      const char* newline = static_cast<const char*>(std::memchr(data, '\n', static_cast<size_t>(end - data)));
      if (!newline) {
        rx_line_length += static_cast<size_t>(end - data);
        break;
      }
      rx_line_length += static_cast<size_t>(newline - data);
      if (rx_line_length == 2) ++acks;
      rx_line_length = 0;
      data = newline + 1;
    }
    return acks;
  }
};

namespace {

struct RunContext {
  LinkKind kind;
  bool qos;
  uint8_t window;
  const std::string* payload;
  std::string line;  // payload + '\n', raw links
};

void refill(GeneratorLink& link, const RunContext& run, uint64_t now) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(run.payload->data());
  size_t length = run.payload->size();
  if (run.kind == LinkKind::raw) {
    while (link.to_send > 0 && link.unacked < run.window) {
      link.raw_tx += run.line;
      --link.to_send;
      ++link.unacked;
    }
    return;
  }
  core::Engine& engine = *link.engine;
  if (run.qos) {
    while (link.to_send > 0 && engine.can_write(true, length)) {
      engine.write(bytes, length, true, now);
      --link.to_send;
    }
    return;
  }
  while (link.to_send > 0 && link.unacked < run.window && engine.can_write(false, length)) {
    engine.write(bytes, length, false, now);
    --link.to_send;
    ++link.unacked;
  }
}

// Sends what the socket takes; true if bytes are left for EPOLLOUT.
bool flush(GeneratorLink& link, uint64_t now) {
  for (;;) {
    const char* data;
    size_t length;
    const uint8_t* pending = nullptr;
    if (link.engine) {
      length = link.engine->tx_pending(&pending);
      data = reinterpret_cast<const char*>(pending);
    } else {
      length = link.raw_tx.size() - link.raw_tx_offset;
      data = link.raw_tx.data() + link.raw_tx_offset;
    }
    if (length == 0) {
      if (!link.engine) {
        link.raw_tx.clear();
        link.raw_tx_offset = 0;
      }
      return false;
    }
    ssize_t n = ::send(link.fd, data, length, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0) throw_errno("generator send");
    if (link.engine)
      link.engine->handle_tx_sent(static_cast<size_t>(n), now);
    else
      link.raw_tx_offset += static_cast<size_t>(n);
  }
}

void receive(GeneratorLink& link, const RunContext& run, uint64_t now) {
  char buffer[16384];
  for (;;) {
    ssize_t n = ::recv(link.fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) throw_errno("generator recv");
    if (n == 0) throw std::runtime_error("the server closed a generator connection");
    auto length = static_cast<size_t>(n);
    if (run.kind == LinkKind::raw || !run.qos) {
      uint64_t acks = link.count_ack_lines(buffer, length);
      link.unacked -= std::min(acks, link.unacked);
      if (acks > 0) link.last_progress_ms = now;
    }
    if (link.engine) {
      size_t inflight = link.engine->inflight();
      link.engine->handle_rx(reinterpret_cast<const uint8_t*>(buffer), length, now);
      if (link.engine->inflight() < inflight) link.last_progress_ms = now;
      const uint8_t* line;
      size_t line_length;
      while (link.engine->peek_line(&line, &line_length)) link.engine->pop_line();
    }
    if (length < sizeof buffer) return;  // a short read emptied the socket
  }
}

bool finished(const GeneratorLink& link, const RunContext& run) {
  if (link.to_send > 0) return false;
  if (run.kind == LinkKind::resilink && run.qos) return link.engine->inflight() == 0;
  return link.unacked == 0;
}

void check_link(const GeneratorLink& link, uint64_t now) {
  if (link.engine && !link.engine->is_up())
    throw std::runtime_error(std::string("a resilink generator link went down: ") +
                             core::outage_reason_name(link.engine->stats().last_outage));
  if (now - link.last_progress_ms > kStallMs)
    throw std::runtime_error("a generator link had no acknowledgement for " + std::to_string(kStallMs) +
                             " ms (" + std::to_string(link.unacked) +
                             " unacknowledged; messages refused by a full receive queue?)");
}

void watch_out(int epoll_fd, GeneratorLink& link, bool want) {
  if (link.watching_out == want) return;
  epoll_event event{};
  event.events = EPOLLIN | (want ? EPOLLOUT : 0u);
  event.data.ptr = &link;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, link.fd, &event);
  link.watching_out = want;
}

}  // namespace

LoadGenerator::LoadGenerator(LinkKind kind, uint16_t port, uint32_t connections, uint32_t threads,
                             uint8_t window, size_t payload_size)
    : kind_(kind), window_(window), payload_(make_payload(payload_size)), threads_(std::max(1u, threads)) {
  static uint32_t generation = 0;  // distinct ids per generator: a Server keeps every id it saw
  ++generation;
  uint64_t now = monotonic_ms();
  for (uint32_t i = 0; i < connections; ++i) {
    auto link = std::make_unique<GeneratorLink>();
    link->fd = connect_loopback(port);
    set_nonblocking(link->fd);
    if (kind == LinkKind::resilink) {
      std::string id = "load-" + std::to_string(generation) + "-" + std::to_string(i);
      core::EngineConfig config;
      config.role = core::Role::client;
      config.timeout_ms = kThroughputLinkTimeoutMs;
      config.client_id = id.c_str();  // copied by the engine
      config.window = window;
      config.random_seed = i + 1;
      link->engine = std::make_unique<core::Engine>(config, nullptr);
      // The socket is connected already: walk the engine to await_peer.
      link->engine->start(now);
      link->engine->handle_link_ready(now);
      link->engine->handle_connected(now);
      flush(*link, now);
    }
    links_.push_back(std::move(link));
  }
  if (kind != LinkKind::resilink) return;
  // Up once each link has heard the server's first line.
  RunContext run{kind, true, window_, &payload_, {}};
  uint64_t give_up = monotonic_ms() + 5000;
  for (auto& link : links_) {
    while (!link->engine->is_up()) {
      if (monotonic_ms() > give_up) throw std::runtime_error("resilink generator links not up within 5 s");
      pollfd p{link->fd, POLLIN, 0};
      ::poll(&p, 1, 50);
      receive(*link, run, monotonic_ms());
      flush(*link, monotonic_ms());
    }
  }
}

LoadGenerator::~LoadGenerator() = default;

GeneratorRun LoadGenerator::send(uint64_t messages, bool qos) {
  uint64_t per_link = messages / links_.size(), extra = messages % links_.size();
  for (size_t i = 0; i < links_.size(); ++i) {
    links_[i]->to_send = per_link + (i < extra ? 1 : 0);
    links_[i]->unacked = 0;
  }
  size_t thread_count = std::min<size_t>(threads_, links_.size());
  std::vector<double> cpu(thread_count, 0);
  std::vector<std::exception_ptr> errors(thread_count);
  std::vector<std::thread> threads;
  double start = wall_seconds();
  for (size_t t = 0; t < thread_count; ++t) {
    threads.emplace_back([this, t, qos, &cpu, &errors] {
      try {
        run_thread(t, qos, cpu[t]);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  GeneratorRun result;
  result.wall_seconds = wall_seconds() - start;
  for (size_t t = 0; t < thread_count; ++t) {
    if (errors[t]) std::rethrow_exception(errors[t]);
    result.cpu_seconds += cpu[t];
  }
  return result;
}

void LoadGenerator::run_thread(size_t thread_index, bool qos, double& cpu_seconds) {
  double cpu_start = this_thread_cpu_seconds();
  RunContext run{kind_, qos, window_, &payload_, payload_ + '\n'};
  std::vector<GeneratorLink*> mine;
  for (size_t i = thread_index; i < links_.size(); i += threads_) mine.push_back(links_[i].get());

  int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) throw_errno("epoll_create1");
  struct CloseOnExit {
    int fd;
    ~CloseOnExit() { ::close(fd); }
  } close_epoll{epoll_fd};

  uint64_t now = monotonic_ms();
  size_t unfinished = 0;
  for (GeneratorLink* link : mine) {
    link->watching_out = false;
    link->last_progress_ms = now;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = link;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, link->fd, &event) != 0) throw_errno("epoll_ctl");
    if (link->engine) link->engine->handle_timeout(now);  // keepalives due since the last run
    refill(*link, run, now);
    watch_out(epoll_fd, *link, flush(*link, now));
    link->done = finished(*link, run);
    if (!link->done) ++unfinished;
  }

  uint64_t next_timer_check = now + kTimerCheckMs;
  epoll_event events[64];
  while (unfinished > 0) {
    int ready = ::epoll_wait(epoll_fd, events, 64, static_cast<int>(kTimerCheckMs));
    if (ready < 0 && errno != EINTR) throw_errno("epoll_wait");
    now = monotonic_ms();
    for (int i = 0; i < ready; ++i) {
      auto& link = *static_cast<GeneratorLink*>(events[i].data.ptr);
      if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) receive(link, run, now);
      refill(link, run, now);
      watch_out(epoll_fd, link, flush(link, now));
      if (!link.done && finished(link, run)) {
        link.done = true;
        --unfinished;
      }
    }
    if (now >= next_timer_check) {
      next_timer_check = now + kTimerCheckMs;
      for (GeneratorLink* link : mine) {
        if (link->engine) {
          link->engine->handle_timeout(now);
          watch_out(epoll_fd, *link, flush(*link, now));
        }
        if (!link->done) check_link(*link, now);
      }
    }
  }
  for (GeneratorLink* link : mine) ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, link->fd, nullptr);
  cpu_seconds = this_thread_cpu_seconds() - cpu_start;
}

// ---------------------------------------------------------------- raw sink

RawAckSink::RawAckSink() : listener_(listen_loopback()) {
  set_nonblocking(listener_.fd);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) throw_errno("eventfd");
  thread_ = std::thread([this] { serve(); });
  cpu_clock_ = cpu_clock_of(thread_.native_handle());
}

RawAckSink::~RawAckSink() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
  ::close(wake_fd_);
  ::close(listener_.fd);
}

void RawAckSink::serve() {
  struct SinkConnection {
    int fd;
    std::string unsent;
    bool watching_out = false;
  };
  int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  std::map<int, SinkConnection> connections;
  auto add = [epoll_fd](int fd, uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
  };
  add(wake_fd_, EPOLLIN);
  add(listener_.fd, EPOLLIN);
  auto drop = [&](int fd) {
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    connections.erase(fd);
  };
  auto send_unsent = [&](SinkConnection& c) {
    while (!c.unsent.empty()) {
      ssize_t n = ::send(c.fd, c.unsent.data(), c.unsent.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      c.unsent.erase(0, static_cast<size_t>(n));
    }
    bool want_out = !c.unsent.empty();
    if (want_out == c.watching_out) return;
    c.watching_out = want_out;
    epoll_event event{};
    event.events = EPOLLIN | (want_out ? EPOLLOUT : 0u);
    event.data.fd = c.fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &event);
  };

  char buffer[4096];
  epoll_event events[64];
  for (bool running = true; running;) {
    int ready = ::epoll_wait(epoll_fd, events, 64, -1);
    for (int i = 0; i < ready; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) {
        running = false;
      } else if (fd == listener_.fd) {
        for (int accepted; (accepted = ::accept4(listener_.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          set_nodelay(accepted);
          connections[accepted] = {accepted, {}, false};
          add(accepted, EPOLLIN);
        }
      } else if (auto found = connections.find(fd); found != connections.end()) {
        SinkConnection& c = found->second;
        if (events[i].events & EPOLLOUT) send_unsent(c);
        if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
        // One read per readiness, as the server's read loop does.
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) {
          drop(fd);
          continue;
        }
        size_t lines = 0;
        for (const char* p = buffer; (p = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(buffer + n - p))));
             ++p)
          ++lines;
        delivered_.fetch_add(lines, std::memory_order_relaxed);
        for (size_t k = 0; k < lines; ++k) c.unsent += "00\n";
        send_unsent(c);
      }
    }
  }
  for (auto& [fd, c] : connections) ::close(fd);
  ::close(epoll_fd);
}

}  // namespace resilink::bench::loopback
