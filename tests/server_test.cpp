// resilink::Server over real loopback TCP (test layer 4, without a proxy).
//
// Each test runs a Server on 127.0.0.1, port 0, with a short timeout, in an
// asio::io_context on a background thread (TestServer). The test thread plays
// hand-written v1 clients with plain blocking POSIX sockets (RawClient): it
// writes the exact bytes of the protocol and reads lines with a deadline, so
// every byte the server sends is checked as the wire carries it. The harness
// is tests/support/server_harness.h.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <asio/experimental/awaitable_operators.hpp>

#include "support/server_harness.h"

namespace resilink {
namespace {

using namespace std::chrono_literals;
using namespace resilink::test;
using core::Error;
using core::OutageReason;

// ================================================================ 1. handshake, exchange

TEST(ServerTest, HandshakeThenOneMessageEachWay) {
  TestServer ts;
  auto conn_future = ts.spawn([](Server& s) -> asio::awaitable<Connection*> {
    Connection& c = co_await s.client("dev1");
    co_return &c;
  });
  RawClient dev(ts.port());
  ASSERT_TRUE(handshake(dev, "dev1"));
  ASSERT_TRUE(ready(conn_future)) << "server.client(\"dev1\") did not complete after the handshake";
  Connection* conn = conn_future.get();
  EXPECT_EQ(conn, ts.find("dev1"));
  dev.start_keepalive();

  auto read = ts.spawn([conn](Server&) -> asio::awaitable<std::string> { co_return co_await conn->readline(); });
  dev.send("00hi\n");
  EXPECT_EQ(dev.next_message(), "00");  // the ACK
  ASSERT_TRUE(ready(read));
  EXPECT_EQ(read.get(), "hi");

  auto write = ts.spawn([conn](Server&) -> asio::awaitable<std::error_code> {
    co_return co_await conn->write("hello");
  });
  EXPECT_EQ(dev.next_message(), "00hello");  // server's own sequence starts at 00
  EXPECT_FALSE(ready(write, 100ms)) << "a qos write completed before its ACK";
  dev.send("00\n");
  ASSERT_TRUE(ready(write));
  EXPECT_FALSE(write.get());

  EXPECT_TRUE(ts.up("dev1"));
  EXPECT_EQ(ts.reconnects("dev1"), 0u);
  core::EngineStats stats = ts.stats("dev1");
  EXPECT_EQ(stats.messages_received, 1u);
  EXPECT_EQ(stats.messages_acked, 1u);
  EXPECT_EQ(stats.outages, 0u);
  EXPECT_TRUE(ts.wait_for_log("client 'dev1' connected"));
}

TEST(ServerTest, ServerSendsOnlyKeepalivesUntilItHearsALine) {
  TestServer ts;
  // A qos message queued before the client ever connected.
  auto write = ts.write("dev1", "early");
  auto conn_future = ts.spawn([](Server& s) -> asio::awaitable<Connection*> {
    Connection& c = co_await s.client("dev1");
    co_return &c;
  });
  RawClient dev(ts.port());
  dev.send("dev1\n");  // the id line only: the server has heard no line yet

  // Well over one keepalive interval (T/4), well under the 2T first-read allowance.
  std::vector<std::string> lines;
  uint64_t until = monotonic_ms() + kTimeout / 2 + 30;
  while (monotonic_ms() < until) {
    RawClient::Read r = dev.read_line(20ms);
    ASSERT_NE(r.status, RawClient::Status::closed);
    if (r.status == RawClient::Status::line) lines.push_back(r.line);
  }
  ASSERT_FALSE(lines.empty()) << "no keepalive from the server after the id line";
  for (const auto& line : lines) EXPECT_EQ(line, "") << "server sent data before hearing a line";
  EXPECT_FALSE(ts.up("dev1"));
  EXPECT_FALSE(ready(conn_future, 0ms)) << "server.client() completed before the link was up";

  dev.send("\n");
  EXPECT_EQ(dev.next_message(), "00early");
  dev.send("00\n");
  ASSERT_TRUE(ready(write));
  EXPECT_FALSE(write.get());
  ASSERT_TRUE(ready(conn_future));
  EXPECT_TRUE(ts.up("dev1"));
}

TEST(ServerTest, IdLineMayArriveInPiecesAndShareASegmentWithMessages) {
  TestServer ts;
  RawClient dev(ts.port());
  dev.send("de");
  std::this_thread::sleep_for(20ms);
  dev.send("v1\n\n00a\n01b\n");
  EXPECT_EQ(dev.next_message(), "00");
  EXPECT_EQ(dev.next_message(), "01");
  auto first = ts.readline("dev1");
  ASSERT_TRUE(ready(first));
  EXPECT_EQ(first.get(), "a");
  auto second = ts.readline("dev1");
  ASSERT_TRUE(ready(second));
  EXPECT_EQ(second.get(), "b");
}

TEST(ServerTest, IdOf32BytesIsAccepted) {
  TestServer ts;
  const std::string id(RESILINK_MAX_ID, 'i');
  RawClient dev(ts.port());
  ASSERT_TRUE(handshake(dev, id));
  dev.start_keepalive();
  EXPECT_TRUE(exchange(ts, dev, id, "x"));
}

// ================================================================ 2. duplicates

TEST(ServerTest, DuplicateMessageIsDeliveredOnceAndAckedTwice) {
  TestServer ts;
  RawClient dev(ts.port());
  ASSERT_TRUE(handshake(dev, "dev1"));
  dev.start_keepalive();
  // The resend follows the first ACK: the engine ACKs a mid once per flush, so
  // two copies read in one chunk would draw a single ACK.
  dev.send("01x\n");
  EXPECT_EQ(dev.next_message(), "01");
  dev.send("01x\n");
  EXPECT_EQ(dev.next_message(), "01") << "a duplicate must be ACKed again";
  dev.send("02y\n");
  EXPECT_EQ(dev.next_message(), "02");

  auto first = ts.readline("dev1");
  ASSERT_TRUE(ready(first));
  EXPECT_EQ(first.get(), "x");
  auto second = ts.readline("dev1");
  ASSERT_TRUE(ready(second));
  EXPECT_EQ(second.get(), "y") << "the duplicate was delivered";
  core::EngineStats stats = ts.stats("dev1");
  EXPECT_EQ(stats.messages_received, 2u);
  EXPECT_EQ(stats.duplicates_discarded, 1u);
}

TEST(ServerTest, SecondMidZeroOnOneConnectionIsADuplicate) {
  TestServer ts;
  RawClient dev(ts.port());
  ASSERT_TRUE(handshake(dev, "dev1"));
  dev.send("00boot\n");
  EXPECT_EQ(dev.next_message(), "00");
  dev.send("00boot\n");
  EXPECT_EQ(dev.next_message(), "00");
  dev.send("01next\n");
  EXPECT_EQ(dev.next_message(), "01");
  auto first = ts.readline("dev1");
  ASSERT_TRUE(ready(first));
  EXPECT_EQ(first.get(), "boot");
  auto second = ts.readline("dev1");
  ASSERT_TRUE(ready(second));
  EXPECT_EQ(second.get(), "next");
  EXPECT_EQ(ts.stats("dev1").duplicates_discarded, 1u);
}

// ================================================================ 3. outage, persistence

TEST(ServerTest, SilentClientIsTimedOutAndItsConnectionOutlivesTheSocket) {
  TestServer ts;
  auto dev = std::make_unique<RawClient>(ts.port());
  ASSERT_TRUE(handshake(*dev, "dev1"));
  dev->start_keepalive();
  ASSERT_TRUE(exchange(ts, *dev, "dev1", "a"));
  Connection* conn = ts.find("dev1");
  ASSERT_NE(conn, nullptr);

  dev->stop_keepalive();  // silence from here
  uint64_t last_byte = dev->last_send_ms();
  ASSERT_TRUE(dev->wait_closed(2s)) << "server never closed the silent client's socket";
  uint64_t silence = dev->closed_at() - last_byte;
  EXPECT_GE(silence, kTimeout - 2) << "outage declared before T of silence";
  EXPECT_LE(silence, kTimeout + kTimeout / 4) << "outage declared late";

  core::EngineStats stats = ts.stats("dev1");
  EXPECT_EQ(stats.outages, 1u);
  EXPECT_STREQ(core::outage_reason_name(stats.last_outage), "read_timeout");
  EXPECT_FALSE(ts.up("dev1"));
  EXPECT_EQ(ts.find("dev1"), conn) << "the Connection must persist across the outage";
  EXPECT_TRUE(ts.wait_for_log("read_timeout"));

  // A qos write while the client is away completes once it is back.
  auto write = ts.write("dev1", "later");
  EXPECT_FALSE(ready(write, 100ms)) << "qos write completed while the client was away";
  dev = std::make_unique<RawClient>(ts.port());
  ASSERT_TRUE(handshake(*dev, "dev1"));
  auto message = dev->next_message();
  ASSERT_TRUE(message);
  EXPECT_EQ(message->substr(2), "later");
  EXPECT_EQ(message->substr(0, 2), "01") << "mid sequence restarted across the reconnect";
  dev->send(message->substr(0, 2) + "\n");
  ASSERT_TRUE(ready(write));
  EXPECT_FALSE(write.get());
  EXPECT_EQ(ts.reconnects("dev1"), 1u);
  EXPECT_TRUE(ts.up("dev1"));
  EXPECT_EQ(ts.find("dev1"), conn);
}

TEST(ServerTest, ClientThatClosesIsDownAtOnce) {
  TestServer ts;
  auto dev = std::make_unique<RawClient>(ts.port());
  ASSERT_TRUE(handshake(*dev, "dev1"));
  ASSERT_TRUE(ts.up("dev1"));
  dev.reset();
  ASSERT_TRUE(ts.wait_for_log("peer closed the connection", 1s));
  EXPECT_FALSE(ts.up("dev1"));
  EXPECT_STREQ(core::outage_reason_name(ts.stats("dev1").last_outage), "peer_closed");
}

// ================================================================ 4. duplicate connections

TEST(ServerTest, ReplaceOldClosesTheOldSocketAndIgnoresItsBytes) {
  ServerOptions options = test_options();
  options.duplicate_policy = DuplicatePolicy::replace_old;
  TestServer ts(options);
  RawClient old_socket(ts.port());
  ASSERT_TRUE(handshake(old_socket, "dev1"));
  old_socket.start_keepalive();
  old_socket.send("00a\n");
  EXPECT_EQ(old_socket.next_message(), "00");

  RawClient new_socket(ts.port());
  ASSERT_TRUE(handshake(new_socket, "dev1"));
  new_socket.start_keepalive();
  old_socket.stop_keepalive();
  EXPECT_TRUE(old_socket.wait_closed(1s)) << "old socket still open after the takeover";
  // Too late: the takeover is done. Mid 01 would make the new socket's 01 a duplicate.
  old_socket.send("01evil\n");

  new_socket.send("01good\n");
  EXPECT_EQ(new_socket.next_message(), "01");
  auto first = ts.readline("dev1");
  ASSERT_TRUE(ready(first));
  EXPECT_EQ(first.get(), "a");
  auto second = ts.readline("dev1");
  ASSERT_TRUE(ready(second));
  EXPECT_EQ(second.get(), "good") << "bytes from the replaced socket were delivered";

  core::EngineStats stats = ts.stats("dev1");
  EXPECT_EQ(stats.messages_received, 2u);
  EXPECT_STREQ(core::outage_reason_name(stats.last_outage), "replaced");
  EXPECT_EQ(ts.reconnects("dev1"), 1u);
  EXPECT_EQ(ts.connection_count(), 1u);
  EXPECT_TRUE(ts.up("dev1"));
  EXPECT_TRUE(ts.wait_for_log("replaces its still-open connection"));
  EXPECT_TRUE(exchange(ts, new_socket, "dev1", "after"));
}

// Observers see every change: up, then down and up again when a newcomer
// takes over (one engine call both drops the old link and opens the new one).
TEST(ServerTest, ReplaceOldReportsTheTakeoverToStatusObservers) {
  std::mutex mutex;  // declared before the server: its callbacks outlive the test body
  std::vector<bool> server_seen, connection_seen;
  TestServer ts;
  ts.call([&](Server& s) {
    s.on_status([&](Connection&, bool up) {
      std::lock_guard lock(mutex);
      server_seen.push_back(up);
    });
    s.connection("dev1").on_status([&](bool up) {
      std::lock_guard lock(mutex);
      connection_seen.push_back(up);
    });
    return 0;
  });
  RawClient old_socket(ts.port());
  ASSERT_TRUE(handshake(old_socket, "dev1"));
  old_socket.start_keepalive();
  RawClient new_socket(ts.port());
  ASSERT_TRUE(handshake(new_socket, "dev1"));
  new_socket.start_keepalive();
  old_socket.stop_keepalive();
  ASSERT_TRUE(old_socket.wait_closed(1s));
  ts.call([](Server&) { return 0; });  // callbacks of that turn have run
  std::lock_guard lock(mutex);
  EXPECT_EQ(server_seen, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(connection_seen, (std::vector<bool>{true, false, true}));
}

// A link that never came up reports no "down": the status never changed.
TEST(ServerTest, ConnectionThatNeverCameUpReportsNoStatusChange) {
  std::atomic<int> changes{0};  // declared before the server: its callbacks outlive the test body
  TestServer ts;
  ts.call([&](Server& s) {
    s.on_status([&](Connection&, bool) { ++changes; });
    return 0;
  });
  RawClient dev(ts.port());
  dev.send("dev1\n");  // id only, then silence: refused after 2T
  EXPECT_TRUE(dev.wait_closed(std::chrono::milliseconds(4 * kTimeout)));
  ts.call([](Server&) { return 0; });  // callbacks of that turn have run
  EXPECT_EQ(changes.load(), 0);
  EXPECT_EQ(ts.stats("dev1").outages, 1u);
}

TEST(ServerTest, CloseAlsoClosesSocketsStillInHandshake) {
  TestServer ts;
  RawClient dev(ts.port());  // connected, no id line yet
  std::this_thread::sleep_for(50ms);
  ts.call([](Server& s) {
    s.close();
    return 0;
  });
  // Well before the 2T handshake deadline would have closed it.
  EXPECT_TRUE(dev.wait_closed(std::chrono::milliseconds(kTimeout)))
      << "a socket in handshake outlived Server::close()";
}

TEST(ServerTest, RejectNewClosesTheNewcomerAndKeepsTheFirst) {
  ServerOptions options = test_options();
  options.duplicate_policy = DuplicatePolicy::reject_new;
  TestServer ts(options);
  auto first = std::make_unique<RawClient>(ts.port());
  ASSERT_TRUE(handshake(*first, "dev1"));
  first->start_keepalive();
  ASSERT_TRUE(exchange(ts, *first, "dev1", "a"));

  RawClient newcomer(ts.port());
  newcomer.send("dev1\n\n01evil\n");  // must never reach the application
  std::vector<std::string> seen;
  EXPECT_TRUE(newcomer.wait_closed(1s, &seen)) << "the newcomer was not refused";
  EXPECT_TRUE(seen.empty()) << "the refused newcomer was sent data";
  EXPECT_TRUE(ts.wait_for_log("refusing the newcomer"));

  first->send("01good\n");
  EXPECT_EQ(first->next_message(), "01");
  auto read = ts.readline("dev1");
  ASSERT_TRUE(ready(read));
  EXPECT_EQ(read.get(), "good") << "the refused newcomer's message was delivered";
  EXPECT_TRUE(ts.up("dev1"));
  EXPECT_EQ(ts.stats("dev1").outages, 0u);
  EXPECT_EQ(ts.reconnects("dev1"), 0u);

  // Once the first connection is gone, the id may connect again.
  first.reset();
  ASSERT_TRUE(ts.wait_for_log("peer closed the connection", 1s));
  RawClient again(ts.port());
  ASSERT_TRUE(handshake(again, "dev1"));
  again.start_keepalive();
  EXPECT_TRUE(exchange(ts, again, "dev1", "b"));
  EXPECT_EQ(ts.reconnects("dev1"), 1u);
}

// ================================================================ 5. bad input

// A well-behaved client that keeps its link and exchanges messages while a
// bad one is dealt with; it must never notice.
struct Bystander {
  explicit Bystander(TestServer& ts) : server(ts), client(ts.port()) {}
  ::testing::AssertionResult start() {
    auto r = handshake(client, "good");
    if (r) client.start_keepalive();
    return r;
  }
  ::testing::AssertionResult exchange_one() {
    return exchange(server, client, "good", "m" + std::to_string(++count));
  }
  ::testing::AssertionResult unaffected() {
    core::EngineStats stats = server.stats("good");
    if (!server.up("good")) return ::testing::AssertionFailure() << "bystander link is down";
    if (stats.outages != 0 || stats.connects != 1)
      return ::testing::AssertionFailure() << "bystander saw " << stats.outages << " outages, "
                                           << stats.connects << " connects";
    return ::testing::AssertionSuccess();
  }
  TestServer& server;
  RawClient client;
  int count = 0;
};

struct BadIdCase {
  const char* name;
  std::string bytes;   // all the bad client ever sends
  const char* logged;  // the server's log must name the problem so
  bool waits_for_deadline;  // closed only when the 2T id deadline passes
};

void PrintTo(const BadIdCase& c, std::ostream* os) { *os << c.name; }

class BadIdLine : public ::testing::TestWithParam<BadIdCase> {};

TEST_P(BadIdLine, IsClosedWithoutDisturbingOthers) {
  const BadIdCase& c = GetParam();
  TestServer ts;
  Bystander good(ts);
  ASSERT_TRUE(good.start());
  ASSERT_TRUE(good.exchange_one());

  RawClient bad(ts.port());
  if (!c.bytes.empty()) bad.send(c.bytes);
  ASSERT_TRUE(good.exchange_one());  // while the bad socket is pending
  std::vector<std::string> seen;
  ASSERT_TRUE(bad.wait_closed(2 * kTimeout * 1ms + 1s, &seen)) << "bad client never closed";
  uint64_t open_for = bad.closed_at() - bad.connected_at();
  if (c.waits_for_deadline) {
    EXPECT_GE(open_for, 2 * kTimeout - 5) << "closed before the 2T id deadline";
    EXPECT_LE(open_for, 2 * kTimeout + kTimeout / 2) << "closed long after the 2T id deadline";
  } else {
    EXPECT_LT(open_for, kTimeout) << "a bad id must be refused at once";
  }
  EXPECT_TRUE(seen.empty()) << "the server sent data before a valid id";
  EXPECT_TRUE(ts.wait_for_log(c.logged)) << "log does not name the problem: " << c.logged;
  EXPECT_EQ(ts.connection_count(), 1u) << "a Connection was created for a bad id";

  ASSERT_TRUE(good.exchange_one());
  EXPECT_TRUE(good.unaffected());
}

INSTANTIATE_TEST_SUITE_P(
    ServerTest, BadIdLine,
    ::testing::Values(
        BadIdCase{"IdOf33Bytes", std::string(RESILINK_MAX_ID + 1, 'a') + "\n", "exceeds 32 bytes", false},
        BadIdCase{"EmptyId", "\n", "empty_client_id", false},
        BadIdCase{"IdWithSpace", "dev 1\n\n", "bad_client_id", false},
        BadIdCase{"IdWithControlByte", std::string("dev\x01\n\n"), "bad_client_id", false},
        BadIdCase{"IdWithCarriageReturn", "dev1\r\n\r\n", "bad_client_id", false},
        BadIdCase{"NoIdLine", "", "no id line", true},
        BadIdCase{"ShortGarbageWithoutNewline", std::string("\x01\xfe\x00garbage", 10), "no id line",
                  true},
        BadIdCase{"LongGarbageWithoutNewline", std::string(600, '\xab'), "exceeds 32 bytes", false}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

struct BadLineCase {
  const char* name;
  std::string line;  // sent right after an accepted message, in the same segment
  Error error;
};

void PrintTo(const BadLineCase& c, std::ostream* os) { *os << c.name; }

class BadLineAfterHandshake : public ::testing::TestWithParam<BadLineCase> {};

TEST_P(BadLineAfterHandshake, ClosesThatLinkOnlyAndLosesNothingAccepted) {
  const BadLineCase& c = GetParam();
  TestServer ts;
  Bystander good(ts);
  ASSERT_TRUE(good.start());

  auto bad = std::make_unique<RawClient>(ts.port());
  ASSERT_TRUE(handshake(*bad, "bad"));
  Connection* conn = ts.find("bad");
  bad->send("00first\n");
  EXPECT_EQ(bad->next_message(), "00");
  bad->send("01second\n" + c.line);  // accepted message, then the bad line
  ASSERT_TRUE(good.exchange_one());
  EXPECT_TRUE(bad->wait_closed(1s)) << "server kept the link after a protocol error";

  // Nothing accepted before the bad line is lost.
  auto first = ts.readline("bad");
  ASSERT_TRUE(ready(first));
  EXPECT_EQ(first.get(), "first");
  auto second = ts.readline("bad");
  ASSERT_TRUE(ready(second)) << "the message just before the bad line was lost";
  EXPECT_EQ(second.get(), "second");

  EXPECT_EQ(ts.find("bad"), conn) << "the Connection must persist after a protocol error";
  EXPECT_FALSE(ts.up("bad"));
  EXPECT_STREQ(core::outage_reason_name(ts.stats("bad").last_outage), "protocol_error");
  Error recorded = ts.call([](Server& s) { return s.find("bad")->engine().last_protocol_error().error; });
  EXPECT_STREQ(core::error_name(recorded), core::error_name(c.error));
  EXPECT_TRUE(ts.wait_for_log(std::string("client 'bad'")));
  EXPECT_TRUE(ts.wait_for_log(core::error_name(c.error)))
      << "log does not name " << core::error_name(c.error);

  ASSERT_TRUE(good.exchange_one());
  EXPECT_TRUE(good.unaffected());

  // The client may come back and carry on with its sequence.
  bad = std::make_unique<RawClient>(ts.port());
  ASSERT_TRUE(handshake(*bad, "bad"));
  bad->send("02again\n");
  EXPECT_EQ(bad->next_message(), "02");
  auto again = ts.readline("bad");
  ASSERT_TRUE(ready(again));
  EXPECT_EQ(again.get(), "again");
  EXPECT_EQ(ts.reconnects("bad"), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    ServerTest, BadLineAfterHandshake,
    ::testing::Values(
        BadLineCase{"LineOfMaxLinePlusOne", "02" + std::string(RESILINK_MAX_LINE - 1, 'x') + "\n",
                    Error::line_too_long},
        // Refused as soon as the first byte too many arrives, not at the '\n'.
        BadLineCase{"LongLineWithoutNewline", "02" + std::string(RESILINK_MAX_LINE - 1, 'x'),
                    Error::line_too_long},
        BadLineCase{"NonHexMid", "zzabc\n", Error::bad_message_id},
        BadLineCase{"HalfHexMid", "0zabc\n", Error::bad_message_id},
        BadLineCase{"NonHexAck", "g0\n", Error::bad_message_id},
        BadLineCase{"OneCharacterLine", "x\n", Error::malformed_line}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(ServerTest, LineOfExactlyMaxLineIsAccepted) {
  TestServer ts;
  RawClient dev(ts.port());
  ASSERT_TRUE(handshake(dev, "dev1"));
  const std::string payload(RESILINK_MAX_LINE - 2, 'p');
  dev.send("00" + payload + "\n");
  EXPECT_EQ(dev.next_message(), "00");
  auto read = ts.readline("dev1");
  ASSERT_TRUE(ready(read));
  EXPECT_EQ(read.get(), payload);
  EXPECT_TRUE(ts.up("dev1"));
}

// ================================================================ 6. a peer that never reads

TEST(ServerTest, PeerThatNeverReadsIsDeclaredStalledAndOthersAreServed) {
  // The peer never ACKs, so after 100 mids the server's non-qos writes go
  // with qos and the window bounds them (docs/PROTOCOL.md §8g): about 116 KB,
  // then only the window's retransmissions. A kernel send buffer left to
  // autotune swallows all of it and nothing ever backs up into the engine;
  // a bounded one does.
  ServerOptions options = test_options();
  options.send_buffer_bytes = 16384;
  TestServer ts(options);
  Bystander good(ts);
  ASSERT_TRUE(good.start());

  RawClient slow(ts.port(), 2048);  // small window: the server's sends back up quickly
  ASSERT_TRUE(handshake(slow, "slow"));
  slow.start_keepalive();  // always heard: only the send side can fail
  // Non-qos writes until the server closes: each completes once queued.
  auto writer = ts.spawn([](Server& s) -> asio::awaitable<uint32_t> {
    Connection& c = co_await s.client("slow");
    const std::string big(1000, 'b');
    uint32_t written = 0;
    for (;;) {
      std::error_code ec = co_await c.write(big, {.qos = false});
      if (ec) co_return written;
      ++written;
    }
  });

  uint64_t started = monotonic_ms();
  bool stalled = false;
  while (!stalled && monotonic_ms() - started < 5000) {
    ASSERT_TRUE(good.exchange_one()) << "server unresponsive while a peer does not read";
    stalled = ts.stats("slow").last_outage == OutageReason::send_stalled;
  }
  ASSERT_TRUE(stalled) << "no send_stalled outage within 5 s; last outage: "
                       << core::outage_reason_name(ts.stats("slow").last_outage);
  core::EngineStats stats = ts.stats("slow");
  EXPECT_EQ(stats.outages, 1u);
  EXPECT_LT(stats.last_silence_ms, kTimeout) << "the slow peer was heard; not a read timeout";
  EXPECT_GT(stats.messages_sent, 4u);
  EXPECT_FALSE(ts.up("slow"));
  EXPECT_TRUE(ts.wait_for_log("send_stalled"));
  EXPECT_TRUE(slow.wait_closed(3s)) << "stalled socket not closed";

  ASSERT_TRUE(good.exchange_one());
  EXPECT_TRUE(good.unaffected());
}

// ================================================================ 7. unexpected ids

TEST(ServerTest, UnexpectedIdIsServedAndLogged) {
  ServerOptions options = test_options();
  options.expected = {"a"};
  TestServer ts(options);
  RawClient stranger(ts.port());
  ASSERT_TRUE(handshake(stranger, "stranger"));
  stranger.start_keepalive();
  EXPECT_TRUE(exchange(ts, stranger, "stranger", "hello"));
  EXPECT_TRUE(ts.wait_for_log("unexpected client id 'stranger'"));

  RawClient a(ts.port());
  ASSERT_TRUE(handshake(a, "a"));
  a.start_keepalive();
  EXPECT_TRUE(exchange(ts, a, "a", "hi"));
  EXPECT_EQ(ts.log().find("unexpected client id 'a'"), std::string::npos) << "expected id warned about";
}

// ================================================================ 8. wait_all

TEST(ServerTest, WaitAllCompletesOnlyWhenEveryIdHasConnected) {
  ServerOptions options = test_options();
  options.expected = {"a", "b"};
  TestServer ts(options);
  auto named = ts.spawn([](Server& s) -> asio::awaitable<void> {
    std::set<std::string> ids{"a", "b"};
    co_await s.wait_all(std::move(ids));
  });
  auto expected = ts.spawn([](Server& s) -> asio::awaitable<void> { co_await s.wait_all(); });
  // A Connection the application created to queue a message does not count.
  auto queued = ts.write("b", "for b");

  RawClient a(ts.port());
  ASSERT_TRUE(handshake(a, "a"));
  a.start_keepalive();
  EXPECT_FALSE(ready(named, 150ms)) << "wait_all completed with 'b' missing";
  EXPECT_FALSE(ready(expected, 0ms)) << "wait_all() completed with 'b' missing";

  RawClient b(ts.port());
  ASSERT_TRUE(handshake(b, "b"));
  b.start_keepalive();
  ASSERT_TRUE(ready(named, 1s));
  EXPECT_NO_THROW(named.get());
  ASSERT_TRUE(ready(expected, 1s));
  EXPECT_NO_THROW(expected.get());
  auto message = b.next_message();
  EXPECT_EQ(message, "00for b");
}

// ================================================================ 9. many idle links

// A client that only keeps its link alive, on a non-blocking socket, so one
// test thread can play hundreds of them.
struct IdleClient {
  explicit IdleClient(uint16_t port, const std::string& id) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
      throw std::system_error(errno, std::generic_category(), "connect");
    std::string hello = id + "\n\n";
    if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(hello.size()))
      throw std::runtime_error("send of the id failed");
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  ~IdleClient() { ::close(fd); }
  IdleClient(const IdleClient&) = delete;
  IdleClient& operator=(const IdleClient&) = delete;

  void send_keepalive() {
    if (!closed && ::send(fd, "\n", 1, MSG_NOSIGNAL) != 1 && errno != EAGAIN) closed = true;
  }
  // Counts the server's keepalives; anything else is unexpected here.
  void drain() {
    char chunk[512];
    for (;;) {
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n <= 0) {
        closed = true;
        return;
      }
      for (ssize_t i = 0; i < n; ++i) (chunk[i] == '\n' ? keepalives : other_bytes) += 1;
    }
  }

  int fd = -1;
  size_t keepalives = 0;
  size_t other_bytes = 0;
  bool closed = false;
};

// Keeps every client's link alive (a keepalive each kKeepaliveEvery, their
// sends spread over the interval) for `duration`, reading what comes.
void keep_alive(std::vector<std::unique_ptr<IdleClient>>& clients, std::chrono::milliseconds duration) {
  auto start = std::chrono::steady_clock::now();
  std::vector<pollfd> fds;
  for (auto& c : clients) fds.push_back({c->fd, POLLIN, 0});
  size_t next = 0;  // the next client to send, round-robin
  for (;;) {
    auto elapsed = std::chrono::steady_clock::now() - start;
    if (elapsed >= duration) return;
    // Clients due by now, at an even pace over each interval.
    auto due = static_cast<size_t>(clients.size() * static_cast<size_t>(elapsed / 1ms) /
                                   static_cast<size_t>(kKeepaliveEvery / 1ms)) + 1;
    for (; next < due; ++next) clients[next % clients.size()]->send_keepalive();
    if (::poll(fds.data(), fds.size(), 2) > 0)
      for (size_t i = 0; i < fds.size(); ++i)
        if (fds[i].revents) clients[i]->drain();
  }
}

// Many links with keepalives only: the server's one timer wheel keeps every
// one of them up through three timeouts and sends each its keepalives.
TEST(ServerTest, ManyIdleLinksStayUpThroughThreeTimeouts) {
  constexpr size_t kClients = 200;
  TestServer ts;
  std::vector<std::unique_ptr<IdleClient>> clients;
  for (size_t i = 0; i < kClients; ++i)
    clients.push_back(std::make_unique<IdleClient>(ts.port(), "idle" + std::to_string(i)));
  auto count_up = [](Server& s) {
    size_t up = 0;
    for (const auto& [id, conn] : s.connections()) up += conn->status() ? 1 : 0;
    return up;
  };
  for (int round = 0; round < 50 && ts.call(count_up) < kClients; ++round) keep_alive(clients, 100ms);
  ASSERT_EQ(ts.call(count_up), kClients) << "not every idle client's link came up";
  for (auto& c : clients) c->keepalives = 0;

  keep_alive(clients, std::chrono::milliseconds(3 * kTimeout));

  EXPECT_EQ(ts.call(count_up), kClients);
  auto totals = ts.call([](Server& s) {
    core::EngineStats sum;
    for (const auto& [id, conn] : s.connections()) {
      sum.connects += conn->stats().connects;
      sum.outages += conn->stats().outages;
    }
    return sum;
  });
  EXPECT_EQ(totals.outages, 0u) << "false outages among idle links";
  EXPECT_EQ(totals.connects, kClients);
  // Keepalives leave nothing stored: every engine gave its buffers back.
  EXPECT_EQ(ts.call([](Server& s) { return s.buffer_blocks_lent(); }), 0u);
  for (size_t i = 0; i < kClients; ++i) {
    EXPECT_FALSE(clients[i]->closed) << "client " << i << " was closed";
    EXPECT_EQ(clients[i]->other_bytes, 0u) << "client " << i << " got more than keepalives";
    // One every T/4: about 12 in 3T; a few make sure its timer keeps firing.
    EXPECT_GE(clients[i]->keepalives, 4u) << "client " << i << " heard too few keepalives";
  }
}

// ================================================================ cancellation

// readline() raced against a timer (asio's awaitable operators): the timer
// wins, the cancelled wait leaves nothing behind, and the line that comes
// later is not lost.
asio::awaitable<bool> readline_or_timeout(Server& s, std::chrono::milliseconds limit) {
  using namespace asio::experimental::awaitable_operators;
  Connection& c = s.connection("dev1");
  asio::steady_timer timer(co_await asio::this_coro::executor, limit);
  auto first = co_await (c.readline() || timer.async_wait(asio::use_awaitable));
  co_return first.index() == 0;
}

TEST(ServerTest, ReadlineRacedAgainstATimerIsCancelledCleanly) {
  TestServer ts;
  RawClient dev(ts.port());
  ASSERT_TRUE(handshake(dev, "dev1"));
  dev.start_keepalive();
  auto raced = ts.spawn([](Server& s) { return readline_or_timeout(s, 100ms); });
  ASSERT_TRUE(ready(raced));
  EXPECT_FALSE(raced.get()) << "readline() won with no line sent";
  EXPECT_TRUE(exchange(ts, dev, "dev1", "after"));
}

// ================================================================ shutdown

TEST(ServerTest, CloseEndsEveryWaitingCall) {
  TestServer ts;
  RawClient dev(ts.port());
  ASSERT_TRUE(handshake(dev, "dev1"));
  dev.start_keepalive();
  auto read = ts.readline("dev1");
  auto write = ts.write("nobody", "x");  // qos, will never be ACKed
  auto client = ts.spawn([](Server& s) -> asio::awaitable<int> {
    co_await s.client("nobody");
    co_return 1;
  });
  EXPECT_FALSE(ready(read, 50ms));

  ts.call([](Server& s) { s.close(); });
  ASSERT_TRUE(ready(read));
  try {
    read.get();
    ADD_FAILURE() << "readline() returned after close()";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(Error::closed));
  }
  ASSERT_TRUE(ready(write));
  EXPECT_EQ(write.get(), make_error_code(Error::closed));
  ASSERT_TRUE(ready(client));
  EXPECT_THROW(client.get(), std::system_error);
  dev.stop_keepalive();
  EXPECT_TRUE(dev.wait_closed(1s)) << "client socket left open after close()";
}

TEST(ServerTest, BadPayloadIsRefusedAtOnceEvenWithQosInFlight) {
  TestServer ts;
  auto pending = ts.write("nobody", "x");  // qos; its client never connects
  EXPECT_FALSE(ready(pending, 50ms));
  // A qos+wait write waits for the one in flight; a line the protocol cannot
  // carry must not wait with it.
  auto empty = ts.write("nobody", "");
  ASSERT_TRUE(ready(empty, 500ms)) << "an empty payload waited for the window";
  EXPECT_EQ(empty.get(), make_error_code(Error::empty_payload));
  auto split = ts.write("nobody", "a\nb");
  ASSERT_TRUE(ready(split, 500ms));
  EXPECT_EQ(split.get(), make_error_code(Error::payload_has_newline));
  auto huge = ts.write("nobody", std::string(RESILINK_MAX_PAYLOAD + 1, 'h'));
  ASSERT_TRUE(ready(huge, 500ms));
  EXPECT_EQ(huge.get(), make_error_code(Error::payload_too_long));
  ts.call([](Server& s) { s.close(); });
}

// ================================================================ handshake deadline race

// The id line and the 2T handshake deadline become ready in the same turn of
// the event loop (the io thread is kept busy across the deadline). Whatever
// the server decides, it must not touch the finished handshake afterwards.
// Run under ASan: the deadline's completion handler may run after the
// coroutine has ended, so it must own what it touches (it once captured the
// coroutine's locals by reference: a use-after-free).
TEST(ServerTest, IdLineArrivingAsTheHandshakeDeadlineFires) {
  TestServer ts;
  RawClient dev(ts.port());
  uint64_t deadline = dev.connected_at() + 2 * kTimeout;
  std::this_thread::sleep_until(std::chrono::steady_clock::time_point(
      std::chrono::milliseconds(deadline - 150)));
  ts.post([deadline] {  // keeps the io thread busy from 2T-150 ms to 2T+100 ms
    while (monotonic_ms() < deadline + 100) std::this_thread::sleep_for(1ms);
  });
  std::this_thread::sleep_for(50ms);
  dev.send("late\n\n");
  RawClient::Read r = dev.read_line(2s);
  // Either served (a keepalive) or refused (closed); never silence.
  EXPECT_NE(r.status, RawClient::Status::timeout);
  // The server is still healthy.
  RawClient other(ts.port());
  ASSERT_TRUE(handshake(other, "other"));
  other.start_keepalive();
  EXPECT_TRUE(exchange(ts, other, "other", "ok"));
}


// ================================================================ on_line: no coroutine per link

TEST(ServerTest, OnLineTakesEveryMessageInOrderAndAcksIt) {
  TestServer ts;
  auto lines = std::make_shared<std::vector<std::string>>();
  ts.call([lines](Server& s) {
    s.on_line([lines](Connection& c, std::string_view line) { lines->push_back(c.id() + ":" + std::string(line)); });
  });
  RawClient dev(ts.port());
  ASSERT_TRUE(handshake(dev, "dev1"));
  // Two bursts of a full receive queue each: nobody calls readline(), so the
  // second is accepted only if the callback took the first.
  const int total = 2 * RESILINK_RX_QUEUE;
  for (int burst = 0; burst < 2; ++burst) {
    std::string bytes;
    for (int i = burst * RESILINK_RX_QUEUE + 1; i <= (burst + 1) * RESILINK_RX_QUEUE; ++i) {
      char line[32];
      snprintf(line, sizeof line, "%02xm%d\n", i, i);
      bytes += line;
    }
    dev.send(bytes);
    for (int i = burst * RESILINK_RX_QUEUE + 1; i <= (burst + 1) * RESILINK_RX_QUEUE; ++i) {
      char ack[8];
      snprintf(ack, sizeof ack, "%02x", i);
      ASSERT_EQ(dev.next_message(), ack) << "message " << i << " was not taken";
    }
  }
  std::vector<std::string> got = ts.call([lines](Server&) { return *lines; });
  ASSERT_EQ(got.size(), size_t(total));
  for (int i = 1; i <= total; ++i) EXPECT_EQ(got[static_cast<size_t>(i - 1)], "dev1:m" + std::to_string(i));
  EXPECT_EQ(ts.stats("dev1").deferred, 0u);
}

}  // namespace
}  // namespace resilink
