// Every fault the chaos proxy makes, against the real link: a resilink::Server
// on its own io thread and a resilink::Client driven by the test thread,
// joined through a ChaosProxy, exchanging numbered qos messages both ways
// (one each 10 ms each way) while the fault comes and goes. Each test
// asserts what the link must do under its fault, then that every message
// arrived exactly once and in order.
//
// Both ends open with a "hello" and wait for its ACK before any fault: a
// first message (mid 0) whose ACK dies with its connection is delivered
// twice by design (docs/PROTOCOL.md §6a), and is not what these tests probe.
//
// Timing, on a loaded 2-core machine (maybe under ASan): an outage must be
// declared within T + T/4 of the fault starting (README); kMargin adds 150 ms
// for thread scheduling and timer lateness, which stays below 2T, so a late
// detection (a second timeout) still fails. Waits for something to happen
// allow seconds.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "resilink/client/client.h"
#include "resilink/lab/chaos_proxy.h"
#include "support/chaos_harness.h"
#include "support/log_capture.h"
#include "support/server_harness.h"

namespace resilink {
namespace {

using namespace std::chrono_literals;
using test::ChaosHarness;
using test::Clock;
using test::kTimeout;  // T = 250 ms, the server harness's timeout
using test::ms_between;
using test::TestServer;
using core::OutageReason;
using lab::Stream;

constexpr double kT = kTimeout;
constexpr double kMargin = 150;  // scheduling margin, ms (see the top of the file)
constexpr auto kFeedEvery = 10ms;
const std::string kId = "dev";

struct StatusChange {
  bool up;
  Clock::time_point at;
};

// What the server side of the test does and sees, shared with its coroutines
// on the server's io thread.
struct ServerSide {
  std::mutex mutex;
  std::vector<std::string> received;
  std::vector<StatusChange> changes;
  std::string error;
  std::atomic<int> quota{0};     // messages s0..s(quota-1) may be written
  std::atomic<int> started{0};   // writes begun
  std::atomic<int> acked{0};     // writes completed (acknowledged)
  std::atomic<bool> hello_acked{false};
  bool draining = false;  // under mutex: no new writes
};

asio::awaitable<void> server_reader(Server& server, std::shared_ptr<ServerSide> side) {
  Connection& conn = server.connection(kId);
  try {
    for (;;) {
      std::string line = co_await conn.readline();
      std::lock_guard lock(side->mutex);
      side->received.push_back(std::move(line));
    }
  } catch (const std::system_error&) {
    // the server closed
  }
}

// Writes "hello", then s0, s1, ... as the quota allows, each qos with wait:
// exactly once, in order.
asio::awaitable<void> server_writer(Server& server, std::shared_ptr<ServerSide> side) {
  Connection& conn = server.connection(kId);
  std::error_code ec = co_await conn.write("hello");
  side->hello_acked = !ec;
  asio::steady_timer pause(co_await asio::this_coro::executor);
  while (!server.closed() && !ec) {
    int n = -1;
    {
      std::lock_guard lock(side->mutex);
      if (!side->draining && side->started < side->quota) n = side->started++;
    }
    if (n >= 0) {
      ec = co_await conn.write("s" + std::to_string(n));
      if (!ec) side->acked = n + 1;
    } else {
      pause.expires_after(5ms);
      co_await pause.async_wait(kUseTuple);
    }
  }
  if (ec && !server.closed()) {
    std::lock_guard lock(side->mutex);
    side->error = ec.message();
  }
}

// "" if `got` is exactly hello, <prefix>0, <prefix>1, ..., <prefix>(n-1);
// otherwise the first problem.
std::string check_sequence(const std::vector<std::string>& got, const std::string& prefix, int n) {
  if (got.empty() || got[0] != "hello") return "the first message is not hello";
  for (size_t i = 1; i < got.size(); ++i) {
    std::string expected = prefix + std::to_string(i - 1);
    if (got[i] != expected) {
      bool duplicate = std::find(got.begin() + 1, got.begin() + static_cast<std::ptrdiff_t>(i), got[i]) !=
                       got.begin() + static_cast<std::ptrdiff_t>(i);
      return std::string(duplicate ? "duplicated" : "lost or reordered") + ": message " + std::to_string(i) +
             " is '" + got[i] + "', expected '" + expected + "'";
    }
  }
  if (static_cast<int>(got.size()) != n + 1)
    return "lost: " + std::to_string(got.size() - 1) + " of " + std::to_string(n) + " arrived";
  return "";
}

class LinkRig {
 public:
  explicit LinkRig(uint32_t hold_off_ms = 0)
      : chaos_(server_.port(), /*seed=*/11), client_log_("client", /*echo=*/false) {
    server_.call([side = side_](Server& s) {
      s.on_status([side](Connection&, bool up) {
        std::lock_guard lock(side->mutex);
        side->changes.push_back({up, Clock::now()});
      });
    });
    server_.spawn([side = side_](Server& s) { return server_reader(s, side); });
    server_.spawn([side = side_](Server& s) { return server_writer(s, side); });

    ClientOptions o;
    o.id = kId;
    o.host = "127.0.0.1";
    o.port = chaos_.port();
    o.timeout_ms = kTimeout;
    o.random_seed = 7;
    o.hold_off_ms = hold_off_ms;
    o.logger = client_log_.logger();
    o.on_status = [this](bool up) { client_changes_.push_back({up, Clock::now()}); };
    client_ = std::make_unique<Client>(o);
  }

