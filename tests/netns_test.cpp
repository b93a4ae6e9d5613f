// NetnsLab: two network namespaces joined by a veth, and outages made by
// setting the client-side veth down. Needs root; skips itself otherwise.
//
// Sockets are created inside a namespace by a thread that entered it
// (run_in_server / run_in_client); a socket keeps its namespace, so the test
// thread then drives them directly and never leaves the root namespace.
#include "resilink/lab/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>

namespace {

using resilink::lab::NetnsLab;
using resilink::lab::NetnsOptions;
using Clock = std::chrono::steady_clock;

constexpr int kResumeTimeoutMs = 10000;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

sockaddr_in ipv4(const std::string& address, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
  return addr;
}

struct Listener {
  Fd fd;
  uint16_t port = 0;
};

// A listener on address:0 in the calling thread's namespace.
Listener listen_on(const std::string& address) {
  Listener listener{Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), 0};
  sockaddr_in addr = ipv4(address, 0);
  if (::bind(listener.fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener.fd.get(), 16) != 0)
    return {};
  socklen_t len = sizeof addr;
  ::getsockname(listener.fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  listener.port = ntohs(addr.sin_port);
  return listener;
}

// A blocking connect from the calling thread's namespace; errno on failure.
Fd connect_to(const std::string& address, uint16_t port, int* error) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = ipv4(address, port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *error = errno;
    return {};
  }
  *error = 0;
  return fd;
}

Listener listen_in_server(const NetnsLab& lab) {
  Listener listener;
  EXPECT_FALSE(lab.run_in_server([&] { listener = listen_on(lab.server_address()); }));
  return listener;
}

Fd connect_from_client(const NetnsLab& lab, uint16_t port, int* error) {
  Fd fd;
  EXPECT_FALSE(lab.run_in_client([&] { fd = connect_to(lab.server_address(), port, error); }));
  return fd;
}

// revents of fd after waiting up to timeout_ms (0 when nothing happened).
short wait_for(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, timeout_ms) > 0 ? p.revents : 0;
}

int socket_error(int fd) {
  int error = 0;
  socklen_t len = sizeof error;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
  return error;
}

Fd accept_within(int listener, int timeout_ms) {
  if (!(wait_for(listener, POLLIN, timeout_ms) & POLLIN)) return {};
  return Fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
}

// Reads until `size` bytes arrived, EOF, an error or the deadline.
std::string read_bytes(int fd, size_t size, int timeout_ms) {
  std::string data;
  auto start = Clock::now();
  while (data.size() < size) {
    int left = timeout_ms - static_cast<int>(elapsed_ms(start));
    if (left <= 0 || !(wait_for(fd, POLLIN, left) & (POLLIN | POLLERR | POLLHUP))) break;
    char buffer[4096];
    ssize_t n = ::recv(fd, buffer, std::min(sizeof buffer, size - data.size()), 0);
    if (n <= 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

ssize_t send_text(int fd, const std::string& text) { return ::send(fd, text.data(), text.size(), MSG_NOSIGNAL); }

struct Connection {
  Fd server;  // accepted in the server namespace
  Fd client;  // connected from the client namespace
};

Connection connect_pair(const NetnsLab& lab, const Listener& listener) {
  Connection connection;
  int error = 0;
  connection.client = connect_from_client(lab, listener.port, &error);
  EXPECT_TRUE(connection.client.valid()) << "connect: " << std::strerror(error);
  connection.server = accept_within(listener.fd.get(), 5000);
  EXPECT_TRUE(connection.server.valid());
  return connection;
}

ino_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Whether the calling thread's namespace has a route to subnet.0/24.
bool has_subnet_route(const std::string& client_address) {
  in_addr client{};
  ::inet_pton(AF_INET, client_address.c_str(), &client);
  char destination[16];
  std::snprintf(destination, sizeof destination, "%08X", client.s_addr & htonl(0xFFFFFF00));
  std::ifstream routes("/proc/thread-self/net/route");
  for (std::string line; std::getline(routes, line);) {
    if (line.find(std::string("\t") + destination + "\t") != std::string::npos) return true;
  }
  return false;
}

// Runs a shell command with iproute2 on the PATH (test-only setup).
std::string shell(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen(("PATH=\"$PATH:/usr/sbin:/sbin\"; " + command + " 2>&1").c_str(), "r");
  if (!pipe) return output;
  char buffer[256];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  ::pclose(pipe);
  return output;
}

// Whether `ip netns list` (lines "NAME" or "NAME (id: N)") names it.
bool namespace_listed(const std::string& name) {
  std::istringstream listing(shell("ip netns list"));
  for (std::string line; std::getline(listing, line);) {
    if (line.substr(0, line.find(' ')) == name) return true;
  }
  return false;
}

bool namespace_file(const std::string& name) { return inode_of("/var/run/netns/" + name) != 0; }

std::string unique_prefix(const char* tag) { return std::string("rl") + tag + std::to_string(::getpid()); }

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!NetnsLab::can_run(&why)) GTEST_SKIP() << why;
  }

  std::unique_ptr<NetnsLab> make_lab(NetnsOptions options = {}) {
    std::string error;
    auto lab = NetnsLab::create(std::move(options), &error);
    EXPECT_TRUE(lab) << error;
    return lab;
  }
};

