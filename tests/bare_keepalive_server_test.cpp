// The scale section's floor, `resilink bench-server --app bare`, on real
// loopback sockets: it must behave like a resilink server towards idle links
// (a keepalive every timeout/4, a silent link closed after the timeout), or
// the baseline it gives the CPU figure would measure less work than it should.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>
#include <thread>

#include "support/child_process.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kTimeoutMs = 200;

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads for `wait` and returns what came; sets `closed` at end of stream.
std::string read_for(int fd, std::chrono::milliseconds wait, bool& closed) {
  std::string got;
  auto end = Clock::now() + wait;
  while (!closed && Clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count());
    if (::poll(&p, 1, std::max(left, 0)) <= 0) break;
    char buffer[256];
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) closed = true;
    else got.append(buffer, static_cast<size_t>(n));
  }
  return got;
}

class BareKeepaliveServer : public testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<resilink::test::ChildProcess>(std::vector<std::string>{
        RESILINK_BINARY, "bench-server", "--app", "bare", "--timeout", std::to_string(kTimeoutMs)});
    std::vector<std::string> lines;
    for (int i = 0; i < 50 && lines.empty(); ++i) server_->read_lines(lines, 100);
    ASSERT_FALSE(lines.empty()) << "no port line";
    ASSERT_EQ(lines[0].rfind("port=", 0), 0u) << lines[0];
    port_ = static_cast<uint16_t>(std::stoul(lines[0].substr(5)));
  }

  std::string stats() {
    server_->write("stats\n");
    std::vector<std::string> lines;
    for (int i = 0; i < 50; ++i) {
      server_->read_lines(lines, 100);
      for (const auto& line : lines)
        if (line.rfind("stats ", 0) == 0) return line;
    }
    return "";
  }

  std::unique_ptr<resilink::test::ChildProcess> server_;
  uint16_t port_ = 0;
};

TEST_F(BareKeepaliveServer, SendsAKeepaliveEveryQuarterTimeoutToALiveLink) {
  int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, "client-1\n\n", 10, 0), 10);
  // Talk like an idle client for 1 s (a keepalive every 50 ms) and count the
  // server's: one at once, then one per 50 ms.
  std::string heard;
  bool closed = false;
  for (int i = 0; i < 20 && !closed; ++i) {
    heard += read_for(fd, 50ms, closed);
    ASSERT_EQ(::send(fd, "\n", 1, MSG_NOSIGNAL), 1);
  }
  EXPECT_FALSE(closed) << "a live link was closed";
  EXPECT_EQ(heard.find_first_not_of('\n'), std::string::npos) << "only keepalives: '" << heard << "'";
  EXPECT_GE(heard.size(), 15u) << "keepalives in 1 s at a 50 ms interval";
  EXPECT_LE(heard.size(), 22u);
  EXPECT_NE(stats().find("up=1 link_ups=1 link_downs=0 outages=0"), std::string::npos);
  ::close(fd);
}

TEST_F(BareKeepaliveServer, ClosesALinkSilentForTheTimeoutAndCountsAnOutage) {
  int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, "client-2\n\n", 10, 0), 10);
  auto sent_at = Clock::now();
  bool closed = false;
  read_for(fd, 2000ms, closed);  // we say nothing more
  auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent_at).count();
  ASSERT_TRUE(closed) << "a link silent for 2 s (timeout " << kTimeoutMs << " ms) is still open";
  EXPECT_GE(silent, kTimeoutMs);
  EXPECT_LE(silent, kTimeoutMs + kTimeoutMs / 4 + 500);  // checked at keepalive times; scheduling margin
  EXPECT_NE(stats().find("up=0 link_ups=1 link_downs=1 outages=1"), std::string::npos) << stats();
  ::close(fd);
}

TEST_F(BareKeepaliveServer, APeerThatClosesIsALinkDownNotAnOutage) {
  int fd = connect_to(port_);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, "client-3\n\n", 10, 0), 10);
  bool closed = false;
  read_for(fd, 100ms, closed);
  ::close(fd);
  std::string line;
  for (int i = 0; i < 20; ++i) {
    line = stats();
    if (line.find("link_downs=1") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_NE(line.find("connections=0 up=0 link_ups=1 link_downs=1 outages=0"), std::string::npos) << line;
}

}  // namespace