  ~LinkRig() {
    client_.reset();
    if (::testing::Test::HasFailure()) std::fprintf(stderr, "---- client log ----\n%s", client_log_.text().c_str());
  }

  TestServer& server() { return server_; }
  ChaosHarness& chaos() { return chaos_; }
  Client& client() { return *client_; }
  const std::vector<StatusChange>& client_changes() const { return client_changes_; }
  std::vector<StatusChange> server_changes() {
    std::lock_guard lock(side_->mutex);
    return side_->changes;
  }
  size_t server_received() {
    std::lock_guard lock(side_->mutex);
    return side_->received.size();
  }

  // Connects, exchanges the hellos, then runs traffic for a while.
  ::testing::AssertionResult start() {
    if (client_->start() != core::Error::ok) return ::testing::AssertionFailure() << "client start failed";
    if (client_->write("hello", {}, 5s)) return ::testing::AssertionFailure() << "client hello not acked";
    if (!drive_until([&] { return side_->hello_acked.load(); }, 5s))
      return ::testing::AssertionFailure() << "server hello not acked";
    feeding_ = true;
    drive_for(300ms);
    return ::testing::AssertionSuccess();
  }

  // Runs the client (and the traffic) until pred() holds or `limit` passes.
  bool drive_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
    auto deadline = Clock::now() + limit;
    for (;;) {
      if (pred()) return true;
      if (Clock::now() >= deadline) return false;
      client_->run_once(5);
      pump();
    }
  }
  void drive_for(std::chrono::milliseconds duration) {
    drive_until([] { return false; }, duration);
  }

  // A proxy command that must succeed.
  void command(const std::string& line) {
    std::string reply = chaos_.execute(line);
    ASSERT_EQ(reply.rfind("ok", 0), 0u) << line << ": " << reply;
  }
  // Adds a toxic; returns when it started (its event's time).
  Clock::time_point start_fault(const std::string& spec) {
    size_t before = chaos_.events().size();
    command("add " + spec);
    auto events = chaos_.events();
    EXPECT_GT(events.size(), before);
    return events.empty() ? Clock::now() : events.back().at;
  }

  // When each end first declared the link down after `since`.
  std::optional<Clock::time_point> client_down_after(Clock::time_point since) {
    for (const auto& c : client_changes_)
      if (!c.up && c.at >= since) return c.at;
    return std::nullopt;
  }
  std::optional<Clock::time_point> server_down_after(Clock::time_point since) {
    for (const auto& c : server_changes())
      if (!c.up && c.at >= since) return c.at;
    return std::nullopt;
  }
  bool both_down_after(Clock::time_point since) {
    return client_down_after(since).has_value() && server_down_after(since).has_value();
  }

  // Both ends up on a connection the proxy accepted after `accepted_before`
  // connections, and still up 20 ms later (not a connection about to die).
  bool recovered_after(uint64_t accepted_before) {
    auto up = [&] { return client_->status() && server_.up(kId); };
    if (chaos_.stats().accepted <= accepted_before || !up()) return false;
    drive_for(20ms);
    return up();
  }

