#include "scale_server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

extern char** environ;

namespace resilink::bench::scale {

BenchServerProcess::BenchServerProcess(const std::string& self_exe, uint32_t timeout_ms, const std::string& app) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("bench-server: pipe failed");
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    throw std::runtime_error("bench-server: pipe failed");
  }
  std::vector<std::string> argv = {self_exe, "bench-server", "--address", "127.0.0.1", "--port", "0",
                                   "--timeout", std::to_string(timeout_ms), "--log", "warn", "--app", app};
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears close-on-exec on the child's 0 and 1; stderr is shared so its
  // warnings reach the person running the bench.
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  int spawn_error = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  stdin_ = in[1];
  stdout_ = out[0];
  ::signal(SIGPIPE, SIG_IGN);  // a dead child must not kill the bench
  if (spawn_error != 0) {
    pid_ = -1;
    throw std::runtime_error("bench-server: cannot start " + self_exe);
  }
  auto line = read_line(std::chrono::seconds(10));
  if (!line || line->rfind("port=", 0) != 0) {
    stop(std::chrono::seconds(1));
    throw std::runtime_error("bench-server: did not report its port" + (line ? " (said '" + *line + "')" : ""));
  }
  port_ = static_cast<uint16_t>(std::stoul(line->substr(5)));
}

BenchServerProcess::~BenchServerProcess() {
  stop(std::chrono::seconds(5));
  if (stdout_ >= 0) ::close(stdout_);
}

bool BenchServerProcess::running() {
  if (pid_ <= 0 || exited_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) exited_ = true;
  return !exited_;
}

std::optional<std::string> BenchServerProcess::read_line(std::chrono::milliseconds wait) {
  auto end = std::chrono::steady_clock::now() + wait;
  for (;;) {
    size_t nl = partial_.find('\n');
    if (nl != std::string::npos) {
      std::string line = partial_.substr(0, nl);
      partial_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{stdout_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(stdout_, buf, sizeof buf);
    if (n <= 0) return std::nullopt;  // the child closed stdout: it has exited
    partial_.append(buf, static_cast<size_t>(n));
  }
}

std::optional<std::map<std::string, uint64_t>> BenchServerProcess::stats(std::chrono::milliseconds wait) {
  if (stdin_ < 0) return std::nullopt;
  const char command[] = "stats\n";
  if (::write(stdin_, command, sizeof command - 1) != static_cast<ssize_t>(sizeof command - 1)) return std::nullopt;
  auto end = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    auto line = read_line(left);
    if (!line) return std::nullopt;
    if (line->rfind("stats ", 0) != 0) continue;
    std::map<std::string, uint64_t> values;
    std::istringstream words(line->substr(6));
    std::string word;
    while (words >> word) {
      size_t eq = word.find('=');
      if (eq != std::string::npos) values[word.substr(0, eq)] = std::stoull(word.substr(eq + 1));
    }
    return values;
  }
}

void BenchServerProcess::stop(std::chrono::milliseconds wait) {
  if (stdin_ >= 0) {
    ::close(stdin_);
    stdin_ = -1;
  }
  if (pid_ <= 0 || exited_) return;
  auto end = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < end) {
    if (!running()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  exited_ = true;
}

}  // namespace resilink::bench::scale
