// The scale section's floor, `resilink bench-server --app bare`, on real
// loopback sockets: it must behave like a resilink server towards idle links
// (a keepalive every timeout/4, a silent link closed after the timeout), or
// the baseline it gives the CPU figure would measure less work than it should.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/server_harness.h"

namespace {

using resilink::test::kTimeout;
using resilink::test::RawClient;
using namespace std::chrono_literals;

class BareKeepaliveServer : public testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<resilink::test::ChildProcess>(std::vector<std::string>{
        RESILINK_BINARY, "bench-server", "--app", "bare", "--timeout", std::to_string(kTimeout)});
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
  RawClient client(port_);
  ASSERT_TRUE(client.send("client-1\n\n"));
  client.start_keepalive();  // an idle client's keepalives, a little under T/4
  // Count the server's lines for 1 s: one at once, then one per T/4.
  size_t keepalives = 0;
  auto end = std::chrono::steady_clock::now() + 1s;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left <= 0ms) break;
    RawClient::Read r = client.read_line(left);
    ASSERT_NE(r.status, RawClient::Status::closed) << "a live link was closed";
    if (r.status == RawClient::Status::timeout) break;
    EXPECT_EQ(r.line, "") << "only keepalives";
    ++keepalives;
  }
  const size_t expected = 1 + 1000 / (kTimeout / 4);  // 17 at T = 250 ms
  EXPECT_GE(keepalives, expected - 3) << "keepalives in 1 s at a " << kTimeout / 4 << " ms interval";
  EXPECT_LE(keepalives, expected + 2);
  EXPECT_NE(stats().find("up=1 link_ups=1 link_downs=0 outages=0"), std::string::npos);
}

TEST_F(BareKeepaliveServer, ClosesALinkSilentForTheTimeoutAndCountsAnOutage) {
  RawClient client(port_);
  ASSERT_TRUE(client.send("client-2\n\n"));
  uint64_t sent_at = client.last_send_ms();
  ASSERT_TRUE(client.wait_closed(2s)) << "a link silent for 2 s (timeout " << kTimeout << " ms) is still open";
  uint64_t silent = client.closed_at() - sent_at;
  EXPECT_GE(silent, kTimeout);
  EXPECT_LE(silent, kTimeout + kTimeout / 4 + 500);  // checked at keepalive times; scheduling margin
  std::string line = stats();
  EXPECT_NE(line.find("up=0 link_ups=1 link_downs=1 outages=1"), std::string::npos) << line;
}

TEST_F(BareKeepaliveServer, APeerThatClosesIsALinkDownNotAnOutage) {
  {
    RawClient client(port_);
    ASSERT_TRUE(client.send("client-3\n\n"));
    ASSERT_EQ(client.read_line(1s).status, RawClient::Status::line);
  }  // closed here
  std::string line;
  for (int i = 0; i < 20; ++i) {
    line = stats();
    if (line.find("link_downs=1") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_NE(line.find("connections=0 up=0 link_ups=1 link_downs=1 outages=0"), std::string::npos) << line;
}

}  // namespace