TEST(Netns, CanRunGivesAReasonExactlyWhenItCannot) {
  std::string why = "unset";
  bool can = NetnsLab::can_run(&why);
  EXPECT_EQ(can, why.empty()) << why;
}

TEST(Netns, CreateRejectsBadOptionsBeforeTouchingTheKernel) {
  std::string error;
  EXPECT_FALSE(NetnsLab::create({.prefix = "much-too-long-prefix", .subnet = "10.213.0"}, &error));
  EXPECT_NE(error.find("bad prefix"), std::string::npos) << error;
  EXPECT_FALSE(NetnsLab::create({.prefix = "../etc", .subnet = "10.213.0"}, &error));
  EXPECT_NE(error.find("bad prefix"), std::string::npos) << error;
  EXPECT_FALSE(NetnsLab::create({.prefix = "rlok", .subnet = "10.213.0.0"}, &error));
  EXPECT_NE(error.find("bad subnet"), std::string::npos) << error;
  EXPECT_FALSE(NetnsLab::create({.prefix = "rlok", .subnet = "10.300.0"}, &error));
  EXPECT_NE(error.find("bad subnet"), std::string::npos) << error;
}

TEST_F(NetnsTest, EnterMovesOnlyTheCallingThreadIntoItsNamespace) {
  auto lab = make_lab();
  ASSERT_TRUE(lab);
  EXPECT_EQ(lab->server_address(), "10.213.0.1");
  EXPECT_EQ(lab->client_address(), "10.213.0.2");
  EXPECT_TRUE(lab->link_up());
  EXPECT_EQ(lab->outages(), 0u);

  const ino_t root = inode_of("/proc/thread-self/ns/net");
  const ino_t server = inode_of("/var/run/netns/" + lab->server_namespace());
  const ino_t client = inode_of("/var/run/netns/" + lab->client_namespace());
  ASSERT_NE(server, 0u);
  ASSERT_NE(client, 0u);
  EXPECT_NE(server, client);
  EXPECT_NE(server, root);

  ino_t seen_server = 0, seen_client = 0;
  std::thread server_thread([&] {
    ASSERT_FALSE(lab->enter_server());
    seen_server = inode_of("/proc/thread-self/ns/net");
  });
  std::thread client_thread([&] {
    ASSERT_FALSE(lab->enter_client());
    seen_client = inode_of("/proc/thread-self/ns/net");
  });
  server_thread.join();
  client_thread.join();
  EXPECT_EQ(seen_server, server);
  EXPECT_EQ(seen_client, client);
  EXPECT_EQ(inode_of("/proc/thread-self/ns/net"), root);
}

