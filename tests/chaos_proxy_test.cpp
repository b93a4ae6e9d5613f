// The chaos proxy (lab/chaos_proxy.h) over raw loopback sockets: each toxic
// against a plain TCP client and server, seeded schedules, the control
// protocol. The parsers are in toxic_test.cpp, the pipes in
// toxic_pipe_test.cpp, the command line in chaos_command_test.cpp.
//
// Timing: the machine may be a loaded 2-core box running ASan. Checks that
// something does NOT happen (held data, an early reset) wait a few hundred ms
// and cannot fail because the machine is slow; checks that something DOES
// happen allow seconds; lower bounds on delays rely only on timers never
// firing early, and upper bounds are loose (stated where they appear).
#include <gtest/gtest.h>

#include "resilink/lab/chaos_proxy.h"
#include "support/chaos_harness.h"

namespace resilink::lab {
namespace {

using namespace std::chrono_literals;
using test::ChaosHarness;
using test::Clock;
using test::ms_between;
using test::TcpListener;
using test::TcpSocket;
using End = TcpSocket::End;

bool starts_with(const std::string& text, std::string_view prefix) { return text.rfind(prefix, 0) == 0; }

struct Pair {
  TcpSocket client, server;
};

// A client connected through the proxy and the server side of its upstream
// connection.
Pair connect_pair(ChaosHarness& chaos, TcpListener& listener) {
  Pair p;
  p.client = TcpSocket::connect(chaos.port());
  p.server = listener.accept(3s);
  EXPECT_TRUE(p.server.valid()) << "the proxy did not connect upstream";
  return p;
}

TEST(ChaosProxy, RelaysBothWaysAndPassesHalfCloses) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  Pair p = connect_pair(chaos, listener);
  ASSERT_TRUE(p.server.valid());
  p.client.send("hello");
  EXPECT_EQ(p.server.read_exactly(5, 3s), "hello");
  p.server.send("world");
  EXPECT_EQ(p.client.read_exactly(5, 3s), "world");

  p.client.shutdown_write();
  EXPECT_EQ(p.server.read_to_end(3s), "");
  EXPECT_EQ(p.server.end(), End::eof) << "the client's FIN is passed on as a FIN";
  p.server.send("still");
  EXPECT_EQ(p.client.read_exactly(5, 3s), "still") << "a half-closed connection still carries the other way";
  p.server.close();
  EXPECT_EQ(p.client.read_to_end(3s), "");
  EXPECT_EQ(p.client.end(), End::eof);

  EXPECT_TRUE(ChaosHarness::wait_until([&] { return chaos.stats().active == 0; }, 3s));
  lab::ChaosStats stats = chaos.stats();
  EXPECT_EQ(stats.accepted, 1u);
  EXPECT_EQ(stats.bytes_upstream, 5u);
  EXPECT_EQ(stats.bytes_downstream, 10u);
  EXPECT_NE(chaos.log().find("connection from 127.0.0.1:"), std::string::npos) << "logged with the peer";
}

TEST(ChaosProxy, OutageHoldsDataAndClosesAndDeliversThemAfterInOrder) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  Pair p = connect_pair(chaos, listener);
  ASSERT_TRUE(p.server.valid());
  p.client.send("before,");
  EXPECT_EQ(p.server.read_exactly(7, 3s), "before,");

  EXPECT_TRUE(starts_with(chaos.execute("add outage"), "ok added outage"));
  p.client.send("during,");
  p.client.send("still during");
  p.server.send("back");
  p.client.shutdown_write();
  // Nothing crosses, not even the FIN.
  EXPECT_EQ(p.server.read_some(400ms), "");
  EXPECT_EQ(p.server.end(), End::timeout);
  EXPECT_EQ(p.client.read_some(200ms), "");
  EXPECT_EQ(p.client.end(), End::timeout);

  EXPECT_EQ(chaos.execute("remove outage"), "ok removed outage");
  EXPECT_EQ(p.server.read_to_end(3s), "during,still during") << "held data first, in order";
  EXPECT_EQ(p.server.end(), End::eof) << "then the close that happened meanwhile";
  EXPECT_EQ(p.client.read_exactly(4, 3s), "back");

