// Engine unit tests: one engine, bytes in and out by hand, literal timestamps.
#include "resilink/core/engine.h"

#include <gtest/gtest.h>

#include <string>

#include "support/engine_pair.h"

using namespace resilink::core;
using resilink::test::drain_lines;
using resilink::test::Recorder;
using resilink::test::write_str;

namespace {

std::string take_tx(Engine& e, uint64_t now) {
  const uint8_t* data;
  size_t n = e.tx_pending(&data);
  std::string out(reinterpret_cast<const char*>(data), n);
  e.handle_tx_sent(n, now);
  return out;
}

void rx(Engine& e, const std::string& s, uint64_t now) {
  e.handle_rx(reinterpret_cast<const uint8_t*>(s.data()), s.size(), now);
}

struct ServerEngine : ::testing::Test {
  Recorder events;
  Engine engine{[] {
                  EngineConfig c;
                  c.role = Role::server;
                  c.timeout_ms = 2000;
                  c.window = 4;
                  return c;
                }(),
                &events};
  void connect_and_hear(uint64_t now) {
    ASSERT_EQ(engine.handle_connected(now), Error::ok);
    EXPECT_EQ(take_tx(engine, now), "\n");  // keepalive at once
    rx(engine, "\n", now);
    ASSERT_TRUE(engine.is_up());
  }
};

TEST(ClientEngine, SendsIdAndKeepaliveOnConnectAndDataOnlyAfterHearingServer) {
  Recorder ev;
  EngineConfig c;
  c.client_id = "dev7";
  Engine e(c, &ev);
  ASSERT_EQ(e.start(1), Error::ok);
  EXPECT_EQ(e.state(), LinkState::link_check);
  e.handle_link_ready(2);
  EXPECT_EQ(e.state(), LinkState::connecting);
  e.handle_connected(3);
  EXPECT_EQ(take_tx(e, 3), "dev7\n\n");
  EXPECT_EQ(write_str(e, "hello", true, 4), Error::ok);  // qos accepted while waiting
  EXPECT_EQ(take_tx(e, 4), "");                          // but not sent yet
  rx(e, "\n", 5);
  EXPECT_TRUE(e.is_up());
  EXPECT_EQ(ev.ups, 1);
  EXPECT_EQ(take_tx(e, 5), "00hello\n");
}

TEST(ClientEngine, RejectsMissingOrBadId) {
  EngineConfig c;
  Engine none(c, nullptr);
  EXPECT_EQ(none.start(1), Error::bad_config);
  c.client_id = "has space";
  Engine spaced(c, nullptr);
  EXPECT_EQ(spaced.start(1), Error::bad_config);
}

TEST_F(ServerEngine, AcksEveryMessageAndDiscardsDuplicates) {
  connect_and_hear(10);
  rx(engine, "00a\n01b\n01b\n", 20);
  EXPECT_EQ(drain_lines(engine), "a\nb\n");
  EXPECT_EQ(take_tx(engine, 20), "00\n01\n");
  EXPECT_EQ(engine.stats().duplicates_discarded, 1u);
}

TEST_F(ServerEngine, SecondMidZeroOnOneConnectionIsDuplicateButNewConnectionMeansRestart) {
  connect_and_hear(10);
  rx(engine, "00first\n00first\n", 20);
  EXPECT_EQ(drain_lines(engine), "first\n");
  EXPECT_EQ(engine.stats().duplicates_discarded, 1u);
  connect_and_hear(30);  // the peer reconnected: replaced
  rx(engine, "00first\n", 40);
  // v1 cannot tell a retransmission of mid 0 from a restart on a new
  // connection; it delivers rather than risk losing a restarted peer's message.
  EXPECT_EQ(drain_lines(engine), "first\n");
  EXPECT_EQ(engine.stats().peer_restarts, 2u);
}

TEST_F(ServerEngine, DeclaresOutageAfterTimeoutOfSilence) {
  connect_and_hear(1000);
  engine.handle_timeout(2999);
  EXPECT_TRUE(engine.is_up());
  engine.handle_timeout(3000);
  EXPECT_EQ(engine.state(), LinkState::down);
  ASSERT_EQ(events.downs.size(), 1u);
  EXPECT_EQ(events.downs[0], OutageReason::read_timeout);
  EXPECT_EQ(events.silences[0], 2000u);
}

TEST_F(ServerEngine, FirstReadAfterConnectGetsTwiceTheTimeout) {
  ASSERT_EQ(engine.handle_connected(1000), Error::ok);
  for (uint64_t t = 1000; t < 4999; t += 100) {
    engine.handle_timeout(t);
    take_tx(engine, t);
  }
  engine.handle_timeout(4999);
  EXPECT_EQ(engine.state(), LinkState::await_peer);
  engine.handle_timeout(5000);
  EXPECT_EQ(engine.state(), LinkState::down);
}

TEST_F(ServerEngine, KeepaliveEveryQuarterTimeout) {
  connect_and_hear(1000);
  EXPECT_EQ(take_tx(engine, 1000), "");
  EXPECT_EQ(engine.next_deadline(), 1500u);
  engine.handle_timeout(1499);
  EXPECT_EQ(take_tx(engine, 1499), "");
  rx(engine, "\n", 1499);
  engine.handle_timeout(1500);
  EXPECT_EQ(take_tx(engine, 1500), "\n");
}

TEST_F(ServerEngine, ProtocolErrorsNameWhatAndWhere) {
  struct Case {
    std::string bytes;
    Error error;
    uint32_t line;
    uint64_t offset;  // first byte of the bad line
  } cases[] = {
      {"\n01ok\nzzbad\n", Error::bad_message_id, 3, 6},
      {"x\n", Error::malformed_line, 1, 0},
      {"\n00" + std::string(RESILINK_MAX_LINE, 'a') + "\n", Error::line_too_long, 2, 1},
  };
  uint64_t now = 100;
  for (const auto& c : cases) {
    ASSERT_EQ(engine.handle_connected(now), Error::ok);
    take_tx(engine, now);
    rx(engine, c.bytes, now);
    EXPECT_EQ(engine.state(), LinkState::down) << c.bytes;
    EXPECT_EQ(engine.last_protocol_error().error, c.error) << error_name(c.error);
    EXPECT_EQ(engine.last_protocol_error().line, c.line) << error_name(c.error);
    EXPECT_EQ(engine.last_protocol_error().byte_offset, c.offset) << error_name(c.error);
    EXPECT_EQ(events.downs.back(), OutageReason::protocol_error);
    now += 10;
  }
  EXPECT_EQ(drain_lines(engine), "ok\n");  // accepted before the error: kept
}

TEST_F(ServerEngine, WriteValidatesPayload) {
  connect_and_hear(10);
  EXPECT_EQ(write_str(engine, "", true, 11), Error::empty_payload);
  EXPECT_EQ(write_str(engine, "a\nb", true, 11), Error::payload_has_newline);
  EXPECT_EQ(write_str(engine, std::string(RESILINK_MAX_LINE - 1, 'x'), true, 11),
            Error::payload_too_long);
  EXPECT_EQ(write_str(engine, std::string(RESILINK_MAX_LINE - 2, 'x'), true, 11), Error::ok);
  EXPECT_EQ(error_kind(Error::payload_has_newline), ErrorKind::usage);
  EXPECT_EQ(error_kind(Error::bad_message_id), ErrorKind::protocol);
  EXPECT_STREQ(error_name(Error::line_too_long), "line_too_long");
}

TEST_F(ServerEngine, QosRetransmittedAfterTimeoutWithoutAck) {
  connect_and_hear(0);
  uint32_t ticket = 0;
  ASSERT_EQ(write_str(engine, "m", true, 100, &ticket), Error::ok);
  EXPECT_EQ(take_tx(engine, 100), "00m\n");
  for (uint64_t t = 500; t < 2100; t += 400) {  // peer alive, keepalives both ways
    rx(engine, "\n", t);
    engine.handle_timeout(t);
    take_tx(engine, t);
  }
  engine.handle_timeout(2100);
  EXPECT_EQ(take_tx(engine, 2100), "00m\n");
  EXPECT_EQ(engine.stats().retransmits, 1u);
  EXPECT_TRUE(engine.is_pending(ticket));
  rx(engine, "00\n", 2200);
  EXPECT_FALSE(engine.is_pending(ticket));
  ASSERT_EQ(events.acked.size(), 1u);
  EXPECT_EQ(events.acked[0], ticket);
}

TEST_F(ServerEngine, NonQosNeedsLinkAndIsNeverRetransmitted) {
  EXPECT_EQ(write_str(engine, "x", false, 1), Error::link_down);
  connect_and_hear(10);
  ASSERT_EQ(write_str(engine, "x", false, 11), Error::ok);
  EXPECT_EQ(take_tx(engine, 11), "00x\n");
  for (uint64_t t = 500; t < 6000; t += 400) {
    rx(engine, "\n", t);
    engine.handle_timeout(t);
    EXPECT_EQ(take_tx(engine, t).find('x'), std::string::npos);
  }
}

TEST_F(ServerEngine, WindowBoundsQosInFlight) {
  connect_and_hear(10);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(write_str(engine, "q", true, 11), Error::ok);
  EXPECT_EQ(write_str(engine, "q", true, 11), Error::would_block);
  rx(engine, "00\n", 12);
  EXPECT_EQ(write_str(engine, "q", true, 12), Error::ok);
}

TEST_F(ServerEngine, PeerThatStopsTakingBytesIsAnOutage) {
  connect_and_hear(0);
  ASSERT_EQ(write_str(engine, "m", true, 10), Error::ok);  // queued, never taken
  for (uint64_t t = 400; t < 2000; t += 400) {
    rx(engine, "\n", t);
    engine.handle_timeout(t);
  }
  engine.handle_timeout(2010);
  EXPECT_EQ(engine.state(), LinkState::down);
  EXPECT_EQ(events.downs.back(), OutageReason::send_stalled);
  EXPECT_TRUE(engine.inflight() == 1);  // the message is kept for the next link
}

TEST_F(ServerEngine, FullReceiveQueueRefusesWithoutAckAndKeepsOrder) {
  connect_and_hear(0);
  std::string burst;
  for (int i = 1; i <= RESILINK_RX_QUEUE + 2; ++i) {
    char line[16];
    snprintf(line, sizeof line, "%02xm%d\n", i, i);
    burst += line;
  }
  rx(engine, burst, 10);
  EXPECT_EQ(engine.rx_queued(), size_t{RESILINK_RX_QUEUE});
  EXPECT_EQ(engine.stats().deferred, 2u);
  std::string acks = take_tx(engine, 10);
  char refused[8];
  snprintf(refused, sizeof refused, "%02x\n", RESILINK_RX_QUEUE + 1);
  EXPECT_EQ(acks.find(refused), std::string::npos) << "refused message must not be ACKed";
  drain_lines(engine);
  // The sender resends oldest first: the later one alone is still refused.
  char later[16], first[16];
  snprintf(later, sizeof later, "%02xm%d\n", RESILINK_RX_QUEUE + 2, RESILINK_RX_QUEUE + 2);
  snprintf(first, sizeof first, "%02xm%d\n", RESILINK_RX_QUEUE + 1, RESILINK_RX_QUEUE + 1);
  rx(engine, later, 20);
  EXPECT_EQ(engine.rx_queued(), 0u);
  rx(engine, std::string(first) + later, 30);
  char expect[32];
  snprintf(expect, sizeof expect, "m%d\nm%d\n", RESILINK_RX_QUEUE + 1, RESILINK_RX_QUEUE + 2);
  EXPECT_EQ(drain_lines(engine), expect);
}

TEST_F(ServerEngine, RefusalBlockStaysWhileTheRefusedMidKeepsComing) {
  connect_and_hear(0);
  std::string fill;
  for (int i = 1; i <= RESILINK_RX_QUEUE; ++i) {
    char line[16];
    snprintf(line, sizeof line, "%02xq\n", i);
    fill += line;
  }
  rx(engine, fill, 10);
  char refused[16], newer[16], refused_ack[8];
  snprintf(refused, sizeof refused, "%02xX\n", RESILINK_RX_QUEUE + 1);
  snprintf(newer, sizeof newer, "%02xY\n", RESILINK_RX_QUEUE + 2);
  snprintf(refused_ack, sizeof refused_ack, "%02x\n", RESILINK_RX_QUEUE + 1);
  // Keepalives both ways keep the link up across the 3 x T below.
  auto live_until = [&](uint64_t from, uint64_t to) {
    for (uint64_t t = from; t < to; t += 400) {
      rx(engine, "\n", t);
      engine.handle_timeout(t);
      take_tx(engine, t);
    }
  };
  rx(engine, refused, 100);   // refused: the queue is full
  live_until(100, 2100);
  rx(engine, refused, 2100);  // its resend, one T later: refused again
  live_until(2100, 5100);
  drain_lines(engine);        // room at last
  rx(engine, newer, 5100);    // 2.5 T after the first refusal, 1.5 T after the last
  EXPECT_EQ(engine.rx_queued(), 0u) << "a newer message overtook the refused one";
  rx(engine, std::string(refused) + newer, 5200);
  EXPECT_EQ(drain_lines(engine), "X\nY\n");
  EXPECT_NE(take_tx(engine, 5200).find(refused_ack), std::string::npos);
}

// Found by fuzz/engine_pair_fuzz.cpp: a refused non-qos message (never
// resent) holds the block and lapses; a newer mid refused after the lapse
// becomes the block. A qos message refused behind the first block is older
// than that and must still go first, not be refused behind the newer one
// (qos delivered out of order).
TEST_F(ServerEngine, AMidOlderThanTheBlockedOneIsNotHeldBehindIt) {
  connect_and_hear(0);
  std::string fill;
  for (int i = 1; i <= RESILINK_RX_QUEUE; ++i) {
    char line[16];
    snprintf(line, sizeof line, "%02xq\n", i);
    fill += line;
  }
  rx(engine, fill, 10);
  char lost[16], first[16], second[16];
  snprintf(lost, sizeof lost, "%02xN\n", RESILINK_RX_QUEUE + 1);    // non-qos: never resent
  snprintf(first, sizeof first, "%02xA\n", RESILINK_RX_QUEUE + 2);  // qos
  snprintf(second, sizeof second, "%02xB\n", RESILINK_RX_QUEUE + 3);  // qos
  auto live_until = [&](uint64_t from, uint64_t to) {
    for (uint64_t t = from; t < to; t += 400) {
      rx(engine, "\n", t);
      engine.handle_timeout(t);
      take_tx(engine, t);
    }
  };
  rx(engine, lost, 100);          // refused: the queue is full; holds the block
  rx(engine, first, 1800);        // refused behind it
  live_until(1800, 4100);         // the block of `lost` lapses at 4100
  engine.handle_timeout(4100);
  rx(engine, second, 4100);       // queue still full: refused
  drain_lines(engine);            // room at last
  rx(engine, std::string(first) + second, 4200);  // the sender resends oldest first
  EXPECT_EQ(drain_lines(engine), "A\nB\n") << "qos messages delivered out of order";
}

// Found by the simulator (seed 54, docs/PROTOCOL.md §8): a refused non-qos
// message's block lapses before the qos messages refused behind it are resent
// (they wait T after their last send); a newer qos message sent meanwhile must
// still be refused, or it overtakes them.
TEST_F(ServerEngine, AfterANonQosBlockLapsesTheQosRefusedBehindItStillGoFirst) {
  connect_and_hear(0);
  std::string fill;
  for (int i = 1; i <= RESILINK_RX_QUEUE; ++i) {
    char line[16];
    snprintf(line, sizeof line, "%02xq\n", i);
    fill += line;
  }
  rx(engine, fill, 10);
  char lost[16], first[16], second[16], newer[16];
  snprintf(lost, sizeof lost, "%02xN\n", RESILINK_RX_QUEUE + 1);      // non-qos: never resent
  snprintf(first, sizeof first, "%02xA\n", RESILINK_RX_QUEUE + 2);    // qos, refused behind it
  snprintf(second, sizeof second, "%02xB\n", RESILINK_RX_QUEUE + 3);  // qos, refused behind it
  snprintf(newer, sizeof newer, "%02xC\n", RESILINK_RX_QUEUE + 4);    // qos, written later
  rx(engine, std::string(lost) + first + second, 100);  // all refused: the queue is full
  for (uint64_t t = 500; t <= 4100; t += 400) {  // the peer stays heard; A and B resent at T
    rx(engine, t == 2100 ? std::string(first) + second : std::string("\n"), t);
    engine.handle_timeout(t);
    take_tx(engine, t);
  }
  // The block of `lost` lapsed at 4100 (2T after it was seen). The reader
  // makes room; C arrives before A and B are resent (at 4100 + T).
  drain_lines(engine);
  rx(engine, newer, 4200);
  EXPECT_EQ(drain_lines(engine), "") << "C overtook A and B";
  rx(engine, std::string(first) + second + newer, 6100);  // the resend, oldest first
  EXPECT_EQ(drain_lines(engine), "A\nB\nC\n");
}

// Found by fuzz/engine_pair_fuzz.cpp: while the queue stays full a sender
// may run its (non-qos) mids all the way around the id space. Refused mids
// are not taken, but they still move the seen-map on: otherwise a new message
// reusing a mid seen on the previous lap is taken for a duplicate, ACKed and
// dropped (a qos message lost).
TEST_F(ServerEngine, MidsRefusedAllTheWayAroundDoNotMakeTheNextLapLookSeen) {
  connect_and_hear(0);
  std::string fill;
  for (int i = 1; i <= RESILINK_RX_QUEUE; ++i) {
    char line[16];
    snprintf(line, sizeof line, "%02xq\n", i);
    fill += line;
  }
  rx(engine, fill, 10);
  std::string refused;
  for (int i = RESILINK_RX_QUEUE + 1; i <= 255; ++i) {
    char line[16];
    snprintf(line, sizeof line, "%02xn\n", i);
    refused += line;
  }
  rx(engine, refused, 20);  // all refused: the queue is full
  drain_lines(engine);
  // The sender's next lap (mids skip 0 after the first), a qos message resent
  // every T until taken; it waits behind the refused run (each refused mid
  // lapses in turn), but it must never be taken for a duplicate.
  std::string got;
  for (uint64_t t = 30; t < 600000 && got.empty(); t += 500) {
    rx(engine, t % 2000 == 30 ? "01again\n" : "\n", t);
    engine.handle_timeout(t);
    take_tx(engine, t);
    got = drain_lines(engine);
  }
  EXPECT_EQ(got, "again\n");
  EXPECT_EQ(engine.stats().duplicates_discarded, 0u) << "a new message on the next lap was taken for a duplicate";
}

TEST_F(ServerEngine, MidsLostWithAConnectionDoNotMakeTheNextLapLookSeen) {
  // The sender's first lap: 0x00..0x1f taken, 0x20..0x80 refused (queue
  // full), 0x81..0xc4 lost with the connection (never arrive). The next
  // connection goes on from 0xc5 around to a qos message at 0x0c, a mid taken
  // on the first lap: it is new and must be taken, not ACKed as a duplicate.
  connect_and_hear(0);
  std::string lap;
  for (int i = 0; i <= 0x80; ++i) {
    char line[16];
    snprintf(line, sizeof line, "%02xn\n", i);
    lap += line;
  }
  rx(engine, lap, 10);
  ASSERT_EQ(engine.rx_queued(), size_t{RESILINK_RX_QUEUE});
  drain_lines(engine);
  engine.handle_link_lost(OutageReason::peer_closed, 20);
  connect_and_hear(30);
  for (int i = 0xc5; i != 0x0c; i = i == 255 ? 1 : i + 1) {
    char line[16];
    snprintf(line, sizeof line, "%02xn\n", i);
    rx(engine, line, 40);
    drain_lines(engine);  // the application keeps up now
  }
  rx(engine, "0cqos\n", 50);
  EXPECT_EQ(drain_lines(engine), "qos\n") << "a new mid on the next lap was taken for a duplicate";
  EXPECT_EQ(engine.stats().duplicates_discarded, 0u);
}

TEST_F(ServerEngine, NonQosPastAHundredUnacknowledgedMidsIsSentWithQos) {
  connect_and_hear(0);
  // The peer acknowledges nothing (its queue is full): after 100 mids the
  // next non-qos message is kept and resent until acknowledged, and nothing
  // more goes out past 127 mids beyond the newest acknowledged one.
  for (int i = 0; i < 100; ++i) ASSERT_EQ(write_str(engine, "n", false, 1), Error::ok) << i;
  EXPECT_EQ(engine.inflight(), 0u);
  ASSERT_EQ(write_str(engine, "u", false, 1), Error::ok);
  EXPECT_EQ(engine.stats().nonqos_upgraded, 1u);
  EXPECT_EQ(engine.inflight(), 1u);
  take_tx(engine, 1);
  rx(engine, "\n", 1500);
  engine.handle_timeout(2001);
  EXPECT_NE(take_tx(engine, 2001).find("64u\n"), std::string::npos) << "the upgraded message is resent";
  rx(engine, "64\n", 2002);  // acknowledged: the sender may go on as before
  EXPECT_EQ(engine.inflight(), 0u);
  EXPECT_EQ(write_str(engine, "n", false, 2003), Error::ok);
  EXPECT_EQ(engine.stats().nonqos_upgraded, 1u);
  EXPECT_EQ(engine.inflight(), 0u);
}

TEST_F(ServerEngine, UnacknowledgedMidsStopAtAHundredPlusTheWindow) {
  // The peer acknowledges nothing: 100 non-qos messages go out as such, then
  // only as many more as the window holds, far below the 128 the peer's
  // seen-map can follow.
  connect_and_hear(0);
  int sent = 0;
  for (int i = 0; i < 300; ++i) {
    Error e = write_str(engine, "m", false, 1);
    if (e != Error::ok) {
      EXPECT_EQ(e, Error::would_block);
      break;
    }
    ++sent;
  }
  EXPECT_EQ(sent, 100 + 4);
  EXPECT_EQ(engine.stats().nonqos_upgraded, 4u);
  EXPECT_EQ(write_str(engine, "m", true, 1), Error::would_block);
}

TEST_F(ServerEngine, CloseByTheApplicationIsNotAnOutage) {
  connect_and_hear(0);
  engine.handle_timeout(2000);  // a real outage first
  ASSERT_EQ(engine.stats().outages, 1u);
  connect_and_hear(3000);
  engine.close(3100);
  EXPECT_EQ(engine.state(), LinkState::closed);
  EXPECT_EQ(engine.stats().outages, 1u);
  EXPECT_EQ(engine.stats().last_outage, OutageReason::read_timeout);
  ASSERT_FALSE(events.downs.empty());
  EXPECT_EQ(events.downs.back(), OutageReason::closed_by_app);  // still told to close
}

TEST(ClientEngineBackoff, GrowsCappedAndJitteredDeterministically) {
  auto delays = [](uint32_t seed) {
    EngineConfig c;
    c.client_id = "d";
    c.random_seed = seed;
    c.backoff_initial_ms = 100;
    c.backoff_max_ms = 1000;
    Engine e(c, nullptr);
    e.start(0);
    e.handle_link_ready(0);
    std::vector<uint64_t> out;
    uint64_t now = 0;
    for (int i = 0; i < 8; ++i) {
      e.handle_connect_failed(now);
      uint64_t due = e.next_deadline();
      out.push_back(due - now);
      now = due;
      e.handle_timeout(now);
      EXPECT_EQ(e.state(), LinkState::connecting);
    }
    return out;
  };
  auto a = delays(1), b = delays(1), c = delays(2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  uint64_t cap = 100;
  for (uint64_t d : a) {
    EXPECT_GE(d, cap / 2);
    EXPECT_LE(d, cap);
    cap = std::min<uint64_t>(cap * 2, 1000);
  }
}

TEST(ClientEngineConnect, HangingConnectTimesOut) {
  EngineConfig c;
  c.client_id = "d";
  c.timeout_ms = 1000;
  Engine e(c, nullptr);
  e.start(0);
  e.handle_link_ready(0);
  e.handle_timeout(1999);
  EXPECT_EQ(e.state(), LinkState::connecting);
  e.handle_timeout(2000);
  EXPECT_EQ(e.state(), LinkState::connect_wait);
  EXPECT_EQ(e.stats().connect_failures, 1u);
}

// Found by fuzz/engine_fuzz.cpp: a driver that wakes late from connect_wait
// (suspended, or busy past the backoff) starts its attempt now, so the attempt
// gets its whole connect timeout instead of failing at the next turn.
TEST(ClientEngineConnect, AttemptStartedLateAfterBackoffGetsItsFullTimeout) {
  EngineConfig c;
  c.client_id = "d";
  c.timeout_ms = 1000;  // connect timeout 2000
  Engine e(c, nullptr);
  e.start(0);
  e.handle_link_ready(0);
  e.handle_connect_failed(0);
  const uint64_t woke = e.next_deadline() + 5000;  // long after the backoff ended
  e.handle_timeout(woke);
  ASSERT_EQ(e.state(), LinkState::connecting);
  EXPECT_EQ(e.next_deadline(), woke + 2000) << "the attempt's timeout counts from when it starts";
  e.handle_timeout(woke + 1);
  EXPECT_EQ(e.state(), LinkState::connecting) << "the late attempt failed without being tried";
  EXPECT_EQ(e.stats().connect_failures, 1u);
}

// Found by fuzz/engine_fuzz.cpp: with the send buffer exactly full no
// keepalive can be queued, so its deadline must not be reported (it would lie
// in the past and the driver would spin until the send-stall timeout).
TEST_F(ServerEngine, FullSendBufferReportsNoPastKeepaliveDeadline) {
  connect_and_hear(0);
  const uint8_t* tx;
  ASSERT_EQ(take_tx(engine, 0), "");
  // Fill the buffer to the last byte with non-qos messages nobody takes.
  const size_t line = RESILINK_MAX_PAYLOAD + 3;
  while (engine.tx_pending(&tx) + line <= RESILINK_TX_BUFFER)
    ASSERT_EQ(write_str(engine, std::string(RESILINK_MAX_PAYLOAD, 'x'), false, 1), Error::ok);
  size_t room = RESILINK_TX_BUFFER - engine.tx_pending(&tx);
  if (room > 0) {
    ASSERT_GE(room, 4u) << "this test needs a payload of at least one byte to fill the rest";
    ASSERT_EQ(write_str(engine, std::string(room - 3, 'y'), false, 1), Error::ok);
  }
  ASSERT_EQ(engine.tx_pending(&tx), static_cast<size_t>(RESILINK_TX_BUFFER));
  const uint64_t later = 1 + 2000 / 4 + 10;  // a keepalive is due, and cannot be queued
  rx(engine, "\n", later);
  engine.handle_timeout(later);
  ASSERT_TRUE(engine.is_up());
  EXPECT_GT(engine.next_deadline(), later) << "a deadline in the past makes the driver spin";
  engine.handle_timeout(1 + 2000);  // still nothing taken for the timeout: stalled
  EXPECT_EQ(engine.state(), LinkState::down);
  EXPECT_EQ(events.downs.back(), OutageReason::send_stalled);
}

}  // namespace
