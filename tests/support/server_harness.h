// The server test harness: a Server on a background io thread (TestServer)
// and hand-written v1 clients on blocking POSIX sockets (RawClient).
//
// Server state is only touched on the io thread: TestServer::call() runs a
// function there and waits for its result, TestServer::spawn() starts an
// application coroutine there and returns a std::future of its result.
// The server's log goes to a capturing sink, so tests can check that a bad
// input is named in the log. Set RESILINK_TEST_LOG=1 to see the log on stderr.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "resilink/error_code.h"
#include "resilink/server/server.h"
#include "support/log_capture.h"


namespace resilink::test {

using namespace std::chrono_literals;
using core::Error;
using core::OutageReason;

constexpr uint32_t kTimeout = 250;  // T, ms: outage after T of silence, 2T before the first line
constexpr auto kKeepaliveEvery = std::chrono::milliseconds(kTimeout / 5);  // a little under T/4

inline ServerOptions test_options() {
  ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  options.timeout_ms = kTimeout;
  return options;
}

inline std::string mid_hex(unsigned mid) {
  char hex[3];
  std::snprintf(hex, sizeof hex, "%02x", mid & 0xffu);
  return hex;
}

template <class T>
bool ready(std::future<T>& future, std::chrono::milliseconds limit = 2s) {
  return future.wait_for(limit) == std::future_status::ready;
}


// ---------------------------------------------------------------- server harness

class TestServer {
 public:
  explicit TestServer(ServerOptions options = test_options()) : sink_(std::make_shared<test::CaptureSink>(/*echo=*/false)) {
    auto logger = std::make_shared<spdlog::logger>("server_test", sink_);
    logger->set_level(spdlog::level::debug);
    options.logger = logger;
    server_ = std::make_unique<Server>(io_, std::move(options));
    std::error_code ec = server_->listen();
    if (ec) throw std::system_error(ec, "Server::listen");
    port_ = server_->port();
    thread_ = std::thread([this] {
      try {
        io_.run();
      } catch (const std::exception& e) {
        std::lock_guard lock(error_mutex_);
        io_error_ = e.what();
      }
      drained_.set_value();
    });
  }

  // Closes the server on its thread and checks that the io_context then runs
  // out of work: close() must end every coroutine, socket and timer.
  ~TestServer() {
    asio::post(io_, [this] { server_->close(); });
    work_.reset();
    if (drained_future_.wait_for(3s) != std::future_status::ready) {
      ADD_FAILURE() << "io_context still had work 3 s after Server::close()";
      io_.stop();
    }
    thread_.join();
    if (!io_error_.empty()) ADD_FAILURE() << "exception escaped io_context::run(): " << io_error_;
    if (::testing::Test::HasFailure()) std::fprintf(stderr, "---- server log ----\n%s", log().c_str());
    server_.reset();
  }

  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  uint16_t port() const { return port_; }
  std::string log() { return sink_->text(); }

  bool wait_for_log(std::string_view needle, std::chrono::milliseconds limit = 2s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (log().find(needle) != std::string::npos) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
  }

  // Runs f(server) on the io thread and returns its result.
  template <class F>
  auto call(F f) {
    using R = std::invoke_result_t<F&, Server&>;
    auto promise = std::make_shared<std::promise<R>>();
    auto future = promise->get_future();
    asio::post(io_, [promise, f = std::move(f), server = server_.get()]() mutable {
      try {
        if constexpr (std::is_void_v<R>) {
          f(*server);
          promise->set_value();
        } else {
          promise->set_value(f(*server));
        }
      } catch (...) {
        promise->set_exception(std::current_exception());
      }
    });
    if (future.wait_for(5s) != std::future_status::ready)
      throw std::runtime_error("the io thread did not run a call within 5 s");
    return future.get();
  }

  // Starts the coroutine f(server) on the io thread; its result (or the
  // exception it ends with) arrives through the future.
  template <class F>
  auto spawn(F f) {
    using T = typename std::invoke_result_t<F&, Server&>::value_type;
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    asio::post(io_, [this, promise, f = std::move(f)]() mutable {
      auto body = [f = std::move(f), server = server_.get()]() mutable { return f(*server); };
      if constexpr (std::is_void_v<T>) {
        asio::co_spawn(io_, std::move(body), [promise](std::exception_ptr e) {
          if (e) promise->set_exception(e);
          else promise->set_value();
        });
      } else {
        asio::co_spawn(io_, std::move(body), [promise](std::exception_ptr e, T value) {
          if (e) promise->set_exception(e);
          else promise->set_value(std::move(value));
        });
      }
    });
    return future;
  }

