// A TCP relay on loopback that can stall both directions at once: bytes stop
// crossing (they wait in kernel buffers, nothing is closed), exactly what a
// WiFi outage does to a TCP connection. When the stall ends, whatever is still
// open resumes; a side that closed meanwhile has its partner closed.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace resilink::lab {

class StallRelay {
 public:
  explicit StallRelay(uint16_t target_port) : target_port_(target_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 64) != 0)
      throw std::runtime_error("relay: cannot listen");
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~StallRelay() {
    stop_ = true;
    thread_.join();
    for (auto& p : pairs_) {
      ::close(p.a);
      ::close(p.b);
    }
    ::close(listener_);
  }

  uint16_t port() const { return port_; }
  void set_stalled(bool stalled) {
    if (stalled && !stalled_) ++stalls_;
    stalled_ = stalled;
  }
  int stalls() const { return stalls_; }
  int accepted() const { return accepted_; }

 private:
  struct Pair {
    int a, b;  // a: accepted from the client, b: connected to the target
    bool a_eof = false, b_eof = false;
  };

  int connect_target() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(target_port_);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }

  // Moves what is readable from `from` to `to`. False when the pair is done.
  static bool pump(int from, int to) {
    char buf[16384];
    ssize_t n = ::recv(from, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return false;
      }
      off += w;
    }
    return true;
  }

  void run() {
    while (!stop_) {
      std::vector<pollfd> fds;
      fds.push_back({listener_, POLLIN, 0});
      if (!stalled_)
        for (auto& p : pairs_) {
          fds.push_back({p.a, POLLIN, 0});
          fds.push_back({p.b, POLLIN, 0});
        }
      ::poll(fds.data(), fds.size(), 10);
      if (fds[0].revents & POLLIN) {
        int a = ::accept(listener_, nullptr, nullptr);
        if (a >= 0) {
          // While stalled, the connection stays unanswered beyond the kernel's
          // handshake: it is joined to the target only when the stall ends.
          pending_.push_back(a);
          ++accepted_;
        }
      }
      if (stalled_) continue;
      for (int a : pending_) {
        int b = connect_target();
        if (b < 0) {
          ::close(a);
          continue;
        }
        pairs_.push_back({a, b});
      }
      pending_.clear();
      size_t i = 1;
      std::vector<Pair> alive;
      for (auto& p : pairs_) {
        bool ok = true;
        if (i < fds.size() && fds[i].fd == p.a && (fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
          ok = pump(p.a, p.b) && ok;
        if (i + 1 < fds.size() && fds[i + 1].fd == p.b &&
            (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
          ok = pump(p.b, p.a) && ok;
        i += 2;
        if (ok) {
          alive.push_back(p);
        } else {
          ::close(p.a);
          ::close(p.b);
        }
      }
      pairs_ = std::move(alive);
    }
  }

  uint16_t target_port_;
  uint16_t port_ = 0;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stalled_{false};
  std::atomic<int> stalls_{0};
  std::atomic<int> accepted_{0};
  std::vector<Pair> pairs_;
  std::vector<int> pending_;
  std::thread thread_;
};

}  // namespace resilink::lab
