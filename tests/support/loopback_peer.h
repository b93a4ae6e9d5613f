// A minimal resilink server for client tests: one core::Engine in server role,
// driven by a poll(2) loop on a loopback listening socket in its own thread.
//
// It reads the `<id>\n` line of each connection itself, then hands the rest of
// the bytes to the engine (handle_connected, handle_rx). Faults are injected
// on command: drop the connection, go silent, send raw bytes, drop the
// connection right after a message arrives (before its ACK leaves).
//
// Commands are queued under a mutex and carried out by the peer thread, so
// the engine is only ever touched by that thread.
#ifndef RESILINK_TESTS_LOOPBACK_PEER_H
#define RESILINK_TESTS_LOOPBACK_PEER_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "resilink/core/engine.h"

namespace resilink::test_peer {

inline uint64_t steady_ms() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

class LoopbackPeer {
 public:
  // Binds 127.0.0.1 on a free port at once; accepts only after listen(), so
  // until then connections are refused.
  explicit LoopbackPeer(uint32_t timeout_ms, bool listen_now = true) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd_ < 0) throw std::runtime_error("socket failed");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
      throw std::runtime_error("bind failed");
    socklen_t length = sizeof address;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    set_nonblocking(listen_fd_);
    core::EngineConfig config;
    config.role = core::Role::server;
    config.timeout_ms = timeout_ms;
    engine_ = std::make_unique<core::Engine>(config, nullptr);
    if (listen_now) listen();
    thread_ = std::thread([this] { loop(); });
  }

  ~LoopbackPeer() {
    stop_ = true;
    thread_.join();
    if (conn_fd_ >= 0) ::close(conn_fd_);
    ::close(listen_fd_);
  }

  LoopbackPeer(const LoopbackPeer&) = delete;
  LoopbackPeer& operator=(const LoopbackPeer&) = delete;

  uint16_t port() const { return port_; }

  void listen() {
    if (::listen(listen_fd_, 8) < 0) throw std::runtime_error("listen failed");
    listening_ = true;
  }

  // ---- commands, carried out by the peer thread
  void send(std::string payload) { command({Command::Kind::write, std::move(payload)}); }
  void drop() { command({Command::Kind::drop, {}}); }
  void inject(std::string raw) { command({Command::Kind::inject, std::move(raw)}); }
  void set_silent(bool silent) { command({silent ? Command::Kind::silence : Command::Kind::speak, {}}); }
  void drop_after_next_message() { drop_after_message_ = true; }
  // Drops the connection as soon as the n-th message (1-based, counted over
  // the peer's life) has arrived, before its ACK leaves. Call before traffic.
  void drop_when_received(std::vector<size_t> counts) {
    std::lock_guard lock(mutex_);
    drop_at_counts_ = std::move(counts);
  }

  // ---- observations
  std::vector<std::string> received() const {
    std::lock_guard lock(mutex_);
    return received_;
  }
  size_t count(const std::string& payload) const {
    std::lock_guard lock(mutex_);
    return static_cast<size_t>(std::count(received_.begin(), received_.end(), payload));
  }
  std::vector<std::string> client_ids() const {
    std::lock_guard lock(mutex_);
    return client_ids_;
  }
  std::vector<uint64_t> accept_times() const {
    std::lock_guard lock(mutex_);
    return accept_times_;
  }
  size_t connections() const {
    std::lock_guard lock(mutex_);
    return accept_times_.size();
  }
  bool is_up() const { return up_; }
  uint64_t last_send_at() const { return last_send_at_; }
  bool silent() const { return silent_applied_; }
  // True once every write queued with send() is acknowledged.
  bool all_acked() const { return unacked_ == 0; }

 private:
  struct Command {
    enum class Kind { write, drop, inject, silence, speak } kind;
    std::string data;
  };

  static void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

  void command(Command c) {
    std::lock_guard lock(mutex_);
    if (c.kind == Command::Kind::write) ++unacked_;
    commands_.push_back(std::move(c));
  }

  void loop() {
    while (!stop_) {
      uint64_t now = steady_ms();
      run_commands(now);
      if (!silent_) {
        engine_->handle_timeout(now);
        if (conn_fd_ >= 0 && have_id_ && !engine_open()) close_connection();  // engine's outage
        flush(now);
      }
      collect();

      pollfd fds[2] = {{listening_ ? listen_fd_ : -1, POLLIN, 0}, {conn_fd_, POLLIN, 0}};
      const uint8_t* pending;
      if (conn_fd_ >= 0 && !silent_ && (!raw_out_.empty() || engine_->tx_pending(&pending) > 0))
        fds[1].events |= POLLOUT;
      int wait = 5;
      uint64_t deadline = engine_->next_deadline();
      if (!silent_ && deadline != core::kNoDeadline)
        wait = static_cast<int>(std::min<uint64_t>(5, deadline > now ? deadline - now : 0));
      ::poll(fds, 2, wait);
      now = steady_ms();
      if (fds[0].revents & POLLIN) accept_connection(now);
      if (conn_fd_ >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        receive(now);
        collect();  // before the next flush, so drop_after_next_message loses the ACK
      }
    }
  }

  bool engine_open() const {
    auto s = engine_->state();
    return s == core::LinkState::await_peer || s == core::LinkState::up;
  }

  void run_commands(uint64_t now) {
    std::deque<Command> commands;
    {
      std::lock_guard lock(mutex_);
      commands.swap(commands_);
    }
    for (Command& c : commands) {
      switch (c.kind) {
        case Command::Kind::write: {
          uint32_t ticket = 0;
          core::Error e = engine_->write(reinterpret_cast<const uint8_t*>(c.data.data()),
                                         c.data.size(), true, now, &ticket);
          if (e != core::Error::ok) throw std::runtime_error("peer write failed");
          tickets_.push_back(ticket);
          break;
        }
        case Command::Kind::drop:
          if (conn_fd_ >= 0) {
            close_connection();
            engine_->handle_link_lost(core::OutageReason::socket_error, now);
          }
          break;
        case Command::Kind::inject:
          raw_out_ += c.data;
          break;
        case Command::Kind::silence:
          silent_ = true;
          silent_applied_ = true;
          break;
        case Command::Kind::speak:
          silent_ = false;
          silent_applied_ = false;
          break;
      }
    }
  }

  void collect() {
    uint8_t buffer[RESILINK_MAX_LINE];
    size_t length;
    bool got = false;
    bool drop = false;
    while (engine_->read_line(buffer, sizeof buffer, &length)) {
      std::lock_guard lock(mutex_);
      received_.emplace_back(reinterpret_cast<char*>(buffer), length);
      got = true;
      drop = drop || std::count(drop_at_counts_.begin(), drop_at_counts_.end(), received_.size()) > 0;
    }
    std::erase_if(tickets_, [this](uint32_t t) { return !engine_->is_pending(t); });
    {
      std::lock_guard lock(mutex_);
      size_t queued = 0;
      for (const Command& c : commands_) queued += c.kind == Command::Kind::write;
      unacked_ = tickets_.size() + queued;
    }
    up_ = engine_->is_up();
    if (got && (drop_after_message_ || drop) && conn_fd_ >= 0) {
      // The ACK for what just arrived is queued but never leaves.
      drop_after_message_ = false;
      close_connection();
      engine_->handle_link_lost(core::OutageReason::socket_error, steady_ms());
    }
  }

  void flush(uint64_t now) {
    if (conn_fd_ < 0) return;
    for (;;) {
      const uint8_t* data;
      size_t length = engine_->tx_pending(&data);
      if (length == 0) break;
      ssize_t n = ::send(conn_fd_, data, length, MSG_NOSIGNAL);
      if (n <= 0) return;
      last_send_at_ = steady_ms();
      engine_->handle_tx_sent(static_cast<size_t>(n), now);
    }
    // Raw bytes go after whole engine lines, so they start a line of their own.
    while (!raw_out_.empty()) {
      ssize_t n = ::send(conn_fd_, raw_out_.data(), raw_out_.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      last_send_at_ = steady_ms();
      raw_out_.erase(0, static_cast<size_t>(n));
    }
  }

  void accept_connection(uint64_t now) {
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    if (conn_fd_ >= 0) close_connection();  // the engine reports `replaced`
    set_nonblocking(fd);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_fd_ = fd;
    have_id_ = false;
    id_buffer_.clear();
    std::lock_guard lock(mutex_);
    accept_times_.push_back(now);
  }

  void receive(uint64_t now) {
    uint8_t buffer[4096];
    for (;;) {
      ssize_t n = ::recv(conn_fd_, buffer, sizeof buffer, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        close_connection();
        if (have_id_) engine_->handle_link_lost(core::OutageReason::peer_closed, now);
        return;
      }
      if (n < 0) return;
      if (silent_) continue;  // read and forget: the socket stays open, nothing is answered
      size_t offset = 0;
      if (!have_id_) {
        const uint8_t* newline = static_cast<const uint8_t*>(std::memchr(buffer, '\n', static_cast<size_t>(n)));
        size_t take = newline ? static_cast<size_t>(newline - buffer) : static_cast<size_t>(n);
        id_buffer_.append(reinterpret_cast<char*>(buffer), take);
        if (!newline) continue;
        offset = take + 1;
        have_id_ = true;
        {
          std::lock_guard lock(mutex_);
          client_ids_.push_back(id_buffer_);
        }
        engine_->handle_connected(now);
      }
      if (static_cast<size_t>(n) > offset)
        engine_->handle_rx(buffer + offset, static_cast<size_t>(n) - offset, now);
      if (conn_fd_ < 0 || !engine_open()) return;
    }
  }

  void close_connection() {
    ::close(conn_fd_);
    conn_fd_ = -1;
    raw_out_.clear();
  }

  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int conn_fd_ = -1;
  std::atomic<bool> listening_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> up_{false};
  std::atomic<bool> silent_applied_{false};
  std::atomic<uint64_t> last_send_at_{0};
  std::atomic<size_t> unacked_{0};
  bool silent_ = false;
  std::atomic<bool> drop_after_message_{false};
  bool have_id_ = false;
  std::string id_buffer_;
  std::string raw_out_;
  std::vector<uint32_t> tickets_;
  std::unique_ptr<core::Engine> engine_;

  mutable std::mutex mutex_;
  std::deque<Command> commands_;
  std::vector<std::string> received_;
  std::vector<std::string> client_ids_;
  std::vector<uint64_t> accept_times_;
  std::vector<size_t> drop_at_counts_;
  std::thread thread_;
};

}  // namespace resilink::test_peer

#endif
