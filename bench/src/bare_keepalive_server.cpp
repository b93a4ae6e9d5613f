#include "resilink/bench/bare_keepalive_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "resilink/error_code.h"

namespace resilink::bench {

namespace {

// One accepted socket. Every open link is in the keepalive FIFO, so the FIFO
// is also the list of links.
struct Link {
  int fd = -1;
  uint64_t last_rx_at = 0;
  uint64_t keepalive_at = 0;
  bool heard = false;
  Link* prev = nullptr;
  Link* next = nullptr;
};

class BareServer {
 public:
  explicit BareServer(const BareKeepaliveOptions& options) : options_(options) {}

  ~BareServer() {
    while (head_ != nullptr) close_link(head_, false);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }

  int run() {
    if (!open_sockets()) return 1;
    std::printf("port=%u\n", static_cast<unsigned>(port_));
    std::fflush(stdout);
    // Commands come from a blocking reader, as in the resilink bench-server.
    std::thread reader([this] {
      std::string line;
      while (std::getline(std::cin, line)) {
        if (line == "stats") stats_requests_.fetch_add(1);
        else if (!line.empty()) std::fprintf(stderr, "bench-server: unknown command '%s' (expected: stats)\n", line.c_str());
        wake();
      }
      stopping_.store(true);
      wake();
    });
    reader.detach();  // may be blocked in a read when we stop

    constexpr int kMaxEvents = 1024;
    epoll_event events[kMaxEvents];
    while (!stopping_.load()) {
      uint64_t now = monotonic_ms();
      int sleep_ms = -1;
      if (head_ != nullptr) sleep_ms = head_->keepalive_at > now ? static_cast<int>(head_->keepalive_at - now) : 0;
      int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, sleep_ms);
      if (n < 0 && errno != EINTR) {
        std::perror("bench-server (bare): epoll_wait");
        return 1;
      }
      now = monotonic_ms();
      for (int i = 0; i < n; ++i) {
        void* tag = events[i].data.ptr;
        if (tag == &listen_fd_) accept_all(now);
        else if (tag == &wake_fd_) take_wake();
        else on_readable(static_cast<Link*>(tag), events[i].events, now);
      }
      send_due_keepalives(now);
    }
    print_stats();
    std::fflush(stdout);
    return 0;
  }

 private:
  bool open_sockets() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (epoll_fd_ < 0 || wake_fd_ < 0 || listen_fd_ < 0) return fail("cannot create its sockets");
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(options_.port);
    if (::inet_pton(AF_INET, options_.address.c_str(), &address.sin_addr) != 1)
      return fail(("not an IPv4 address: " + options_.address).c_str());
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listen_fd_, SOMAXCONN) != 0)
      return fail("cannot listen");
    socklen_t length = sizeof address;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    return watch(listen_fd_, &listen_fd_) && watch(wake_fd_, &wake_fd_);
  }

  static bool fail(const char* what) {
    std::fprintf(stderr, "bench-server (bare): %s: %s\n", what, std::strerror(errno));
    return false;
  }

  bool watch(int fd, void* tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = tag;
    return ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0 || fail("epoll_ctl");
  }

  void wake() {
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }

  void take_wake() {
    uint64_t count;
    while (::read(wake_fd_, &count, sizeof count) > 0) {
    }
    for (int n = stats_requests_.exchange(0); n > 0; --n) print_stats();
  }

  void accept_all(uint64_t now) {
    for (;;) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or out of fds: the client's connect times out
      auto* link = new Link;
      link->fd = fd;
      link->last_rx_at = now;
      if (!watch(fd, link)) {
        ::close(fd);
        delete link;
        continue;
      }
      ++connections_;
      // A keepalive at once, so the client hears from us without waiting.
      link->keepalive_at = now;
      push_back(link);
    }
  }

  void on_readable(Link* link, uint32_t events, uint64_t now) {
    ssize_t n = ::recv(link->fd, buffer_, sizeof buffer_, 0);
    if (n > 0) {
      link->last_rx_at = now;
      if (!link->heard) {
        link->heard = true;
        ++up_;
        ++link_ups_;
      }
      return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && (events & (EPOLLERR | EPOLLHUP)) == 0) return;
    close_link(link, false);  // the peer closed or reset
  }

  void send_due_keepalives(uint64_t now) {
    const uint64_t interval = options_.timeout_ms / 4;
    while (head_ != nullptr && head_->keepalive_at <= now) {
      Link* link = head_;
      unlink(link);
      uint64_t allowance = link->heard ? options_.timeout_ms : 2ull * options_.timeout_ms;
      if (now - link->last_rx_at >= allowance) {
        close_link(link, true);
        continue;
      }
      static const char kKeepalive = '\n';
      if (::send(link->fd, &kKeepalive, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN) {
        close_link(link, false);
        continue;
      }
      link->keepalive_at = now + interval;
      push_back(link);
    }
  }

  void push_back(Link* link) {
    link->next = nullptr;
    link->prev = tail_;
    (tail_ ? tail_->next : head_) = link;
    tail_ = link;
  }

  void unlink(Link* link) {
    (link->prev ? link->prev->next : head_) = link->next;
    (link->next ? link->next->prev : tail_) = link->prev;
    link->prev = link->next = nullptr;
  }

  // The link may be in the FIFO or just taken out of it.
  void close_link(Link* link, bool outage) {
    if (link->prev != nullptr || head_ == link) unlink(link);
    ::close(link->fd);
    --connections_;
    if (link->heard) {
      --up_;
      ++link_downs_;
    }
    if (outage) ++outages_;
    delete link;
  }

  void print_stats() {
    std::printf("stats connections=%llu up=%llu link_ups=%llu link_downs=%llu outages=%llu heap_in_use=0\n",
                static_cast<unsigned long long>(connections_), static_cast<unsigned long long>(up_),
                static_cast<unsigned long long>(link_ups_), static_cast<unsigned long long>(link_downs_),
                static_cast<unsigned long long>(outages_));
    std::fflush(stdout);
  }

  BareKeepaliveOptions options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  Link* head_ = nullptr;  // keepalive FIFO, earliest first
  Link* tail_ = nullptr;
  uint64_t connections_ = 0;
  uint64_t up_ = 0;
  uint64_t link_ups_ = 0;
  uint64_t link_downs_ = 0;
  uint64_t outages_ = 0;
  std::atomic<int> stats_requests_{0};
  std::atomic<bool> stopping_{false};
  char buffer_[4096];
};

}  // namespace

[[noreturn]] void run_bare_keepalive_server(const BareKeepaliveOptions& options) {
  BareServer server(options);
  int status = server.run();
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(status);  // the detached stdin reader may still be blocked in read()
}

}  // namespace resilink::bench