TEST_F(NetnsTest, LinkDownStallsSilentlyAndLinkUpDeliversTheHeldBytesInOrder) {
  auto lab = make_lab();
  ASSERT_TRUE(lab);
  Listener listener = listen_in_server(*lab);
  ASSERT_TRUE(listener.fd.valid());

  // A server thread and a client thread, each in its namespace.
  Fd server, client;
  std::thread server_thread([&] {
    ASSERT_FALSE(lab->enter_server());
    server = accept_within(listener.fd.get(), 5000);
  });
  std::thread client_thread([&] {
    ASSERT_FALSE(lab->enter_client());
    int error = 0;
    client = connect_to(lab->server_address(), listener.port, &error);
    EXPECT_EQ(error, 0) << std::strerror(error);
  });
  server_thread.join();
  client_thread.join();
  ASSERT_TRUE(server.valid());
  ASSERT_TRUE(client.valid());

  ASSERT_EQ(send_text(client.get(), "hello"), 5);
  EXPECT_EQ(read_bytes(server.get(), 5, 5000), "hello");
  ASSERT_EQ(send_text(server.get(), "world"), 5);
  EXPECT_EQ(read_bytes(client.get(), 5, 5000), "world");

  ASSERT_FALSE(lab->set_link(false));
  EXPECT_FALSE(lab->link_up());
  EXPECT_EQ(lab->outages(), 1u);

  // Sends are buffered: they succeed in full.
  std::string upstream, downstream;
  for (int i = 0; i < 20; ++i) {
    std::string up = "up-" + std::to_string(i) + ";";
    std::string down = "down-" + std::to_string(i) + ";";
    EXPECT_EQ(send_text(client.get(), up), static_cast<ssize_t>(up.size()));
    EXPECT_EQ(send_text(server.get(), down), static_cast<ssize_t>(down.size()));
    upstream += up;
    downstream += down;
  }

  // For a second nothing arrives and nothing is reported: no data, no EOF,
  // no POLLERR, no POLLHUP, no pending socket error, at either end.
  pollfd both[2] = {{server.get(), POLLIN | POLLRDHUP, 0}, {client.get(), POLLIN | POLLRDHUP, 0}};
  auto stall_start = Clock::now();
  EXPECT_EQ(::poll(both, 2, 1000), 0) << "server revents " << both[0].revents << ", client revents "
                                      << both[1].revents;
  EXPECT_GE(elapsed_ms(stall_start), 950);
  EXPECT_EQ(socket_error(server.get()), 0);
  EXPECT_EQ(socket_error(client.get()), 0);

  ASSERT_FALSE(lab->set_link(true));
  EXPECT_TRUE(lab->link_up());
  EXPECT_EQ(lab->outages(), 1u);
  auto resume_start = Clock::now();
  EXPECT_EQ(read_bytes(server.get(), upstream.size(), kResumeTimeoutMs), upstream);
  long upstream_ms = elapsed_ms(resume_start);
  EXPECT_EQ(read_bytes(client.get(), downstream.size(), kResumeTimeoutMs), downstream);
  long downstream_ms = elapsed_ms(resume_start);
  std::printf("after a 1 s outage the held bytes arrived %ld ms (client to server) and %ld ms (server to client) "
              "after link up\n",
              upstream_ms, downstream_ms);

  // The old connection carries on and new ones work.
  ASSERT_EQ(send_text(client.get(), "again"), 5);
  EXPECT_EQ(read_bytes(server.get(), 5, 5000), "again");
  Connection fresh = connect_pair(*lab, listener);
  ASSERT_TRUE(fresh.client.valid() && fresh.server.valid());
  ASSERT_EQ(send_text(fresh.server.get(), "fresh"), 5);
  EXPECT_EQ(read_bytes(fresh.client.get(), 5, 5000), "fresh");
}