  // Runs f on the io thread without waiting for it (to keep that thread busy).
  template <class F>
  void post(F f) {
    asio::post(io_, std::move(f));
  }

  // ---- shortcuts, each run on the io thread
  Connection* find(const std::string& id) {
    return call([id](Server& s) { return s.find(id); });
  }
  core::EngineStats stats(const std::string& id) {
    return call([id](Server& s) {
      Connection* c = s.find(id);
      return c ? c->stats() : core::EngineStats{};
    });
  }
  bool up(const std::string& id) {
    return call([id](Server& s) {
      Connection* c = s.find(id);
      return c != nullptr && c->status();
    });
  }
  uint32_t reconnects(const std::string& id) {
    return call([id](Server& s) {
      Connection* c = s.find(id);
      return c ? c->reconnects() : ~0u;
    });
  }
  size_t connection_count() {
    return call([](Server& s) { return s.connections().size(); });
  }
  // Starts an application read of the next message from `id`.
  std::future<std::string> readline(const std::string& id) {
    return spawn([id](Server& s) -> asio::awaitable<std::string> {
      Connection& c = s.connection(id);
      co_return co_await c.readline();
    });
  }
  // Starts an application write to `id`.
  std::future<std::error_code> write(const std::string& id, std::string line,
                                     WriteOptions options = {}) {
    return spawn([id, line, options](Server& s) -> asio::awaitable<std::error_code> {
      Connection& c = s.connection(id);
      co_return co_await c.write(line, options);
    });
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::shared_ptr<test::CaptureSink> sink_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
  std::promise<void> drained_;
  std::future<void> drained_future_ = drained_.get_future();
  std::mutex error_mutex_;
  std::string io_error_;
  std::thread thread_;
};

// ---------------------------------------------------------------- raw v1 client

// A hand-written v1 client on a blocking POSIX socket. It sends exactly the
// bytes it is given; a background thread can send keepalives ("\n") every
// kKeepaliveEvery while the test thread reads.
class RawClient {
 public:
  enum class Status { line, timeout, closed };
  struct Read {
    Status status;
    std::string line;
  };

  // receive_buffer > 0 sets SO_RCVBUF before connecting (it caps the window).
  explicit RawClient(uint16_t port, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    if (receive_buffer > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0) {
      int err = errno;
      ::close(fd_);
      throw std::system_error(err, std::generic_category(), "connect");
    }
    connected_at_ = monotonic_ms();
  }

  ~RawClient() {
    stop_keepalive();
    ::close(fd_);
  }

  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  uint64_t connected_at() const { return connected_at_; }
  uint64_t last_send_ms() const { return last_send_ms_; }

  // Writes all of `bytes` (one send under the lock, so a keepalive never lands
  // inside a line). False if the socket refused them (closed by the server).
  bool send(std::string_view bytes) {
    std::lock_guard lock(send_mutex_);
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    last_send_ms_ = monotonic_ms();
    return true;
  }

  // This client's next message id, in its own sequence from 00.
  std::string next_mid() { return mid_hex(next_mid_++); }

  // Sends `<next mid><payload>\n` and returns the mid.
  std::string send_message(const std::string& payload) {
    std::string mid = next_mid();
    send(mid + payload + "\n");
    return mid;
  }

  // The next line, keepalives ("") included.
  Read read_line(std::chrono::milliseconds limit) {
    uint64_t deadline = monotonic_ms() + static_cast<uint64_t>(limit.count());
    for (;;) {
      size_t newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        return {Status::line, std::move(line)};
      }
      if (closed_) return {Status::closed, {}};
      uint64_t now = monotonic_ms();
      if (now >= deadline) return {Status::timeout, {}};
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(deadline - now));
      if (r <= 0) continue;
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buffer_.append(chunk, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        closed_ = true;  // EOF, or a reset (server closed with bytes unread)
        closed_at_ = monotonic_ms();
      }
    }
  }

