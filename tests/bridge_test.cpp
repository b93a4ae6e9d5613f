// The resilink command line end to end: `resilink server` and `resilink
// client` as separate processes, joined through a relay that stalls the link
// again and again. 1000 qos lines each way must arrive exactly once, in order.
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "support/child_process.h"
#include "resilink/lab/stall_relay.h"

using resilink::test::ChildProcess;
using resilink::lab::StallRelay;
using namespace std::chrono_literals;

namespace {

uint16_t read_port_file(const std::string& path) {
  for (int i = 0; i < 500; ++i) {
    std::ifstream in(path);
    int port = 0;
    if (in >> port && port > 0) return static_cast<uint16_t>(port);
    std::this_thread::sleep_for(10ms);
  }
  return 0;
}

std::string temp_path(const std::string& name) {
  return testing::TempDir() + "resilink_" + std::to_string(::getpid()) + "_" + name;
}

// Checks that `got` is exactly prefix0..prefix(n-1): reports the first problem.
std::string check_sequence(const std::vector<std::string>& got, const std::string& prefix, int n) {
  std::vector<int> seen(static_cast<size_t>(n), 0);
  int expect = 0;
  for (const auto& line : got) {
    if (line.rfind(prefix, 0) != 0) return "unexpected line '" + line + "'";
    int i = std::stoi(line.substr(prefix.size()));
    if (i < 0 || i >= n) return "out of range: " + line;
    if (seen[static_cast<size_t>(i)]++) return "duplicated: " + line;
    if (i != expect) return "reordered: got " + line + " expecting " + std::to_string(expect);
    ++expect;
  }
  if (expect != n) return "lost: only " + std::to_string(expect) + " of " + std::to_string(n);
  return "";
}

TEST(Bridge, ThousandQosLinesEachWayThroughRepeatedOutages) {
  constexpr int kLines = 1000;
  constexpr int kTimeoutMs = 250;
  std::string port_file = temp_path("port");
  std::string server_log = temp_path("server.log"), client_log = temp_path("client.log");
  ChildProcess server({RESILINK_BINARY, "server", "--address", "127.0.0.1", "--port", "0",
                       "--port-file", port_file, "--timeout-ms", std::to_string(kTimeoutMs)},
                      server_log);
  ASSERT_TRUE(server.running());
  uint16_t server_port = read_port_file(port_file);
  ASSERT_NE(server_port, 0) << "server did not report its port; see " << server_log;
  StallRelay relay(server_port);
  ChildProcess client({RESILINK_BINARY, "client", "--id", "c1", "--server", "127.0.0.1", "--port",
                       std::to_string(relay.port()), "--timeout-ms", std::to_string(kTimeoutMs)},
                      client_log);
  ASSERT_TRUE(client.running());

  std::vector<std::string> at_server, at_client;
  auto start = std::chrono::steady_clock::now();
  auto next_flip = start + 700ms;
  bool stalled = false;
  int cycle = 0, fed = 0;
  while ((at_server.size() < kLines || at_client.size() < kLines) &&
         std::chrono::steady_clock::now() - start < 120s) {
    server.read_lines(at_server, 5);
    client.read_lines(at_client, 5);
    auto now = std::chrono::steady_clock::now();
    // Feed 100 lines a second each way, so the traffic spans many outages.
    while (fed < kLines && now - start >= std::chrono::milliseconds(10 * fed)) {
      ASSERT_TRUE(server.write("c1\tS" + std::to_string(fed) + "\n"));
      ASSERT_TRUE(client.write("C" + std::to_string(fed) + "\n"));
      ++fed;
    }
    if (now >= next_flip) {
      stalled = !stalled;
      relay.set_stalled(stalled);
      // Outages of 2..4 timeouts; link up long enough to recover and move data.
      next_flip = now + (stalled ? std::chrono::milliseconds(2 * kTimeoutMs + (cycle++ % 3) * kTimeoutMs)
                                 : 1200ms);
    }
  }
  relay.set_stalled(false);

  std::vector<std::string> from_client;
  for (const auto& line : at_server) {
    ASSERT_EQ(line.rfind("c1\t", 0), 0u) << line;
    from_client.push_back(line.substr(3));
  }
  EXPECT_EQ(check_sequence(from_client, "C", kLines), "");
  EXPECT_EQ(check_sequence(at_client, "S", kLines), "");
  EXPECT_GE(relay.stalls(), 5) << "too few outages to prove anything";
  EXPECT_GE(relay.accepted(), 3) << "the client never had to reconnect";

  client.close_stdin();
  EXPECT_EQ(client.wait(30s), std::optional<int>(0)) << "client must exit 0 at EOF; see " << client_log;
  server.terminate();
  EXPECT_EQ(server.wait(10s), std::optional<int>(0));
  // Nothing more may arrive after the counts were reached (no late duplicates).
  server.read_lines(at_server, 50);
  client.read_lines(at_client, 50);
  EXPECT_EQ(at_server.size(), size_t{kLines});
  EXPECT_EQ(at_client.size(), size_t{kLines});
}

TEST(Bridge, ClientExitsZeroAfterDeliveringQueuedLinesAtEof) {
  std::string port_file = temp_path("port2");
  ChildProcess server({RESILINK_BINARY, "server", "--address", "127.0.0.1", "--port", "0",
                       "--port-file", port_file, "--timeout-ms", "300"});
  uint16_t port = read_port_file(port_file);
  ASSERT_NE(port, 0);
  ChildProcess client({RESILINK_BINARY, "client", "--id", "eof", "--port", std::to_string(port),
                       "--timeout-ms", "300"});
  ASSERT_TRUE(client.write("one\ntwo\nthree\n"));
  client.close_stdin();
  EXPECT_EQ(client.wait(20s), std::optional<int>(0));
  std::vector<std::string> lines;
  for (int i = 0; i < 100 && lines.size() < 3; ++i) server.read_lines(lines, 20);
  EXPECT_EQ(lines, (std::vector<std::string>{"eof\tone", "eof\ttwo", "eof\tthree"}));
}

TEST(Bridge, ServerReportsMalformedStdinLinesAndKeepsGoing) {
  std::string port_file = temp_path("port3");
  std::string log = temp_path("server3.log");
  ChildProcess server({RESILINK_BINARY, "server", "--address", "127.0.0.1", "--port", "0",
                       "--port-file", port_file, "--timeout-ms", "300", "--expect", "ok"},
                      log);
  uint16_t port = read_port_file(port_file);
  ASSERT_NE(port, 0);
  ASSERT_TRUE(server.write("no tab here\nstranger\tx\nok\t\nok\tgood\n"));
  ChildProcess client({RESILINK_BINARY, "client", "--id", "ok", "--port", std::to_string(port),
                       "--timeout-ms", "300"});
  std::vector<std::string> got;
  for (int i = 0; i < 200 && got.empty(); ++i) client.read_lines(got, 20);
  EXPECT_EQ(got, std::vector<std::string>{"good"});
  server.terminate();
  server.wait(5s);
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("stdin line 1: expected ID<TAB>payload"), std::string::npos) << text;
  EXPECT_NE(text.find("stdin line 2: unknown client id 'stranger'"), std::string::npos) << text;
  EXPECT_NE(text.find("stdin line 3: payload for 'ok' is 0 bytes"), std::string::npos) << text;
}

}  // namespace
