#include "bench_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <system_error>

namespace resilink::bench::loopback {

namespace {
[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}
}  // namespace

double percentile(std::vector<double>& samples, double fraction) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  auto rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(samples.size())));
  return samples[std::clamp<size_t>(rank, 1, samples.size()) - 1];
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

Percentiles percentiles(std::vector<double>& samples) {
  Percentiles p;
  p.p50 = percentile(samples, 0.50);
  p.p99 = percentile(samples, 0.99);
  p.max = samples.empty() ? 0 : samples.back();  // sorted by percentile()
  return p;
}

Percentiles median_of(const std::vector<Percentiles>& repetitions) {
  std::vector<double> p50, p99, max;
  for (const Percentiles& p : repetitions) {
    p50.push_back(p.p50);
    p99.push_back(p.p99);
    max.push_back(p.max);
  }
  return {median(p50), median(p99), median(max)};
}

double thread_cpu_seconds(clockid_t clock) {
  timespec ts{};
  if (::clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double this_thread_cpu_seconds() { return thread_cpu_seconds(CLOCK_THREAD_CPUTIME_ID); }

clockid_t cpu_clock_of(pthread_t thread) {
  clockid_t clock{};
  if (int rc = ::pthread_getcpuclockid(thread, &clock); rc != 0)
    throw std::system_error(rc, std::generic_category(), "pthread_getcpuclockid");
  return clock;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Listener listen_loopback() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || ::listen(fd, 1024) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "listen on 127.0.0.1");
  }
  return {fd, ntohs(address.sin_port)};
}

void set_nodelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

int connect_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "connect to 127.0.0.1:" + std::to_string(port));
  }
  set_nodelay(fd);
  return fd;
}

void send_all(int fd, const void* data, size_t length) {
  const auto* bytes = static_cast<const char*>(data);
  while (length > 0) {
    ssize_t n = ::send(fd, bytes, length, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw_errno("send");
    bytes += n;
    length -= static_cast<size_t>(n);
  }
}

void receive_exactly(int fd, void* data, size_t length) {
  auto* bytes = static_cast<char*>(data);
  while (length > 0) {
    ssize_t n = ::recv(fd, bytes, length, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("recv");
    if (n == 0) throw std::system_error(ECONNRESET, std::generic_category(), "peer closed");
    bytes += n;
    length -= static_cast<size_t>(n);
  }
}

std::shared_ptr<spdlog::logger> quiet_logger(const std::string& name) {
  auto base = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(name, base->sinks().begin(), base->sinks().end());
  logger->set_level(std::max(base->level(), spdlog::level::warn));
  return logger;
}

std::string make_payload(size_t size) {
  std::string payload(size, 'x');
  for (size_t i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + i % 26);
  return payload;
}

}  // namespace resilink::bench::loopback
