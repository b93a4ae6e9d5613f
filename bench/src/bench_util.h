// Small helpers the rtt and throughput sections share: percentiles and
// medians, CPU clocks, loopback sockets and a quiet logger.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace resilink::bench::loopback {

// The value below which `fraction` of the samples lie (nearest rank); sorts.
double percentile(std::vector<double>& samples, double fraction);
double median(std::vector<double> values);

struct Percentiles {
  double p50 = 0, p99 = 0, max = 0;
};
Percentiles percentiles(std::vector<double>& samples);
// The median of each percentile over repetitions (medians, not means: one
// repetition disturbed by another process must not move the figure).
Percentiles median_of(const std::vector<Percentiles>& repetitions);

// CPU seconds used so far by a thread (another thread's too, via its clock id).
double thread_cpu_seconds(clockid_t clock);
double this_thread_cpu_seconds();
clockid_t cpu_clock_of(pthread_t thread);
double wall_seconds();  // steady clock

// A listening TCP socket on 127.0.0.1 with a kernel-chosen port.
struct Listener {
  int fd = -1;
  uint16_t port = 0;
};
Listener listen_loopback();  // throws std::system_error
// A blocking TCP connection to 127.0.0.1:port with TCP_NODELAY.
int connect_loopback(uint16_t port);  // throws std::system_error
void set_nodelay(int fd);
void set_nonblocking(int fd);
// Blocking send/receive of exactly `length` bytes; throw on error or EOF.
void send_all(int fd, const void* data, size_t length);
void receive_exactly(int fd, void* data, size_t length);

// The default logger's sinks at warn level or quieter: the shells' per-connection
// info lines would drown the table.
std::shared_ptr<spdlog::logger> quiet_logger(const std::string& name);

// A payload of `size` printable bytes (no '\n'), the same for every system.
std::string make_payload(size_t size);

}  // namespace resilink::bench::loopback