TEST_F(NetnsTest, WhileDownTheRouteIsGoneAndConnectFailsAndLinkUpRestoresBoth) {
  auto lab = make_lab();
  ASSERT_TRUE(lab);
  Listener listener = listen_in_server(*lab);
  ASSERT_TRUE(listener.fd.valid());
  bool route = false;
  ASSERT_FALSE(lab->run_in_client([&] { route = has_subnet_route(lab->client_address()); }));
  EXPECT_TRUE(route) << "no connected route before the outage";

  ASSERT_FALSE(lab->set_link(false));
  ASSERT_FALSE(lab->run_in_client([&] { route = has_subnet_route(lab->client_address()); }));
  EXPECT_FALSE(route) << "the connected route survived link down";

  // Non-blocking, so an unanswered SYN cannot hang the test: what matters is
  // that connect() does not succeed while the link is down.
  int connect_errno = 0;
  short revents = 0;
  long connect_ms = 0;
  ASSERT_FALSE(lab->run_in_client([&] {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in addr = ipv4(lab->server_address(), listener.port);
    auto start = Clock::now();
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) connect_errno = errno;
    if (connect_errno == EINPROGRESS) {
      revents = wait_for(fd.get(), POLLOUT, 1000);
      connect_errno = socket_error(fd.get());
    }
    connect_ms = elapsed_ms(start);
  }));
  std::printf("connect() with the link down: %s after %ld ms (revents %d)\n",
              connect_errno ? std::strerror(connect_errno) : "no answer", connect_ms, revents);
  EXPECT_NE(connect_errno, 0) << "connect succeeded during an outage";
  EXPECT_FALSE(accept_within(listener.fd.get(), 0).valid());

  ASSERT_FALSE(lab->set_link(true));
  auto up_at = Clock::now();
  ASSERT_FALSE(lab->run_in_client([&] {
    while (!(route = has_subnet_route(lab->client_address())) && elapsed_ms(up_at) < 5000)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }));
  std::printf("connected route back %ld ms after link up\n", elapsed_ms(up_at));
  EXPECT_TRUE(route) << "the connected route did not come back";

  Connection fresh = connect_pair(*lab, listener);
  ASSERT_TRUE(fresh.client.valid() && fresh.server.valid());
  ASSERT_EQ(send_text(fresh.client.get(), "ok"), 2);
  EXPECT_EQ(read_bytes(fresh.server.get(), 2, 5000), "ok");
}

TEST_F(NetnsTest, RepeatedOutagesEachStallAndResume) {
  auto lab = make_lab();
  ASSERT_TRUE(lab);
  Listener listener = listen_in_server(*lab);
  ASSERT_TRUE(listener.fd.valid());
  Connection connection = connect_pair(*lab, listener);
  ASSERT_TRUE(connection.client.valid() && connection.server.valid());

  constexpr int kCycles = 5;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    ASSERT_FALSE(lab->set_link(false));
    ASSERT_FALSE(lab->set_link(false));  // already down: not another outage
    EXPECT_EQ(lab->outages(), static_cast<uint32_t>(cycle + 1));
    std::string up = "up " + std::to_string(cycle) + "\n";
    std::string down = "down " + std::to_string(cycle) + "\n";
    ASSERT_EQ(send_text(connection.client.get(), up), static_cast<ssize_t>(up.size()));
    ASSERT_EQ(send_text(connection.server.get(), down), static_cast<ssize_t>(down.size()));
    EXPECT_EQ(wait_for(connection.server.get(), POLLIN | POLLRDHUP, 300), 0);
    EXPECT_EQ(wait_for(connection.client.get(), POLLIN | POLLRDHUP, 0), 0);

    ASSERT_FALSE(lab->set_link(true));
    auto up_at = Clock::now();
    EXPECT_EQ(read_bytes(connection.server.get(), up.size(), kResumeTimeoutMs), up);
    EXPECT_EQ(read_bytes(connection.client.get(), down.size(), kResumeTimeoutMs), down);
    std::printf("cycle %d: resumed %ld ms after link up\n", cycle, elapsed_ms(up_at));
  }
  EXPECT_EQ(lab->outages(), static_cast<uint32_t>(kCycles));
}

TEST_F(NetnsTest, InsideTheClientNamespaceLoopbackIsItsOwn) {
  auto lab = make_lab();
  ASSERT_TRUE(lab);
  Listener root_listener = listen_on("127.0.0.1");  // in the root namespace
  ASSERT_TRUE(root_listener.fd.valid());

  int error = 0;
  Fd from_root = connect_to("127.0.0.1", root_listener.port, &error);
  EXPECT_TRUE(from_root.valid()) << "control: " << std::strerror(error);

  Fd from_client;
  ASSERT_FALSE(lab->run_in_client([&] { from_client = connect_to("127.0.0.1", root_listener.port, &error); }));
  EXPECT_FALSE(from_client.valid());
  EXPECT_EQ(error, ECONNREFUSED) << std::strerror(error);

  // Nor is there a way out: the lab's /24 is the client namespace's only route.
  ASSERT_FALSE(lab->run_in_client([&] {
    std::ifstream routes("/proc/thread-self/net/route");
    int lines = 0;
    for (std::string line; std::getline(routes, line);) ++lines;
    EXPECT_EQ(lines, 2) << "expected only the header and the lab's /24";
  }));
}