  // Stops new messages, lets everything in flight arrive, and checks that
  // each message arrived exactly once and in order, both ways.
  void finish() {
    feeding_ = false;
    {
      std::lock_guard lock(side_->mutex);
      side_->draining = true;
    }
    int server_total = 0;
    bool settled = drive_until(
        [&] {
          server_total = side_->started;
          std::lock_guard lock(side_->mutex);
          return side_->acked == server_total && static_cast<int>(at_client_.size()) == server_total + 1 &&
                 static_cast<int>(side_->received.size()) == client_sent_ + 1 && client_->stats().messages_acked ==
                 static_cast<uint32_t>(client_sent_ + 1);
        },
        15s);
    EXPECT_TRUE(settled) << "traffic did not settle: client sent " << client_sent_ << ", server got "
                         << server_received() << "; server wrote " << side_->started << ", client got "
                         << at_client_.size() - 1;
    drive_for(100ms);  // late duplicates would show now
    std::lock_guard lock(side_->mutex);
    EXPECT_EQ(check_sequence(side_->received, "c", client_sent_), "") << "client -> server";
    EXPECT_EQ(check_sequence(at_client_, "s", server_total), "") << "server -> client";
    EXPECT_EQ(side_->error, "");
    EXPECT_GT(client_sent_, 20) << "too little traffic to prove anything";
    EXPECT_GT(server_total, 10) << "too little traffic to prove anything";
  }

 private:
  void pump() {
    while (auto line = client_->try_readline()) at_client_.push_back(std::move(*line));
    if (!feeding_) return;
    auto now = Clock::now();
    if (now < next_feed_) return;
    next_feed_ = now + kFeedEvery;
    ++side_->quota;
    // qos without waiting: queued in order; would_block (window full during
    // an outage) just means this tick sends nothing.
    if (client_->try_write("c" + std::to_string(client_sent_), true) == core::Error::ok) ++client_sent_;
  }