  // The next line that is not a keepalive (an ACK or a message), or nullopt
  // on timeout or close.
  std::optional<std::string> next_message(std::chrono::milliseconds limit = 2s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      Read r = read_line(std::max(left, 0ms));
      if (r.status != Status::line) return std::nullopt;
      if (!r.line.empty()) return r.line;
    }
  }

  // Reads until the server closes the connection. Non-keepalive lines seen on
  // the way are appended to *seen. True if closed within the limit.
  bool wait_closed(std::chrono::milliseconds limit, std::vector<std::string>* seen = nullptr) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      Read r = read_line(std::max(left, 0ms));
      if (r.status == Status::closed) return true;
      if (r.status == Status::timeout) return false;
      if (seen && !r.line.empty()) seen->push_back(r.line);
    }
  }
  // When wait_closed() saw the close (monotonic ms).
  uint64_t closed_at() const { return closed_at_; }

  void start_keepalive() {
    stop_keepalive();
    {
      std::lock_guard lock(keepalive_mutex_);
      keepalive_stop_ = false;
    }
    keepalive_ = std::thread([this] {
      std::unique_lock lock(keepalive_mutex_);
      while (!keepalive_cv_.wait_for(lock, kKeepaliveEvery, [this] { return keepalive_stop_; })) {
        if (!send("\n")) return;
      }
    });
  }

  void stop_keepalive() {
    if (!keepalive_.joinable()) return;
    {
      std::lock_guard lock(keepalive_mutex_);
      keepalive_stop_ = true;
    }
    keepalive_cv_.notify_all();
    keepalive_.join();
  }

 private:
  int fd_ = -1;
  uint64_t connected_at_ = 0;
  std::atomic<uint64_t> last_send_ms_{0};
  unsigned next_mid_ = 0;
  std::string buffer_;
  bool closed_ = false;
  uint64_t closed_at_ = 0;
  std::mutex send_mutex_;
  std::mutex keepalive_mutex_;
  std::condition_variable keepalive_cv_;
  bool keepalive_stop_ = false;
  std::thread keepalive_;
};

// Sends `<id>\n\n` and expects the server's first line: a keepalive.
inline ::testing::AssertionResult handshake(RawClient& client, const std::string& id) {
  if (!client.send(id + "\n\n")) return ::testing::AssertionFailure() << "send of the id failed";
  RawClient::Read r = client.read_line(2s);
  if (r.status != RawClient::Status::line)
    return ::testing::AssertionFailure() << "no line from the server after the id '" << id << "'";
  if (!r.line.empty())
    return ::testing::AssertionFailure() << "first line from the server is '" << r.line
                                         << "', expected a keepalive";
  return ::testing::AssertionSuccess();
}

// One message each way between `client` (id `id`) and the server application:
// the client's message is ACKed and read by the application; the
// application's qos write reaches the client and completes on its ACK.
inline ::testing::AssertionResult exchange(TestServer& server, RawClient& client, const std::string& id,
                                    const std::string& payload) {
  auto read = server.readline(id);
  std::string mid = client.send_message(payload);
  auto ack = client.next_message();
  if (ack != mid) return ::testing::AssertionFailure() << id << ": expected ACK " << mid << ", got '"
                                                       << ack.value_or("(nothing)") << "'";
  if (!ready(read)) return ::testing::AssertionFailure() << id << ": application read nothing";
  std::string got = read.get();
  if (got != payload)
    return ::testing::AssertionFailure() << id << ": application read '" << got << "', expected '"
                                         << payload << "'";

  auto write = server.write(id, "re:" + payload);
  auto message = client.next_message();
  if (!message || message->size() < 3 || message->substr(2) != "re:" + payload)
    return ::testing::AssertionFailure() << id << ": expected a message 're:" << payload << "', got '"
                                         << message.value_or("(nothing)") << "'";
  client.send(message->substr(0, 2) + "\n");
  if (!ready(write)) return ::testing::AssertionFailure() << id << ": qos write did not complete";
  std::error_code ec = write.get();
  if (ec) return ::testing::AssertionFailure() << id << ": write failed: " << ec.message();
  return ::testing::AssertionSuccess();
}

}  // namespace resilink::test
