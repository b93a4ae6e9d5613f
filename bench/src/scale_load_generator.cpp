#include "scale_load_generator.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <mutex>
#include <queue>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "resilink/core/engine.h"
#include "resilink/error_code.h"

namespace resilink::bench::scale {

namespace {

using core::LinkState;

// One read drains this much per recv; keepalives are one byte, so one buffer
// per thread serves all of its links.
constexpr size_t kReceiveBufferSize = 16384;
constexpr int kMaxEventsPerWait = 1024;
// epoll_wait never sleeps longer, so a stop request is seen promptly even if
// the eventfd wake-up were missed.
constexpr uint64_t kMaxSleepMs = 200;

bool connection_open(LinkState s) { return s == LinkState::await_peer || s == LinkState::up; }

std::system_error os_error(const char* what) { return std::system_error(errno, std::generic_category(), what); }

}  // namespace

const char* outage_reason_label(size_t reason) {
  return core::outage_reason_name(static_cast<core::OutageReason>(reason));
}

// A thread with its own epoll set, its links and their timers. Everything but
// the atomics and the mailbox is touched by the worker thread only.
class LoadGenerator::Worker {
 public:
  Worker(const LoadGeneratorOptions& options, uint32_t connect_budget)
      : options_(options), connect_budget_(connect_budget) {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw os_error("epoll_create1");
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) throw os_error("eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the wake-up; links carry their GeneratedClient*
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) throw os_error("epoll_ctl");
    thread_ = std::thread(&Worker::run, this);
    if (::pthread_getcpuclockid(thread_.native_handle(), &cpu_clock_) != 0) cpu_clock_ = -1;
  }

  ~Worker() {
    stop();
    ::close(wake_fd_);
    ::close(epoll_fd_);
  }

  void add(std::vector<uint32_t> client_numbers) {
    {
      std::lock_guard lock(mailbox_mutex_);
      mailbox_.insert(mailbox_.end(), client_numbers.begin(), client_numbers.end());
    }
    wake();
  }

  void stop() {
    if (!thread_.joinable()) return;
    final_cpu_seconds_ = cpu_seconds();
    stopping_.store(true);
    wake();
    thread_.join();
    for (auto& client : clients_) close_socket(*client);
  }

  void add_counts(LoadGeneratorCounts& totals) const {
    totals.started += started_.load(std::memory_order_relaxed);
    totals.up += up_.load(std::memory_order_relaxed);
    totals.link_ups += link_ups_.load(std::memory_order_relaxed);
    totals.outages += outages_.load(std::memory_order_relaxed);
    totals.connect_failures += connect_failures_.load(std::memory_order_relaxed);
    for (size_t i = 0; i < kOutageReasonCount; ++i)
      totals.outages_by_reason[i] += outages_by_reason_[i].load(std::memory_order_relaxed);
  }

  double cpu_seconds() const {
    if (!thread_.joinable()) return final_cpu_seconds_;
    timespec ts{};
    if (cpu_clock_ == -1 || ::clock_gettime(cpu_clock_, &ts) != 0) return 0;
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  }

 private:
  // One generated link. The observer only records; the worker acts after the
  // engine call returns, as engine.h requires.
  struct GeneratedClient final : core::EngineObserver {
    GeneratedClient(Worker& owner, const core::EngineConfig& config) : worker(owner), engine(config, this) {}

    void on_link_up() override {
      up = true;
      if (awaiting_first_up) {
        awaiting_first_up = false;
        ++worker.connects_released_;
      }
      worker.up_.fetch_add(1, std::memory_order_relaxed);
      worker.link_ups_.fetch_add(1, std::memory_order_relaxed);
    }
    void on_link_down(core::OutageReason why, uint32_t) override {
      if (up) worker.up_.fetch_sub(1, std::memory_order_relaxed);
      up = false;
      if (why == core::OutageReason::closed_by_app) return;
      worker.outages_.fetch_add(1, std::memory_order_relaxed);
      worker.outages_by_reason_[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
    }

    Worker& worker;
    int fd = -1;
    bool connect_in_progress = false;
    bool writable = false;         // no EAGAIN since the last EPOLLOUT edge
    bool up = false;
    bool awaiting_first_up = true;  // holds a connect slot until its first link up
    uint64_t armed_deadline = core::kNoDeadline;  // earliest live timer entry
    uint32_t source_address = INADDR_LOOPBACK;    // host order
    core::Engine engine;
  };

  struct TimerEntry {
    uint64_t deadline;
    GeneratedClient* client;
    bool operator>(const TimerEntry& other) const { return deadline > other.deadline; }
  };

  void wake() {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }

  void run() {
    std::vector<epoll_event> events(kMaxEventsPerWait);
    while (!stopping_.load()) {
      uint64_t now = monotonic_ms();
      uint64_t sleep_ms = kMaxSleepMs;
      if (!timers_.empty()) sleep_ms = timers_.top().deadline > now ? std::min(kMaxSleepMs, timers_.top().deadline - now) : 0;
      int n = ::epoll_wait(epoll_fd_, events.data(), kMaxEventsPerWait, static_cast<int>(sleep_ms));
      if (n < 0 && errno != EINTR) {
        std::perror("bench: scale load generator: epoll_wait");
        return;  // the step then fails to hold: its links stop being served
      }
      now = monotonic_ms();
      for (int i = 0; i < n; ++i) {
        auto* client = static_cast<GeneratedClient*>(events[static_cast<size_t>(i)].data.ptr);
        if (client == nullptr) {
          take_mail();
          continue;
        }
        handle_io(*client, events[static_cast<size_t>(i)].events, now);
      }
      start_waiting_clients(now);
      run_due_timers(now);
    }
  }

  void take_mail() {
    uint64_t count;
    while (::read(wake_fd_, &count, sizeof count) > 0) {
    }
    std::vector<uint32_t> numbers;
    {
      std::lock_guard lock(mailbox_mutex_);
      numbers.swap(mailbox_);
    }
    for (uint32_t number : numbers) {
      std::string id = options_.id_prefix + std::to_string(number);
      core::EngineConfig config;
      config.role = core::Role::client;
      config.timeout_ms = options_.timeout_ms;
      config.client_id = id.c_str();
      config.random_seed = number + 1;
      auto client = std::make_unique<GeneratedClient>(*this, config);
      if (options_.clients_per_source_address > 0)
        client->source_address = INADDR_LOOPBACK + number / options_.clients_per_source_address;
      waiting_.push(client.get());
      clients_.push_back(std::move(client));
    }
  }

  void start_waiting_clients(uint64_t now) {
    while (!waiting_.empty() && connects_started_ - connects_released_ < connect_budget_) {
      GeneratedClient& client = *waiting_.front();
      waiting_.pop();
      ++connects_started_;
      client.engine.start(now);
      started_.fetch_add(1, std::memory_order_relaxed);
      drive(client, now);
    }
  }

  void run_due_timers(uint64_t now) {
    while (!timers_.empty() && timers_.top().deadline <= now) {
      TimerEntry entry = timers_.top();
      timers_.pop();
      // An entry superseded by an earlier one is stale; the live one fires.
      if (entry.deadline != entry.client->armed_deadline) continue;
      entry.client->armed_deadline = core::kNoDeadline;
      drive(*entry.client, now);
    }
  }

  // Only a deadline earlier than the armed one is pushed: a later one is
  // picked up when the earlier entry fires and finds nothing due. This keeps
  // the heap to about one entry per link.
  void rearm(GeneratedClient& client) {
    uint64_t deadline = client.engine.next_deadline();
    if (deadline >= client.armed_deadline) return;
    client.armed_deadline = deadline;
    timers_.push({deadline, &client});
  }

  void handle_io(GeneratedClient& client, uint32_t events, uint64_t now) {
    if (client.fd < 0) return;  // closed earlier in this batch
    if (client.connect_in_progress) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      int error = 0;
      socklen_t length = sizeof error;
      if (::getsockopt(client.fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0) error = errno;
      client.connect_in_progress = false;
      if (error != 0) {
        close_socket(client);
        connect_failures_.fetch_add(1, std::memory_order_relaxed);
        client.engine.handle_connect_failed(now);
        drive(client, now);
        return;
      }
      client.engine.handle_connected(now);
    }
    if (events & EPOLLOUT) client.writable = true;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) receive(client, now);
    drive(client, now);
  }

