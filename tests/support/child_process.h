// A child process with pipes on stdin, stdout and stderr, for testing the
// resilink command line as a user runs it.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace resilink::test {

class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> argv, const std::string& stderr_path = "/dev/null") {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addclose(&actions, in[1]);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    ::fcntl(stdout_, F_SETFL, ::fcntl(stdout_, F_GETFL) | O_NONBLOCK);
    ::signal(SIGPIPE, SIG_IGN);
  }
  ~ChildProcess() {
    close_stdin();
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_ >= 0) ::close(stdout_);
  }

  bool running() const { return pid_ > 0; }

  bool write(const std::string& data) {
    for (size_t off = 0; off < data.size();) {
      ssize_t n = ::write(stdin_, data.data() + off, data.size() - off);
      if (n < 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  void close_stdin() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
  }

  // Appends complete stdout lines to `lines`, waiting at most wait_ms.
  void read_lines(std::vector<std::string>& lines, int wait_ms) {
    pollfd p{stdout_, POLLIN, 0};
    if (::poll(&p, 1, wait_ms) <= 0) return;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(stdout_, buf, sizeof buf);
      if (n <= 0) break;
      partial_.append(buf, static_cast<size_t>(n));
    }
    size_t start = 0, nl;
    while ((nl = partial_.find('\n', start)) != std::string::npos) {
      lines.push_back(partial_.substr(start, nl - start));
      start = nl + 1;
    }
    partial_.erase(0, start);
  }

  void terminate() {
    if (pid_ > 0 && !exited_) ::kill(pid_, SIGTERM);
  }
  void interrupt() {
    if (pid_ > 0 && !exited_) ::kill(pid_, SIGINT);
  }

  // Exit status, or nullopt if still running after timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(10000);
    }
    return std::nullopt;
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  bool exited_ = false;
  std::string partial_;
};

}  // namespace resilink::test
