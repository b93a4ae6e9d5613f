#include "resilink/lab/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace resilink::lab {
namespace {

constexpr const char* kNetnsDir = "/var/run/netns";
// Interface names hold IFNAMSIZ - 1 = 15 characters; the veths add "-s"/"-c".
constexpr size_t kMaxPrefix = IFNAMSIZ - 1 - 2;
// Bit numbers in CapEff (linux/capability.h).
constexpr int kCapNetAdmin = 12;
constexpr int kCapSysAdmin = 21;

std::error_code last_errno() { return {errno, std::generic_category()}; }

std::string namespace_path(const std::string& name) { return std::string(kNetnsDir) + "/" + name; }

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The `ip` binary: PATH first, then the sbin directories a non-login root
// shell (or ctest's environment) may leave out. Empty when absent.
std::string find_ip_binary() {
  std::string search;
  if (const char* path = std::getenv("PATH")) search = path;
  search += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::istringstream dirs(search);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/ip";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

// CapEff from /proc/self/status; false when unreadable.
bool effective_capabilities(uint64_t* caps) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("CapEff:", 0) == 0) {
      *caps = std::strtoull(line.c_str() + 7, nullptr, 16);
      return true;
    }
  }
  return false;
}

std::string trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string join(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& arg : argv) {
    if (!line.empty()) line += ' ';
    line += arg;
  }
  return line;
}

// Runs `ip args...` without a shell. True on exit status 0; otherwise
// *error is "ip ARGS: STDERR (exit N)".
bool run_ip(const std::string& ip_binary, const std::vector<std::string>& args, std::string* error) {
  std::vector<std::string> argv{"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw;
  for (auto& arg : argv) raw.push_back(arg.data());
  raw.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    *error = join(argv) + ": pipe: " + std::strerror(errno);
    return false;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  pid_t pid = -1;
  int spawn_error = ::posix_spawn(&pid, ip_binary.c_str(), &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawn_error != 0) {
    ::close(pipe_fds[0]);
    *error = join(argv) + ": cannot run " + ip_binary + ": " + std::strerror(spawn_error);
    return false;
  }

  std::string output;
  char buffer[512];
  for (;;) {
    ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n > 0) {
      output.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  std::string how = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                      : "killed by signal " + std::to_string(WTERMSIG(status));
  *error = join(argv) + ": " + trim(output) + " (" + how + ")";
  return false;
}

bool valid_prefix(const std::string& prefix) {
  if (prefix.empty() || prefix.size() > kMaxPrefix) return false;
  for (char c : prefix) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_';
    if (!ok) return false;
  }
  return true;
}

// Three dotted octets, so that subnet + ".1" is an IPv4 address.
bool valid_subnet(const std::string& subnet) {
  size_t dots = 0;
  for (char c : subnet) dots += c == '.';
  in_addr address{};
  return dots == 2 && ::inet_pton(AF_INET, (subnet + ".1").c_str(), &address) == 1;
}

std::string default_prefix() {
  static std::atomic<unsigned> labs_created{0};
  unsigned n = labs_created.fetch_add(1);
  std::string prefix = "rl" + std::to_string(::getpid());
  if (n > 0) prefix += "-" + std::to_string(n);
  return prefix;
}

}  // namespace

bool NetnsLab::can_run(std::string* why) {
  std::string reason;
  uint64_t caps = 0;
  if (!path_exists("/proc/self/ns/net")) {
    reason = "this kernel has no network namespaces (/proc/self/ns/net is missing)";
  } else if (!effective_capabilities(&caps)) {
    reason = "cannot read capabilities from /proc/self/status";
  } else if (!(caps & (uint64_t{1} << kCapNetAdmin)) || !(caps & (uint64_t{1} << kCapSysAdmin))) {
    if (::geteuid() != 0) {
      reason = "needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces; run as root or with sudo";
    } else {
      std::string missing = (caps & (uint64_t{1} << kCapSysAdmin)) ? "CAP_NET_ADMIN"
                            : (caps & (uint64_t{1} << kCapNetAdmin)) ? "CAP_SYS_ADMIN"
                                                                     : "CAP_SYS_ADMIN and CAP_NET_ADMIN";
      reason = "running as root but without " + missing +
               " (a container without --privileged?), so network namespaces cannot be created";
    }
  } else if (path_exists(kNetnsDir) ? ::access(kNetnsDir, W_OK) != 0 : ::access("/var/run", W_OK) != 0) {
    reason = std::string(kNetnsDir) + " is not writable: " + std::strerror(errno);
  } else if (find_ip_binary().empty()) {
    reason = "the `ip` binary (Debian package iproute2) is not installed";
  }
  if (why) *why = reason;
  return reason.empty();
}

