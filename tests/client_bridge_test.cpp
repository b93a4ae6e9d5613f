// The `resilink client` stdio bridge over loopback, against LoopbackPeer. The
// bridge runs in a thread with pipes (or a file) standing in for stdin/stdout.
#include "client_bridge.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "support/log_capture.h"
#include "support/loopback_peer.h"
#include "resilink/client/client.h"

namespace resilink {
namespace {

using namespace std::chrono_literals;
using test::LogCapture;
using test_peer::LoopbackPeer;

constexpr uint32_t kTimeout = 300;


// run_client_bridge in a thread, stdin and stdout on pipes.
class Bridge {
 public:
  Bridge(const LoopbackPeer& peer, LogCapture& log, int input_fd = -1) {
    if (input_fd < 0) {
      EXPECT_EQ(::pipe(in_), 0);
      input_fd = in_[0];
    }
    EXPECT_EQ(::pipe(out_), 0);
    ClientBridgeOptions options;
    options.id = "bridge-1";
    options.host = "127.0.0.1";
    options.port = peer.port();
    options.timeout_ms = kTimeout;
    options.input_fd = input_fd;
    options.output_fd = out_[1];
    options.logger = log.logger();
    thread_ = std::thread([this, options] {
      exit_code_ = run_client_bridge(options);
      done_ = true;
    });
  }
  ~Bridge() {
    close_stdin();
    thread_.join();
    for (int fd : {in_[0], out_[0], out_[1]})
      if (fd >= 0) ::close(fd);
  }

  void type(const std::string& text) {
    ASSERT_EQ(::write(in_[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }
  void close_stdin() {
    if (in_[1] >= 0) ::close(in_[1]);
    in_[1] = -1;
  }
  size_t stdin_unread() const {
    int n = 0;
    ::ioctl(in_[0], FIONREAD, &n);
    return static_cast<size_t>(n);
  }
  // The exit code, or -1 if it is still running after `timeout`.
  int wait(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!done_ && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(5ms);
    return done_ ? exit_code_.load() : -1;
  }
  // What the bridge wrote to stdout so far (call once it has exited).
  std::string stdout_text() {
    std::string text;
    ::fcntl(out_[0], F_SETFL, O_NONBLOCK);
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(out_[0], buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<size_t>(n));
    return text;
  }

 private:
  int in_[2] = {-1, -1};
  int out_[2] = {-1, -1};
  std::atomic<int> exit_code_{-1};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

std::vector<std::string> numbered_lines(int count) {
  std::vector<std::string> lines;
  char text[32];
  for (int i = 1; i <= count; ++i) {
    std::snprintf(text, sizeof text, "line-%04d", i);
    lines.emplace_back(text);
  }
  return lines;
}

TEST(ClientBridge, SendsStdinLinesPrintsServerMessagesAndExitsAfterTheLastAck) {
  LoopbackPeer peer(kTimeout);
  LogCapture log;
  peer.send("to stdout 1");
  peer.send("to stdout 2");
  Bridge bridge(peer, log);
  std::string too_long(Client::kMaxPayload + 1, 'x');
  bridge.type("one\n\ntwo\n" + too_long + "\nthr");
  ASSERT_TRUE(wait_for([&] { return peer.all_acked() && peer.received().size() == 2; }, 5s));
  bridge.type("ee");  // the last line has no '\n'
  bridge.close_stdin();
  ASSERT_EQ(bridge.wait(5s), 0);
  EXPECT_EQ(peer.received(), (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(bridge.stdout_text(), "to stdout 1\nto stdout 2\n");
  EXPECT_TRUE(log.contains("stdin line 2 is empty"));
  EXPECT_TRUE(log.contains("stdin line 4: " + std::to_string(too_long.size()) +
                           " bytes is longer than the longest message"));
}

TEST(ClientBridge, DeliversEveryLineOnceInOrderThroughOutages) {
  LoopbackPeer peer(kTimeout);
  LogCapture log;
  // Three outages, each right after a line arrives and before its ACK leaves:
  // the bridge must resend that line, and the server must not deliver it twice.
  peer.drop_when_received({50, 120, 200});
  Bridge bridge(peer, log);
  std::vector<std::string> lines = numbered_lines(300);
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  bridge.type(text);
  bridge.close_stdin();  // EOF now: the bridge must still deliver everything
  ASSERT_EQ(bridge.wait(10s), 0);
  EXPECT_EQ(peer.received(), lines);
  EXPECT_EQ(peer.connections(), 4u);
  EXPECT_TRUE(log.contains("reconnect 3"));
}

TEST(ClientBridge, StopsReadingStdinWhileItsQueueIsFull) {
  LoopbackPeer peer(kTimeout, /*listen_now=*/false);
  LogCapture log;
  Bridge bridge(peer, log);
  std::vector<std::string> lines = numbered_lines(2000);  // 20000 bytes
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  bridge.type(text);
  std::this_thread::sleep_for(300ms);
  // It took at most its line queue and one read buffer: the rest waits in the pipe.
  EXPECT_GE(bridge.stdin_unread(), text.size() - 4096 - 10 * kBridgeMaxQueuedLines);
  peer.listen();
  bridge.close_stdin();
  ASSERT_EQ(bridge.wait(20s), 0);
  EXPECT_EQ(peer.received(), lines);
}

TEST(ClientBridge, ReadsARegularFileAsStdin) {
  LoopbackPeer peer(kTimeout);
  LogCapture log;
  char path[] = "/tmp/resilink_bridge_stdin_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  std::string text = "alpha\nbeta\ngamma\n";
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::lseek(fd, 0, SEEK_SET);
  {
    Bridge bridge(peer, log, fd);
    ASSERT_EQ(bridge.wait(5s), 0);
  }
  ::close(fd);
  EXPECT_EQ(peer.received(), (std::vector<std::string>{"alpha", "beta", "gamma"}));
}

TEST(ClientBridge, RefusesABadIdWithExitCode2) {
  LogCapture log;
  ClientBridgeOptions options;
  options.id = "two words";
  options.host = "127.0.0.1";
  options.port = 9;
  options.logger = log.logger();
  EXPECT_EQ(run_client_bridge(options), 2);
  EXPECT_TRUE(log.contains("invalid client id 'two words'"));
}

}  // namespace
}  // namespace resilink