  auto events = chaos.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].name, "outage");
  EXPECT_TRUE(events[0].active);
  EXPECT_EQ(events[0].stream, Stream::both);
  EXPECT_FALSE(events[1].active);
}

TEST(ChaosProxy, OutageHidesAResetUntilItEnds) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  Pair p = connect_pair(chaos, listener);
  ASSERT_TRUE(p.server.valid());
  ASSERT_TRUE(starts_with(chaos.execute("add outage"), "ok"));
  p.client.reset();
  EXPECT_EQ(p.server.read_some(400ms), "");
  EXPECT_EQ(p.server.end(), End::timeout) << "the proxy does not read, so it cannot notice the reset";
  ASSERT_TRUE(starts_with(chaos.execute("remove outage"), "ok"));
  p.server.read_to_end(3s);
  EXPECT_EQ(p.server.end(), End::reset) << "a reset is passed on as a reset";
}

TEST(ChaosProxy, NewConnectionsDuringAnOutageWaitForItsEnd) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  ASSERT_TRUE(starts_with(chaos.execute("add outage name=radio"), "ok added radio"));
  TcpSocket late = TcpSocket::connect(chaos.port());  // the kernel completes the handshake
  late.send("hello");
  EXPECT_FALSE(listener.accept(400ms).valid()) << "not connected upstream during the outage";
  EXPECT_TRUE(ChaosHarness::wait_until([&] { return chaos.stats().accepted == 1; }, 3s));
  EXPECT_EQ(chaos.stats().active, 1u);
  EXPECT_EQ(late.read_some(100ms), "");
  EXPECT_EQ(late.end(), End::timeout) << "nor answered";

  ASSERT_TRUE(starts_with(chaos.execute("remove radio"), "ok"));
  TcpSocket server = listener.accept(3s);
  ASSERT_TRUE(server.valid()) << "connected once the outage ended";
  EXPECT_EQ(server.read_exactly(5, 3s), "hello");
}

TEST(ChaosProxy, HalfOpenUpstreamStopsOnlyClientToServer) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  Pair p = connect_pair(chaos, listener);
  ASSERT_TRUE(p.server.valid());
  EXPECT_EQ(chaos.execute("add half_open"), "ok added half_open: half_open name=half_open stream=upstream");
  p.client.send("up");
  p.server.send("down");
  EXPECT_EQ(p.client.read_exactly(4, 3s), "down") << "downstream still flows";
  EXPECT_EQ(p.server.read_some(400ms), "");
  EXPECT_EQ(p.server.end(), End::timeout);
  // A close from the live side is passed on at once.
  p.server.shutdown_write();
  EXPECT_EQ(p.client.read_to_end(3s), "");
  EXPECT_EQ(p.client.end(), End::eof);
  ASSERT_TRUE(starts_with(chaos.execute("remove half_open"), "ok"));
  EXPECT_EQ(p.server.read_exactly(2, 3s), "up");
}

TEST(ChaosProxy, HalfOpenDownstreamStopsOnlyServerToClient) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  Pair p = connect_pair(chaos, listener);
  ASSERT_TRUE(p.server.valid());
  EXPECT_TRUE(starts_with(chaos.execute("add half_open stream=downstream name=deaf"), "ok added deaf"));
  p.client.send("up");
  EXPECT_EQ(p.server.read_exactly(2, 3s), "up") << "upstream still flows";
  p.server.send("down");
  p.server.shutdown_write();
  EXPECT_EQ(p.client.read_some(400ms), "");
  EXPECT_EQ(p.client.end(), End::timeout) << "neither the data nor the FIN";
  ASSERT_TRUE(starts_with(chaos.execute("remove deaf"), "ok"));
  EXPECT_EQ(p.client.read_to_end(3s), "down");
  EXPECT_EQ(p.client.end(), End::eof);
}