std::unique_ptr<NetnsLab> NetnsLab::create(NetnsOptions options, std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;
  if (options.prefix.empty()) options.prefix = default_prefix();
  if (!valid_prefix(options.prefix)) {
    *error = "netns lab: bad prefix \"" + options.prefix + "\": want 1 to " + std::to_string(kMaxPrefix) +
             " letters, digits, '-' or '_'";
    return nullptr;
  }
  if (!valid_subnet(options.subnet)) {
    *error = "netns lab: bad subnet \"" + options.subnet + "\": want three octets such as 10.213.0";
    return nullptr;
  }

  std::unique_ptr<NetnsLab> lab(new NetnsLab());
  lab->server_namespace_ = options.prefix + "-srv";
  lab->client_namespace_ = options.prefix + "-cli";
  lab->server_interface_ = options.prefix + "-s";
  lab->client_interface_ = options.prefix + "-c";
  lab->server_address_ = options.subnet + ".1";
  lab->client_address_ = options.subnet + ".2";
  lab->ip_binary_ = find_ip_binary();
  if (lab->ip_binary_.empty()) {
    *error = "netns lab: the `ip` binary (Debian package iproute2) is not installed";
    return nullptr;
  }

  // Each step: what it does (for the error), then ip's arguments. On failure
  // the destructor removes whatever was built.
  const std::string& srv = lab->server_namespace_;
  const std::string& cli = lab->client_namespace_;
  const std::string& srv_if = lab->server_interface_;
  const std::string& cli_if = lab->client_interface_;
  struct Step {
    std::string what;
    std::vector<std::string> args;
  };
  std::vector<Step> steps;
  for (const std::string* name : {&srv, &cli}) {
    if (path_exists(namespace_path(*name)))
      steps.push_back({"remove leftover namespace " + *name, {"netns", "del", *name}});
  }
  steps.push_back({"create namespace " + srv, {"netns", "add", srv}});
  steps.push_back({"create namespace " + cli, {"netns", "add", cli}});
  // Both ends are created directly inside their namespaces, so a crash never
  // leaves a veth in the root namespace.
  steps.push_back({"create veth pair",
                   {"link", "add", cli_if, "netns", cli, "type", "veth", "peer", "name", srv_if, "netns", srv}});
  steps.push_back({"address the server veth", {"-n", srv, "addr", "add", lab->server_address_ + "/24", "dev", srv_if}});
  steps.push_back({"address the client veth", {"-n", cli, "addr", "add", lab->client_address_ + "/24", "dev", cli_if}});
  steps.push_back({"bring up server lo", {"-n", srv, "link", "set", "lo", "up"}});
  steps.push_back({"bring up client lo", {"-n", cli, "link", "set", "lo", "up"}});
  steps.push_back({"bring up the server veth", {"-n", srv, "link", "set", srv_if, "up"}});
  steps.push_back({"bring up the client veth", {"-n", cli, "link", "set", cli_if, "up"}});
  for (const Step& step : steps) {
    std::string ip_error;
    if (!run_ip(lab->ip_binary_, step.args, &ip_error)) {
      *error = "netns lab: " + step.what + ": " + ip_error;
      return nullptr;
    }
  }
  lab->link_up_ = true;

  for (auto [name, fd] : {std::pair{&srv, &lab->server_fd_}, std::pair{&cli, &lab->client_fd_}}) {
    *fd = ::open(namespace_path(*name).c_str(), O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
      *error = "netns lab: open " + namespace_path(*name) + ": " + std::strerror(errno);
      return nullptr;
    }
  }
  int socket_errno = 0;
  std::error_code entered = lab->run_in_client([&] {
    lab->control_fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socket_errno = errno;
  });
  if (entered || lab->control_fd_ < 0) {
    *error = "netns lab: control socket in " + cli + ": " +
             (entered ? "setns: " + entered.message() : std::string(std::strerror(socket_errno)));
    return nullptr;
  }
  return lab;
}

NetnsLab::~NetnsLab() {
  try {
    for (int fd : {control_fd_, server_fd_, client_fd_}) {
      if (fd >= 0) ::close(fd);
    }
    for (const std::string* name : {&server_namespace_, &client_namespace_}) {
      std::string ignored;
      if (!name->empty() && path_exists(namespace_path(*name))) run_ip(ip_binary_, {"netns", "del", *name}, &ignored);
    }
  } catch (...) {
    // Out of memory while formatting: the namespaces stay; the next create()
    // with this prefix removes them.
  }
}

std::error_code NetnsLab::enter_server() const {
  return ::setns(server_fd_, CLONE_NEWNET) == 0 ? std::error_code{} : last_errno();
}

std::error_code NetnsLab::enter_client() const {
  return ::setns(client_fd_, CLONE_NEWNET) == 0 ? std::error_code{} : last_errno();
}

std::error_code NetnsLab::run_in_server(const std::function<void()>& fn) const { return run_in(server_fd_, fn); }

std::error_code NetnsLab::run_in_client(const std::function<void()>& fn) const { return run_in(client_fd_, fn); }

std::error_code NetnsLab::run_in(int namespace_fd, const std::function<void()>& fn) const {
  std::error_code entered;
  std::exception_ptr thrown;
  std::thread worker([&] {
    if (::setns(namespace_fd, CLONE_NEWNET) != 0) {
      entered = last_errno();
      return;
    }
    try {
      fn();
    } catch (...) {
      thrown = std::current_exception();
    }
  });
  worker.join();
  if (thrown) std::rethrow_exception(thrown);
  return entered;
}

std::error_code NetnsLab::set_link(bool up) {
  std::lock_guard lock(link_mutex_);
  ifreq request{};
  std::strncpy(request.ifr_name, client_interface_.c_str(), IFNAMSIZ - 1);
  if (::ioctl(control_fd_, SIOCGIFFLAGS, &request) != 0) return last_errno();
  if (up) {
    request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
  } else {
    request.ifr_flags = static_cast<short>(request.ifr_flags & ~IFF_UP);
  }
  if (::ioctl(control_fd_, SIOCSIFFLAGS, &request) != 0) return last_errno();
  if (!up && link_up_) ++outages_;
  link_up_ = up;
  return {};
}

}  // namespace resilink::lab