  // Edge-triggered: read until the socket has nothing more.
  void receive(GeneratedClient& client, uint64_t now) {
    while (connection_open(client.engine.state())) {
      ssize_t n = ::recv(client.fd, receive_buffer_.data(), receive_buffer_.size(), 0);
      if (n > 0) {
        client.engine.handle_rx(receive_buffer_.data(), static_cast<size_t>(n), now);
        continue;
      }
      if (n == 0) {
        client.engine.handle_link_lost(core::OutageReason::peer_closed, now);
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      bool by_peer = errno == ECONNRESET || errno == EPIPE;
      client.engine.handle_link_lost(by_peer ? core::OutageReason::peer_closed : core::OutageReason::socket_error,
                                     now);
      return;
    }
  }

  void flush(GeneratedClient& client, uint64_t now) {
    while (client.writable && connection_open(client.engine.state())) {
      const uint8_t* data;
      size_t length = client.engine.tx_pending(&data);
      if (length == 0) return;
      ssize_t n = ::send(client.fd, data, length, MSG_NOSIGNAL);
      if (n > 0) {
        client.engine.handle_tx_sent(static_cast<size_t>(n), now);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        client.writable = false;  // the next EPOLLOUT edge sets it again
        return;
      }
      bool by_peer = n < 0 && (errno == ECONNRESET || errno == EPIPE);
      client.engine.handle_link_lost(by_peer ? core::OutageReason::peer_closed : core::OutageReason::socket_error,
                                     now);
      return;
    }
  }

  // The driver loop of engine.h for one link: timers, then act on the state
  // until it stops changing, then send.
  void drive(GeneratedClient& client, uint64_t now) {
    client.engine.handle_timeout(now);
    for (;;) {
      LinkState state = client.engine.state();
      if (client.fd >= 0 && !client.connect_in_progress && !connection_open(state)) {
        close_socket(client);  // the engine declared an outage
      } else if (client.fd >= 0 && client.connect_in_progress && state != LinkState::connecting) {
        close_socket(client);  // the connect attempt timed out
      }
      if (state == LinkState::link_check) {
        client.engine.handle_link_ready(now);  // nothing to check on loopback
        continue;
      }
      if (state == LinkState::connecting && client.fd < 0) {
        open_socket(client, now);
        continue;
      }
      if (connection_open(state) && client.fd >= 0) {
        flush(client, now);
        if (client.engine.state() != state) continue;  // the send found the link gone
      }
      break;
    }
    rearm(client);
  }

  void open_socket(GeneratedClient& client, uint64_t now) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      connect_failures_.fetch_add(1, std::memory_order_relaxed);
      client.engine.handle_connect_failed(now);
      return;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // as the real client does
    if (client.source_address != INADDR_LOOPBACK) {
      // The port is picked at connect time, per destination, not at bind.
      ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in source{};
      source.sin_family = AF_INET;
      source.sin_addr.s_addr = htonl(client.source_address);
      if (::bind(fd, reinterpret_cast<const sockaddr*>(&source), sizeof source) != 0) {
        ::close(fd);
        connect_failures_.fetch_add(1, std::memory_order_relaxed);
        client.engine.handle_connect_failed(now);
        return;
      }
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &client;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      connect_failures_.fetch_add(1, std::memory_order_relaxed);
      client.engine.handle_connect_failed(now);
      return;
    }
    sockaddr_in server{};
    server.sin_family = AF_INET;
    server.sin_port = htons(options_.port);
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    client.fd = fd;
    client.writable = false;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server) == 0) {
      client.writable = true;
      client.engine.handle_connected(now);
      return;
    }
    if (errno == EINPROGRESS) {
      client.connect_in_progress = true;
      return;
    }
    close_socket(client);
    connect_failures_.fetch_add(1, std::memory_order_relaxed);
    client.engine.handle_connect_failed(now);
  }

  void close_socket(GeneratedClient& client) {
    if (client.fd < 0) return;
    ::close(client.fd);  // also leaves the epoll set
    client.fd = -1;
    client.connect_in_progress = false;
    client.writable = false;
  }

  const LoadGeneratorOptions& options_;
  const uint32_t connect_budget_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  clockid_t cpu_clock_ = -1;  // the worker thread's CPU-time clock
  double final_cpu_seconds_ = 0;

  std::mutex mailbox_mutex_;
  std::vector<uint32_t> mailbox_;  // client numbers to create

  std::vector<std::unique_ptr<GeneratedClient>> clients_;
  std::queue<GeneratedClient*> waiting_;  // created, not started yet
  uint64_t connects_started_ = 0;
  uint64_t connects_released_ = 0;
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> timers_;
  std::vector<uint8_t> receive_buffer_ = std::vector<uint8_t>(kReceiveBufferSize);

  std::atomic<uint64_t> started_{0};
  std::atomic<uint64_t> up_{0};
  std::atomic<uint64_t> link_ups_{0};
  std::atomic<uint64_t> outages_{0};
  std::atomic<uint64_t> connect_failures_{0};
  std::array<std::atomic<uint64_t>, kOutageReasonCount> outages_by_reason_{};
};

LoadGenerator::LoadGenerator(LoadGeneratorOptions options) : options_(std::move(options)) {
  if (options_.threads == 0) options_.threads = 1;
  uint32_t budget = std::max<uint32_t>(1, options_.connects_in_flight / options_.threads);
  for (uint32_t i = 0; i < options_.threads; ++i) workers_.push_back(std::make_unique<Worker>(options_, budget));
}

LoadGenerator::~LoadGenerator() { stop(); }

void LoadGenerator::add_clients(uint32_t count) {
  std::vector<std::vector<uint32_t>> per_worker(workers_.size());
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t number = next_client_++;
    per_worker[number % workers_.size()].push_back(number);
  }
  for (size_t w = 0; w < workers_.size(); ++w)
    if (!per_worker[w].empty()) workers_[w]->add(std::move(per_worker[w]));
}

LoadGeneratorCounts LoadGenerator::counts() const {
  LoadGeneratorCounts totals;
  for (const auto& worker : workers_) worker->add_counts(totals);
  return totals;
}

std::vector<double> LoadGenerator::thread_cpu_seconds() const {
  std::vector<double> seconds;
  for (const auto& worker : workers_) seconds.push_back(worker->cpu_seconds());
  return seconds;
}

void LoadGenerator::stop() {
  for (auto& worker : workers_) worker->stop();
}

}  // namespace resilink::bench::scale