TEST(ChaosProxy, ResetPeerResetsBothSidesOfOldAndNewConnections) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  Pair p = connect_pair(chaos, listener);
  ASSERT_TRUE(p.server.valid());
  ASSERT_TRUE(starts_with(chaos.execute("add reset_peer"), "ok"));
  p.client.read_to_end(3s);
  EXPECT_EQ(p.client.end(), End::reset) << "ECONNRESET at the client";
  p.server.read_to_end(3s);
  EXPECT_EQ(p.server.end(), End::reset) << "ECONNRESET at the server";
  // While active, new connections are reset too.
  TcpSocket again = TcpSocket::connect(chaos.port());
  again.read_to_end(3s);
  EXPECT_EQ(again.end(), End::reset);
  EXPECT_EQ(chaos.stats().resets, 2u);
  ASSERT_TRUE(starts_with(chaos.execute("remove reset_peer"), "ok"));

  // With a timeout: not before it, after it. Timers never fire early, so the
  // lower bound holds however loaded the machine is; the upper bound is loose.
  ASSERT_TRUE(starts_with(chaos.execute("add reset_peer timeout=300ms"), "ok"));
  auto connected = Clock::now();
  Pair q = connect_pair(chaos, listener);
  ASSERT_TRUE(q.server.valid());
  q.client.send("ping");
  EXPECT_EQ(q.server.read_exactly(4, 3s), "ping");
  q.client.read_to_end(3s);
  EXPECT_EQ(q.client.end(), End::reset);
  EXPECT_GE(ms_between(connected, Clock::now()), 300.0);
}

TEST(ChaosProxy, SlowCloseDelaysTheEof) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  ASSERT_TRUE(starts_with(chaos.execute("add slow_close delay=300ms"), "ok"));
  Pair p = connect_pair(chaos, listener);
  ASSERT_TRUE(p.server.valid());
  p.client.send("bye");
  auto closed = Clock::now();
  p.client.shutdown_write();
  EXPECT_EQ(p.server.read_to_end(3s), "bye");
  EXPECT_EQ(p.server.end(), End::eof);
  EXPECT_GE(ms_between(closed, Clock::now()), 300.0) << "the FIN waited for delay";
}

TEST(ChaosProxy, LimitDataCutsAfterExactlyNBytes) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  ASSERT_TRUE(starts_with(chaos.execute("add limit_data bytes=17 stream=upstream"), "ok"));
  Pair p = connect_pair(chaos, listener);
  ASSERT_TRUE(p.server.valid());
  std::string payload;
  for (int i = 0; i < 100; ++i) payload += static_cast<char>('a' + i % 26);
  p.client.send(payload);
  EXPECT_EQ(p.server.read_to_end(3s), payload.substr(0, 17));
  EXPECT_EQ(p.server.end(), End::eof) << "closed with a FIN";
  p.client.read_to_end(3s);
  EXPECT_NE(p.client.end(), End::timeout) << "the client side is closed too";
  EXPECT_EQ(chaos.stats().limit_closes, 1u);

  ASSERT_TRUE(starts_with(chaos.execute("clear"), "ok"));
  ASSERT_TRUE(starts_with(chaos.execute("add limit_data bytes=0"), "ok"));
  Pair q = connect_pair(chaos, listener);
  ASSERT_TRUE(q.server.valid());
  q.client.send("nothing crosses");
  EXPECT_EQ(q.server.read_to_end(3s), "");
  EXPECT_EQ(q.server.end(), End::eof);
}

TEST(ChaosProxy, SlicerDeliversEverythingIntactInSeveralReads) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  ASSERT_TRUE(starts_with(chaos.execute("add slicer average_size=3 size_variation=2 delay=10ms"), "ok"));
  Pair p = connect_pair(chaos, listener);
  ASSERT_TRUE(p.server.valid());
  std::string payload;
  for (int i = 0; i < 60; ++i) payload += static_cast<char>('A' + i % 26);
  p.client.send(payload);
  std::string got;
  int reads = 0;
  auto deadline = Clock::now() + 5s;
  while (got.size() < payload.size() && Clock::now() < deadline) {
    std::string part = p.server.read_some(1s);
    if (!part.empty()) ++reads;
    got += part;
  }
  EXPECT_EQ(got, payload);
  // >= 12 pieces at least 10 ms apart spread over >= 110 ms: only a reader
  // stalled for most of that would see fewer than 3 reads.
  EXPECT_GE(reads, 3);
}

