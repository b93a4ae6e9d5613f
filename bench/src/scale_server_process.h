// The measured server as a child process: `resilink bench-server` (see
// apps/bench_server_command.cpp), so that /proc/PID shows its memory and CPU
// alone, apart from the load generator's.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace resilink::bench::scale {

class BenchServerProcess {
 public:
  // Starts `self_exe bench-server` on 127.0.0.1 and a free port and waits for
  // the port it prints. Throws std::runtime_error if it does not start.
  // app: "callback" (Server::on_line) or "coroutine" (a readline() loop per link).
  BenchServerProcess(const std::string& self_exe, uint32_t timeout_ms, const std::string& app);
  ~BenchServerProcess();
  BenchServerProcess(const BenchServerProcess&) = delete;
  BenchServerProcess& operator=(const BenchServerProcess&) = delete;

  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  bool running();

  // Asks for the server's counts: connections, up, link_ups, link_downs,
  // outages, heap_in_use. nullopt if no answer comes in time.
  std::optional<std::map<std::string, uint64_t>> stats(std::chrono::milliseconds wait);

  // Closes its stdin (it closes the server and exits), waits, kills if need be.
  void stop(std::chrono::milliseconds wait);

 private:
  std::optional<std::string> read_line(std::chrono::milliseconds wait);

  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  uint16_t port_ = 0;
  bool exited_ = false;
  std::string partial_;
};

}  // namespace resilink::bench::scale
