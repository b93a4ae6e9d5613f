// Test support for the chaos proxy: the proxy on its own io thread
// (ChaosHarness), blocking loopback sockets with timeouts (TcpSocket), and a
// loopback listener the proxy connects to (TcpListener).
//
// The proxy's state is only touched on its io thread: call() runs a function
// there and waits for the result; execute() is ChaosProxy's own thread-safe
// command(). Its log goes to a capturing sink (RESILINK_TEST_LOG=1 echoes it)
// and is printed when a test fails.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "resilink/lab/chaos_proxy.h"
#include "support/log_capture.h"

namespace resilink::test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

inline double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// ---------------------------------------------------------------- sockets

// A blocking TCP socket whose reads take a time limit.
class TcpSocket {
 public:
  enum class End { open, eof, reset, timeout };

  TcpSocket() = default;
  explicit TcpSocket(int fd) : fd_(fd) {}
  TcpSocket(TcpSocket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  TcpSocket& operator=(TcpSocket&& other) noexcept {
    if (this != &other) {
      close();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~TcpSocket() { close(); }

  static TcpSocket connect(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      ::close(fd);
      throw std::runtime_error("connect to port " + std::to_string(port) + " failed");
    }
    return TcpSocket(fd);
  }

  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One recv(2) of whatever is there within `limit`: its bytes, or how the
  // stream ended (end() says which).
  std::string read_some(std::chrono::milliseconds limit) {
    end_ = End::open;
    pollfd p{fd_, POLLIN, 0};
    int r;
    do {
      r = ::poll(&p, 1, static_cast<int>(limit.count()));
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
      end_ = End::timeout;
      return {};
    }
    char buffer[65536];
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n > 0) return std::string(buffer, static_cast<size_t>(n));
    end_ = n == 0 ? End::eof : End::reset;  // loopback: the only error is a reset
    return {};
  }

  // Reads until `count` bytes came, the stream ended, or `limit` passed.
  std::string read_exactly(size_t count, std::chrono::milliseconds limit) {
    auto deadline = Clock::now() + limit;
    std::string got;
    while (got.size() < count) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) {
        end_ = End::timeout;
        break;
      }
      std::string part = read_some(left);
      if (part.empty()) break;
      got += part;
    }
    return got;
  }

  // Reads until the stream ends (EOF or reset) or `limit` passes; `reads`
  // counts the recv calls that returned bytes.
  std::string read_to_end(std::chrono::milliseconds limit, int* reads = nullptr) {
    auto deadline = Clock::now() + limit;
    std::string got;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) {
        end_ = End::timeout;
        return got;
      }
      std::string part = read_some(left);
      if (part.empty()) {
        if (end_ != End::timeout) return got;
        continue;
      }
      if (reads) ++*reads;
      got += part;
    }
  }

  // How the last read ended.
  End end() const { return end_; }

  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
  // Close with an RST.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  End end_ = End::open;
};

inline const char* to_string(TcpSocket::End end) {
  switch (end) {
    case TcpSocket::End::open: return "open";
    case TcpSocket::End::eof: return "eof";
    case TcpSocket::End::reset: return "reset";
    case TcpSocket::End::timeout: return "timeout";
  }
  return "?";
}

// A listener on 127.0.0.1 with a free port; accept() takes a time limit.
class TcpListener {
 public:
  TcpListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(fd_, 64) != 0)
      throw std::runtime_error("listener: cannot listen");
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~TcpListener() { ::close(fd_); }
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  uint16_t port() const { return port_; }

  // The next connection, or an invalid socket if none came within `limit`.
  TcpSocket accept(std::chrono::milliseconds limit = 2s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return TcpSocket();
    int fd = ::accept(fd_, nullptr, nullptr);
    if (fd >= 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return TcpSocket(fd);
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// ---------------------------------------------------------------- proxy

class ChaosHarness {
 public:
  explicit ChaosHarness(uint16_t upstream_port, uint64_t seed = 1)
      : log_("chaos", /*echo=*/false) {
    lab::ChaosOptions options;
    options.upstream_port = upstream_port;
    options.seed = seed;
    options.logger = log_.logger();
    proxy_ = std::make_unique<lab::ChaosProxy>(io_, options);
    proxy_->on_event([this](const lab::FaultEvent& e) {
      std::lock_guard lock(mutex_);
      events_.push_back(e);
    });
    if (std::error_code ec = proxy_->start()) throw std::system_error(ec, "ChaosProxy::start");
    port_ = proxy_->port();
    thread_ = std::thread([this] {
      io_.run();
      drained_.set_value();
    });
  }

  // Stops the proxy on its thread and checks that the io_context then runs
  // out of work: stop() must end every coroutine, socket and timer.
  ~ChaosHarness() {
    asio::post(io_, [this] { proxy_->stop(); });
    work_.reset();
    if (drained_future_.wait_for(5s) != std::future_status::ready) {
      ADD_FAILURE() << "io_context still had work 5 s after ChaosProxy::stop()";
      io_.stop();
    }
    thread_.join();
    if (::testing::Test::HasFailure()) std::fprintf(stderr, "---- chaos log ----\n%s", log_.text().c_str());
    proxy_.reset();
  }

  ChaosHarness(const ChaosHarness&) = delete;
  ChaosHarness& operator=(const ChaosHarness&) = delete;

  uint16_t port() const { return port_; }
  std::string log() { return log_.text(); }
  std::string execute(std::string_view line) { return proxy_->execute(line); }

  // Runs f(proxy) on the io thread and returns its result.
  template <class F>
  auto call(F f) {
    using R = std::invoke_result_t<F&, lab::ChaosProxy&>;
    auto promise = std::make_shared<std::promise<R>>();
    auto future = promise->get_future();
    asio::post(io_, [promise, f = std::move(f), proxy = proxy_.get()]() mutable {
      if constexpr (std::is_void_v<R>) {
        f(*proxy);
        promise->set_value();
      } else {
        promise->set_value(f(*proxy));
      }
    });
    if (future.wait_for(5s) != std::future_status::ready)
      throw std::runtime_error("the proxy's io thread did not run a call within 5 s");
    return future.get();
  }

  lab::ChaosStats stats() {
    return call([](lab::ChaosProxy& p) { return p.stats(); });
  }

  std::vector<lab::FaultEvent> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }

  // Polls pred() every 2 ms until it holds or `limit` passes.
  static bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
    auto deadline = Clock::now() + limit;
    while (!pred()) {
      if (Clock::now() >= deadline) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  LogCapture log_;
  std::unique_ptr<lab::ChaosProxy> proxy_;
  uint16_t port_ = 0;
  std::mutex mutex_;
  std::vector<lab::FaultEvent> events_;
  std::promise<void> drained_;
  std::future<void> drained_future_ = drained_.get_future();
  std::thread thread_;
};

}  // namespace resilink::test