TEST(ChaosProxy, LatencyDelaysEveryChunkAndKeepsOrder) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  Pair p = connect_pair(chaos, listener);
  ASSERT_TRUE(p.server.valid());
  ASSERT_TRUE(starts_with(chaos.execute("add latency latency=200ms jitter=50ms"), "ok"));
  auto sent = Clock::now();
  p.client.send("ping");
  EXPECT_EQ(p.server.read_exactly(4, 3s), "ping");
  EXPECT_GE(ms_between(sent, Clock::now()), 150.0) << "at least latency - jitter";

  ASSERT_TRUE(starts_with(chaos.execute("remove latency"), "ok"));
  ASSERT_TRUE(starts_with(chaos.execute("add latency latency=60ms jitter=55ms stream=downstream"), "ok"));
  std::string expected;
  for (int i = 0; i < 20; ++i) {
    char chunk[8];
    std::snprintf(chunk, sizeof chunk, "<%02d>", i);
    p.server.send(chunk);
    expected += chunk;
    std::this_thread::sleep_for(3ms);
  }
  EXPECT_EQ(p.client.read_exactly(expected.size(), 5s), expected) << "jitter never reorders";
}

TEST(ChaosProxy, BandwidthCapsTheRate) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  ASSERT_TRUE(starts_with(chaos.execute("add bandwidth rate=20KB stream=upstream"), "ok"));
  Pair p = connect_pair(chaos, listener);
  ASSERT_TRUE(p.server.valid());
  auto sent = Clock::now();
  p.client.send(std::string(10000, 'z'));
  EXPECT_EQ(p.server.read_exactly(10000, 5s).size(), 10000u);
  // 10000 B at 20000 B/s: 500 ms, less the first 1000-byte piece (50 ms) that
  // goes at once; 50 ms more for slack in the bound, never in the proxy.
  EXPECT_GE(ms_between(sent, Clock::now()), 400.0);
  p.server.send(std::string(10000, 'y'));
  auto down = Clock::now();
  EXPECT_EQ(p.client.read_exactly(10000, 5s).size(), 10000u);
  EXPECT_LT(ms_between(down, Clock::now()), 400.0) << "downstream is not limited";
}

// The schedule's events follow its FaultPlan (the n-th schedule draws from
// derive_seed(seed, n)), so two proxies with one seed fault alike.
TEST(ChaosProxy, ScheduleWithASeedRepeatsItsStartEndSequence) {
  const char* spec = "outage name=flap every=80ms+-40ms for=40ms+-30ms";
  FaultSchedule schedule = *parse_schedule(spec, nullptr);
  std::vector<std::vector<std::pair<bool, double>>> runs;
  for (int run = 0; run < 2; ++run) {
    TcpListener listener;
    ChaosHarness chaos(listener.port(), /*seed=*/42);
    auto before = Clock::now();
    ASSERT_TRUE(starts_with(chaos.execute(std::string("schedule ") + spec), "ok scheduled flap"));
    auto after = Clock::now();
    ASSERT_TRUE(ChaosHarness::wait_until([&] { return chaos.events().size() >= 8; }, 5s));
    ASSERT_TRUE(starts_with(chaos.execute("clear"), "ok"));
    auto events = chaos.events();
    FaultPlan plan(schedule, derive_seed(42, 1));
    std::vector<std::pair<bool, double>> seen;
    for (size_t i = 0; i + 1 < 8; i += 2) {
      FaultPlan::Occurrence o = plan.next();
      for (size_t k = i; k < i + 2; ++k) {
        const FaultEvent& e = events[k];
        EXPECT_EQ(e.name, "flap");
        EXPECT_EQ(e.type, ToxicType::outage);
        EXPECT_EQ(e.active, k == i) << "start, end, start, end, ...";
        double planned = static_cast<double>(k == i ? o.start_ms : o.start_ms + o.duration_ms);
        // Timers never fire early; 500 ms of lateness would be a stalled machine.
        EXPECT_GE(ms_between(before, e.at), planned) << "event " << k;
        EXPECT_LE(ms_between(after, e.at), planned + 500) << "event " << k;
        seen.push_back({e.active, planned});
      }
    }
    runs.push_back(seen);
  }
  EXPECT_EQ(runs[0], runs[1]);
}