  TestServer server_;
  ChaosHarness chaos_;
  test::LogCapture client_log_;
  std::shared_ptr<ServerSide> side_ = std::make_shared<ServerSide>();
  std::unique_ptr<Client> client_;
  std::vector<StatusChange> client_changes_;
  std::vector<std::string> at_client_;
  int client_sent_ = 0;
  bool feeding_ = false;
  Clock::time_point next_feed_{};
};

// Declared within T + T/4 (+ margin) of the fault starting, for `why`.
void expect_detected(std::optional<Clock::time_point> down, Clock::time_point fault, const char* end) {
  ASSERT_TRUE(down.has_value()) << end << " never declared the outage";
  double after = ms_between(fault, *down);
  EXPECT_LE(after, kT + kT / 4 + kMargin) << end << " declared the outage " << after << " ms after the fault";
}

// ---------------------------------------------------------------- outages

TEST(ChaosLink, OutageBothEndsDetectWithinTimeoutAndRecover) {
  LinkRig rig;
  ASSERT_TRUE(rig.start());
  uint32_t server_connects = rig.server().stats(kId).connects;
  uint64_t accepted = rig.chaos().stats().accepted;
  auto fault = rig.start_fault("outage");
  ASSERT_TRUE(rig.drive_until([&] { return rig.both_down_after(fault); }, 3s));
  expect_detected(rig.client_down_after(fault), fault, "client");
  expect_detected(rig.server_down_after(fault), fault, "server");
  EXPECT_EQ(rig.client().stats().last_outage, OutageReason::read_timeout);
  EXPECT_EQ(rig.server().stats(kId).last_outage, OutageReason::read_timeout);

  // The client reconnects after its hold-off; during the outage that
  // connection hangs: the proxy accepts it but the server never sees it.
  ASSERT_TRUE(rig.drive_until([&] { return rig.chaos().stats().accepted > accepted; }, 3s));
  rig.drive_for(100ms);
  EXPECT_EQ(rig.server().stats(kId).connects, server_connects) << "a connection reached the server in the outage";

  auto ended = Clock::now();
  rig.command("remove outage");
  ASSERT_TRUE(rig.drive_until([&] { return rig.recovered_after(accepted); }, 5s)) << "no recovery";
  // Worst case: the held attempt just timed out (2T), then a hold-off (2T).
  EXPECT_LE(ms_between(ended, Clock::now()), 5 * kT + 1000);
  rig.drive_for(300ms);
  rig.finish();
}

// A long outage: the client's reconnect attempts hang in the proxy, time out
// and are abandoned; when the outage ends the proxy connects them all
// upstream, the abandoned ones with the id line their client sent before
// giving up, followed by its close (stale packets that arrive late). The
// link must still come back and lose nothing.
TEST(ChaosLink, LongOutageWithAbandonedReconnectsRecovers) {
  LinkRig rig;
  ASSERT_TRUE(rig.start());
  uint64_t accepted = rig.chaos().stats().accepted;
  auto fault = rig.start_fault("outage");
  ASSERT_TRUE(rig.drive_until([&] { return rig.chaos().stats().accepted >= accepted + 3; }, 6s));
  auto ended = Clock::now();
  rig.command("remove outage");
  // The last held attempt may well be the one that comes up.
  ASSERT_TRUE(rig.drive_until([&] { return rig.recovered_after(accepted); }, 5s)) << "no recovery";
  double recovery = ms_between(ended, Clock::now());
  EXPECT_LE(recovery, 5 * kT + 1000);
  rig.drive_for(1000ms);
  EXPECT_TRUE(rig.client().status() && rig.server().up(kId)) << "the link fell again after recovering";
  EXPECT_LE(ms_between(fault, ended), 6000.0);
  rig.finish();
}

TEST(ChaosLink, HalfOpenUpstreamServerTimesOutClientSeesItsClose) {
  LinkRig rig;
  ASSERT_TRUE(rig.start());
  uint64_t accepted = rig.chaos().stats().accepted;
  auto fault = rig.start_fault("half_open stream=upstream");
  ASSERT_TRUE(rig.drive_until([&] { return rig.both_down_after(fault); }, 3s));
  expect_detected(rig.server_down_after(fault), fault, "server");
  expect_detected(rig.client_down_after(fault), fault, "client");
  // The server hears nothing; its close comes down the live direction.
  EXPECT_EQ(rig.server().stats(kId).last_outage, OutageReason::read_timeout);
  EXPECT_EQ(rig.client().stats().last_outage, OutageReason::peer_closed);
  rig.drive_for(100ms);
  rig.command("remove half_open");
  ASSERT_TRUE(rig.drive_until([&] { return rig.recovered_after(accepted); }, 5s)) << "no recovery";
  rig.drive_for(300ms);
  rig.finish();
}

TEST(ChaosLink, HalfOpenDownstreamClientTimesOutServerSeesItsClose) {
  LinkRig rig;
  ASSERT_TRUE(rig.start());
  uint64_t accepted = rig.chaos().stats().accepted;
  auto fault = rig.start_fault("half_open stream=downstream");
  ASSERT_TRUE(rig.drive_until([&] { return rig.both_down_after(fault); }, 3s));
  expect_detected(rig.client_down_after(fault), fault, "client");
  expect_detected(rig.server_down_after(fault), fault, "server");
  EXPECT_EQ(rig.client().stats().last_outage, OutageReason::read_timeout);
  EXPECT_EQ(rig.server().stats(kId).last_outage, OutageReason::peer_closed);
  rig.drive_for(100ms);
  rig.command("remove half_open");
  ASSERT_TRUE(rig.drive_until([&] { return rig.recovered_after(accepted); }, 5s)) << "no recovery";
  rig.drive_for(300ms);
  rig.finish();
}

// ---------------------------------------------------------------- closes

TEST(ChaosLink, ResetPeerBothEndsSeeItAtOnceAndRecover) {
  LinkRig rig;
  ASSERT_TRUE(rig.start());
  uint64_t accepted = rig.chaos().stats().accepted;
  auto fault = rig.start_fault("reset_peer");
  ASSERT_TRUE(rig.drive_until([&] { return rig.both_down_after(fault); }, 3s));
  rig.command("remove reset_peer");
  // Not a timeout: reacting to the RST takes scheduling time only, so half of
  // T is a wide margin and still far below what a timeout would take.
  for (auto [down, end] : {std::pair{rig.client_down_after(fault), "client"},
                           std::pair{rig.server_down_after(fault), "server"}}) {
    ASSERT_TRUE(down.has_value());
    EXPECT_LT(ms_between(fault, *down), kT / 2) << end;
  }
  // Both ends name the RST for what it is, whether a read or a write found it.
  EXPECT_EQ(rig.client().stats().last_outage, OutageReason::peer_closed);
  EXPECT_EQ(rig.server().stats(kId).last_outage, OutageReason::peer_closed);
  ASSERT_TRUE(rig.drive_until([&] { return rig.recovered_after(accepted); }, 5s)) << "no recovery";
  rig.drive_for(300ms);
  rig.finish();
}

// The client gives up on a link (here: it hears nothing), but its FIN is held
// back 4T by slow_close: the server must not wait for it, its own timeout
// must fire within T + T/4 of the last byte it heard, which was before the
// client's close.
TEST(ChaosLink, SlowCloseServerDoesNotWaitForTheDelayedClose) {
  LinkRig rig;
  ASSERT_TRUE(rig.start());
  uint64_t accepted = rig.chaos().stats().accepted;
  rig.command("add slow_close delay=1s");
  auto fault = rig.start_fault("half_open stream=downstream name=deaf");
  ASSERT_TRUE(rig.drive_until([&] { return rig.client_down_after(fault).has_value(); }, 3s));
  auto client_down = *rig.client_down_after(fault);
  rig.command("remove deaf");
  ASSERT_TRUE(rig.drive_until([&] { return rig.server_down_after(fault).has_value(); }, 3s));
  expect_detected(rig.server_down_after(fault), client_down, "server");
  EXPECT_EQ(rig.server().stats(kId).last_outage, OutageReason::read_timeout) << "it waited for the FIN";
  ASSERT_TRUE(rig.drive_until([&] { return rig.recovered_after(accepted); }, 5s)) << "no recovery";
  rig.command("remove slow_close");
  rig.drive_for(300ms);
  rig.finish();
}

// Cuts a fresh connection after exactly n bytes, for every n from 0 to 40,
// in one stream: through the id line, the first keepalive, the ACKs and the
// first messages. The link must recover each time and lose or duplicate
// nothing. A short hold-off keeps this quick: every cut is a FIN, which both
// ends see at once.
void cut_at_every_offset(Stream stream) {
  LinkRig rig(/*hold_off_ms=*/50);
  ASSERT_TRUE(rig.start());
  for (int n = 0; n <= 40; ++n) {
    SCOPED_TRACE("cut after " + std::to_string(n) + " bytes " + lab::to_string(stream));
    // Kick the current connection so the next one is fresh, then arm the cut
    // (the client cannot reconnect in between: the test thread drives it).
    rig.command("add reset_peer name=kick");
    rig.command("remove kick");
    uint64_t cuts = rig.chaos().stats().limit_closes;
    rig.command("add limit_data name=cut stream=" + std::string(lab::to_string(stream)) +
                " bytes=" + std::to_string(n));
    ASSERT_TRUE(rig.drive_until([&] { return rig.chaos().stats().limit_closes > cuts; }, 5s)) << "no cut";
    rig.command("remove cut");
    uint64_t accepted = rig.chaos().stats().accepted;
    ASSERT_TRUE(rig.drive_until([&] { return rig.recovered_after(accepted); }, 5s)) << "no recovery";
  }
  rig.drive_for(300ms);
  rig.finish();
}

TEST(ChaosLink, LimitDataUpstreamAtEveryOffsetRecoversLosingNothing) { cut_at_every_offset(Stream::upstream); }

TEST(ChaosLink, LimitDataDownstreamAtEveryOffsetRecoversLosingNothing) {
  cut_at_every_offset(Stream::downstream);
}

// ---------------------------------------------------------------- degraded but alive

// A toxic that slows or splits traffic without stopping it: no outage may be
// declared at either end, and everything arrives intact. It is active from
// before the client connects, so the handshake (the id line) goes through it.
void survives(const std::string& toxic) {
  LinkRig rig;
  rig.command("add " + toxic);
  ASSERT_TRUE(rig.start());
  rig.drive_for(1500ms);
  rig.command("clear");
  rig.drive_for(200ms);
  EXPECT_EQ(rig.client().stats().outages, 0u) << core::outage_reason_name(rig.client().stats().last_outage);
  EXPECT_EQ(rig.server().stats(kId).outages, 0u)
      << core::outage_reason_name(rig.server().stats(kId).last_outage);
  EXPECT_EQ(rig.client().reconnects(), 0u);
  EXPECT_EQ(rig.chaos().stats().accepted, 1u);
  rig.finish();
}

TEST(ChaosLink, SlicerNoOutageEverythingIntact) { survives("slicer average_size=3 size_variation=2 delay=500us"); }

// Below T/4 each way: the gaps a keepalive can see stay far below T.
TEST(ChaosLink, LatencyBelowQuarterTimeoutNoOutage) { survives("latency latency=40ms jitter=15ms"); }

// About twice what the traffic needs (~1.1 KB/s each way).
TEST(ChaosLink, BandwidthAboveTheTrafficNoOutage) { survives("bandwidth rate=2KB"); }

}  // namespace
}  // namespace resilink