TEST_F(NetnsTest, DestructorRemovesBothNamespaces) {
  auto lab = make_lab({.prefix = unique_prefix("d")});
  ASSERT_TRUE(lab);
  const std::string server = lab->server_namespace();
  const std::string client = lab->client_namespace();
  EXPECT_TRUE(namespace_file(server));
  EXPECT_TRUE(namespace_file(client));
  EXPECT_TRUE(namespace_listed(server)) << shell("ip netns list");
  EXPECT_TRUE(namespace_listed(client)) << shell("ip netns list");

  lab.reset();
  EXPECT_FALSE(namespace_file(server));
  EXPECT_FALSE(namespace_file(client));
  EXPECT_FALSE(namespace_listed(server)) << shell("ip netns list");
  EXPECT_FALSE(namespace_listed(client)) << shell("ip netns list");
}

TEST_F(NetnsTest, CreateReplacesTheLeftoversOfACrashedRun) {
  const std::string prefix = unique_prefix("l");
  const std::string srv = prefix + "-srv", cli = prefix + "-cli";
  // What a run killed mid-test leaves: both namespaces, the veth, and an
  // address (a stray one, to tell the leftover namespace from a fresh one).
  std::string output = shell("ip netns add " + srv + " && ip netns add " + cli + " && ip link add " + prefix +
                             "-c netns " + cli + " type veth peer name " + prefix + "-s netns " + srv +
                             " && ip -n " + cli + " addr add 10.213.0.77/24 dev " + prefix + "-c");
  ASSERT_TRUE(namespace_file(srv) && namespace_file(cli)) << output;

  auto lab = make_lab({.prefix = prefix});
  ASSERT_TRUE(lab);
  int bind_errno = 0;
  ASSERT_FALSE(lab->run_in_client([&] {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in stray = ipv4("10.213.0.77", 0);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&stray), sizeof stray) != 0) bind_errno = errno;
  }));
  EXPECT_EQ(bind_errno, EADDRNOTAVAIL) << "the leftover client namespace was kept";
  Listener listener = listen_in_server(*lab);
  ASSERT_TRUE(listener.fd.valid());
  Connection connection = connect_pair(*lab, listener);
  ASSERT_TRUE(connection.client.valid() && connection.server.valid());
  ASSERT_EQ(send_text(connection.client.get(), "fresh"), 5);
  EXPECT_EQ(read_bytes(connection.server.get(), 5, 5000), "fresh");

  lab.reset();
  EXPECT_FALSE(namespace_file(srv));
  EXPECT_FALSE(namespace_file(cli));
}

TEST_F(NetnsTest, CreateNamesTheFailingStepAndIpsMessageAndLeavesNothingBehind) {
  const std::string prefix = unique_prefix("e");
  // A directory where a namespace file should be: `ip netns del` cannot remove it.
  const std::string blocker = "/var/run/netns/" + prefix + "-srv";
  ::mkdir("/var/run/netns", 0755);  // ip makes it on first use; this may be the first
  ASSERT_EQ(::mkdir(blocker.c_str(), 0755), 0) << std::strerror(errno);
  std::string error;
  auto lab = NetnsLab::create({.prefix = prefix}, &error);
  ::rmdir(blocker.c_str());
  EXPECT_FALSE(lab);
  EXPECT_NE(error.find("remove leftover namespace " + prefix + "-srv"), std::string::npos) << error;
  EXPECT_NE(error.find("ip netns del " + prefix + "-srv"), std::string::npos) << error;
  EXPECT_NE(error.find("Is a directory"), std::string::npos) << error;  // ip's own stderr
  EXPECT_FALSE(namespace_file(prefix + "-cli"));
}

}  // namespace