TEST(ChaosProxy, ControlCommandsAndTheirReplies) {
  TcpListener listener;
  ChaosHarness chaos(listener.port());
  EXPECT_TRUE(starts_with(chaos.execute("help"), "ok commands: add <toxic>"));
  EXPECT_EQ(chaos.execute("add latency latency=20ms"),
            "ok added latency: latency name=latency stream=both latency=20ms jitter=0ms");
  EXPECT_EQ(chaos.execute("add latency latency=30ms"), "error: a toxic named 'latency' is already active");
  EXPECT_TRUE(starts_with(chaos.execute("add blackhole"), "error: unknown toxic type 'blackhole'"));
  EXPECT_EQ(chaos.execute("schedule outage every=10s for=1s"),
            "ok scheduled outage-s1: outage name=outage-s1 stream=both every=10s for=1s");
  EXPECT_TRUE(starts_with(chaos.execute("schedule outage every=10s"), "error: outage: a schedule needs for="));
  EXPECT_EQ(chaos.execute("add outage name=outage-s1"), "error: a schedule is named 'outage-s1'");
  EXPECT_EQ(chaos.execute("list"),
            "ok toxics: latency name=latency stream=both latency=20ms jitter=0ms | schedules: outage "
            "name=outage-s1 stream=both every=10s for=1s");
  EXPECT_EQ(chaos.execute("remove nothing"), "error: no toxic or schedule named 'nothing'");
  EXPECT_EQ(chaos.execute("remove"), "error: remove takes one toxic or schedule name");
  EXPECT_EQ(chaos.execute("remove outage-s1"), "ok removed schedule outage-s1");
  EXPECT_EQ(chaos.execute("stats"),
            "ok accepted=0 active=0 bytes_upstream=0 bytes_downstream=0 resets=0 limit_closes=0");
  EXPECT_EQ(chaos.execute("clear\r"), "ok cleared 1 toxics and schedules");
  EXPECT_EQ(chaos.execute("list"), "ok toxics: (none) | schedules: (none)");
  EXPECT_EQ(chaos.execute(""), "error: empty command (try help)");
  EXPECT_EQ(chaos.execute("frobnicate now"), "error: unknown command 'frobnicate' (try help)");
  auto events = chaos.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].name, "latency");
  EXPECT_TRUE(events[0].active);
  EXPECT_FALSE(events[1].active) << "clear ends it";

  // The programmatic API fills in defaults and refuses bad attributes.
  EXPECT_FALSE(chaos.call([](ChaosProxy& p) {
    Toxic half;
    half.type = ToxicType::half_open;
    return p.add(half);
  }));
  auto active = chaos.call([](ChaosProxy& p) { return p.toxics(); });
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].name, "half_open");
  EXPECT_EQ(active[0].stream, Stream::upstream);
  std::error_code ec = chaos.call([](ChaosProxy& p) {
    Toxic bad;
    bad.name = "bad";
    bad.type = ToxicType::slicer;
    bad.average_size = 0;
    return p.add(bad);
  });
  EXPECT_EQ(ec, make_error_code(ChaosErrc::bad_toxic));
  EXPECT_NE(chaos.log().find("slicer: average_size must be at least 1"), std::string::npos);
  EXPECT_TRUE(chaos.call([](ChaosProxy& p) { return p.remove("half_open"); }));
  EXPECT_FALSE(chaos.call([](ChaosProxy& p) { return p.remove("half_open"); }));

  // The same protocol on a loopback TCP port.
  uint16_t control = chaos.call([](ChaosProxy& p) {
    return p.listen_control(0) ? uint16_t{0} : p.control_port();
  });
  ASSERT_NE(control, 0);
  TcpSocket controller = TcpSocket::connect(control);
  controller.send("add outage\r\nlist\n");
  std::string replies = controller.read_exactly(std::string("ok added outage: outage name=outage stream=both\n"
                                                            "ok toxics: outage name=outage stream=both | "
                                                            "schedules: (none)\n")
                                                    .size(),
                                                3s);
  EXPECT_EQ(replies,
            "ok added outage: outage name=outage stream=both\n"
            "ok toxics: outage name=outage stream=both | schedules: (none)\n");
  controller.send(std::string(5000, 'x'));
  EXPECT_TRUE(starts_with(controller.read_to_end(3s), "error: command line longer than 4096 bytes"));
}

}  // namespace
}  // namespace resilink::lab
