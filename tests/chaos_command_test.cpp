// `resilink chaos` (apps/chaos_command.cpp) as a user runs it: bad arguments,
// fault events on stdout, control commands on stdin, life after stdin ends.
#include <gtest/gtest.h>

#include <fstream>

#include "support/chaos_harness.h"
#include "support/child_process.h"

namespace resilink::lab {
namespace {

using namespace std::chrono_literals;
using test::TcpListener;
using test::TcpSocket;

bool starts_with(const std::string& text, std::string_view prefix) { return text.rfind(prefix, 0) == 0; }

std::string temp_path(const std::string& name) {
  return testing::TempDir() + "resilink_chaos_" + std::to_string(::getpid()) + "_" + name;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(ChaosCommand, BadArgumentsExitTwoNamingTheProblem) {
  const std::pair<std::vector<std::string>, const char*> cases[] = {
      {{"chaos"}, "--upstream HOST:PORT is required"},
      {{"chaos", "--upstream", "127.0.0.1"}, "--upstream '127.0.0.1': expected HOST:PORT"},
      {{"chaos", "--upstream", "127.0.0.1:99999"}, "--upstream port '99999'"},
      {{"chaos", "--upstream", "127.0.0.1:9", "--toxic", "blackhole"},
       "--toxic 'blackhole': unknown toxic type 'blackhole'"},
      {{"chaos", "--upstream", "127.0.0.1:9", "--toxic", "latency jitter=abc"},
       "--toxic 'latency jitter=abc': latency: bad value 'abc' for 'jitter'"},
      {{"chaos", "--upstream", "127.0.0.1:9", "--outage", "every=5s"},
       "--outage 'every=5s': outage: a schedule needs for="},
      {{"chaos", "--upstream", "127.0.0.1:9", "--seed", "many"}, "--seed 'many'"},
      {{"chaos", "--upstream", "127.0.0.1:9", "--toxic", "outage", "--toxic", "outage"},
       "a toxic named 'outage' is already active"},
  };
  int i = 0;
  for (const auto& [args, expected] : cases) {
    std::string err = temp_path("bad" + std::to_string(i++));
    std::vector<std::string> argv{RESILINK_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    test::ChildProcess child(argv, err);
    EXPECT_EQ(child.wait(10s), std::optional<int>(2)) << args.back();
    std::string text = read_file(err);
    EXPECT_NE(text.find(expected), std::string::npos) << "expected '" << expected << "' in: " << text;
  }
}

TEST(ChaosCommand, PrintsEventsTakesStdinCommandsAndOutlivesStdin) {
  TcpListener listener;
  std::string port_file = temp_path("port"), log = temp_path("log");
  test::ChildProcess chaos({RESILINK_BINARY, "chaos", "--upstream", "127.0.0.1:" + std::to_string(listener.port()),
                            "--port-file", port_file, "--toxic", "latency latency=1ms name=tiny"},
                           log);
  ASSERT_TRUE(chaos.running());
  uint16_t port = 0;
  for (int i = 0; i < 500 && port == 0; ++i) {
    std::ifstream in(port_file);
    int value = 0;
    if (in >> value) port = static_cast<uint16_t>(value);
    else std::this_thread::sleep_for(10ms);
  }
  ASSERT_NE(port, 0) << read_file(log);

  std::vector<std::string> lines;
  auto read_until = [&](size_t count) {
    for (int i = 0; i < 300 && lines.size() < count; ++i) chaos.read_lines(lines, 10);
    return lines.size() >= count;
  };
  ASSERT_TRUE(read_until(1)) << read_file(log);
  EXPECT_NE(lines[0].find(" start tiny latency both"), std::string::npos) << lines[0];

  ASSERT_TRUE(chaos.write("add outage name=cut\nstats\nremove cut\n"));
  ASSERT_TRUE(read_until(6)) << read_file(log);
  EXPECT_NE(lines[1].find(" start cut outage both"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2], "ok added cut: outage name=cut stream=both");
  EXPECT_TRUE(starts_with(lines[3], "ok accepted=0 active=0")) << lines[3];
  EXPECT_NE(lines[4].find(" end cut outage both"), std::string::npos) << lines[4];
  EXPECT_EQ(lines[5], "ok removed cut");

  chaos.close_stdin();
  std::this_thread::sleep_for(100ms);
  TcpSocket client = TcpSocket::connect(port);
  TcpSocket server = listener.accept(3s);
  ASSERT_TRUE(server.valid()) << "still proxying after stdin closed";
  client.send("through");
  EXPECT_EQ(server.read_exactly(7, 3s), "through");

  chaos.terminate();
  EXPECT_EQ(chaos.wait(10s), std::optional<int>(0)) << read_file(log);
}

}  // namespace
}  // namespace resilink::lab
