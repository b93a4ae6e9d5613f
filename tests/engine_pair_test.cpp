// Two engines back to back on a virtual clock: outages, lost ACKs,
// retransmits, restarts. No sockets; every run is instant and repeatable.
#include <gtest/gtest.h>

#include "support/engine_pair.h"

using namespace resilink::core;
using resilink::test::drain_lines;
using resilink::test::EnginePair;
using resilink::test::write_str;

namespace {

constexpr uint32_t T = 2000;

TEST(EnginePair, ConnectsAndStaysUpWhenIdle) {
  EnginePair p;
  p.start();
  ASSERT_TRUE(p.drive_until([&] { return p.both_up(); }, 100));
  p.advance(60000, 5);  // a minute of keepalives only
  EXPECT_TRUE(p.both_up());
  EXPECT_EQ(p.client->stats().outages, 0u);
  EXPECT_EQ(p.server->stats().outages, 0u);
  EXPECT_GE(p.client->stats().keepalives_sent, 60000u / (T / 4) - 2);
}

TEST(EnginePair, QosBothWaysInOrder) {
  EnginePair p({.window = 4});
  p.start();
  ASSERT_TRUE(p.drive_until([&] { return p.both_up(); }, 100));
  std::string expect_c, expect_s, got_c, got_s;
  for (int i = 0; i < 200; ++i) {
    std::string m = "m" + std::to_string(i);
    ASSERT_TRUE(p.drive_until([&] { return p.client->can_write(true, m.size()); }, 1000));
    ASSERT_EQ(write_str(*p.client, m, true, p.now), Error::ok);
    ASSERT_EQ(write_str(*p.server, m, true, p.now), Error::ok);
    expect_c += m + "\n";
    p.step();
    got_s += drain_lines(*p.server);
    got_c += drain_lines(*p.client);
  }
  ASSERT_TRUE(p.drive_until([&] { return p.client->inflight() == 0 && p.server->inflight() == 0; }, 1000));
  got_s += drain_lines(*p.server);
  got_c += drain_lines(*p.client);
  EXPECT_EQ(got_s, expect_c);
  EXPECT_EQ(got_c, expect_c);
}

TEST(EnginePair, BothEndsDetectStallWithinTimeoutPlusQuarter) {
  EnginePair p;
  p.start();
  ASSERT_TRUE(p.drive_until([&] { return p.both_up(); }, 100));
  p.advance(3333);
  uint64_t outage_start = p.now;
  p.up_ok = p.down_ok = false;
  uint64_t client_down = 0, server_down = 0;
  p.drive_until([&] {
    if (!client_down && !p.client->is_up()) client_down = p.now;
    if (!server_down && !p.server->is_up()) server_down = p.now;
    return client_down && server_down;
  }, 3 * T);
  ASSERT_TRUE(client_down && server_down);
  EXPECT_LE(client_down - outage_start, T + T / 4);
  EXPECT_LE(server_down - outage_start, T + T / 4);
  EXPECT_GE(client_down - outage_start, T - T / 4);
  EXPECT_EQ(p.client_events.downs.at(0), OutageReason::read_timeout);
  EXPECT_EQ(p.server_events.downs.at(0), OutageReason::read_timeout);
}

TEST(EnginePair, ShortStallIsRiddenOutWithoutOutage) {
  EnginePair p;
  p.start();
  ASSERT_TRUE(p.drive_until([&] { return p.both_up(); }, 100));
  p.up_ok = p.down_ok = false;
  p.advance(T / 2);
  p.up_ok = p.down_ok = true;
  p.advance(5 * T);
  EXPECT_TRUE(p.both_up());
  EXPECT_EQ(p.client->stats().outages + p.server->stats().outages, 0u);
}

TEST(EnginePair, WriteDuringOutageIsDeliveredOnceAfterRecovery) {
  EnginePair p;
  p.start();
  ASSERT_TRUE(p.drive_until([&] { return p.both_up(); }, 100));
  ASSERT_EQ(write_str(*p.client, "first", true, p.now), Error::ok);
  ASSERT_TRUE(p.drive_until([&] { return p.client->inflight() == 0; }, 100));
  p.up_ok = p.down_ok = false;
  p.reachable = false;
  ASSERT_TRUE(p.drive_until([&] { return !p.client->is_up() && !p.server->is_up(); }, 3 * T));
  uint32_t ticket = 0;
  ASSERT_EQ(write_str(*p.client, "during", true, p.now, &ticket), Error::ok);
  ASSERT_EQ(write_str(*p.server, "to-client", true, p.now), Error::ok);
  p.advance(5 * T, 5);
  p.up_ok = p.down_ok = p.reachable = true;
  uint64_t link_back = p.now;
  ASSERT_TRUE(p.drive_until([&] { return !p.client->is_pending(ticket) && p.server->inflight() == 0; },
                            30000));
  EXPECT_EQ(drain_lines(*p.server), "first\nduring\n");
  EXPECT_EQ(drain_lines(*p.client), "to-client\n");
  // Recovery is bounded by the backoff cap plus a round trip.
  EXPECT_LE(p.now - link_back, 8000u + 100u);
}

TEST(EnginePair, LostAckIsRetransmittedAndDeduplicated) {
  EnginePair p;
  p.start();
  ASSERT_TRUE(p.drive_until([&] { return p.both_up(); }, 100));
  ASSERT_EQ(write_str(*p.client, "zero", true, p.now), Error::ok);
  ASSERT_TRUE(p.drive_until([&] { return p.client->inflight() == 0; }, 100));
  // The server receives "one" but its ACK dies with the connection.
  p.down_ok = false;
  ASSERT_EQ(write_str(*p.client, "one", true, p.now), Error::ok);
  p.advance(10);
  EXPECT_EQ(drain_lines(*p.server), "zero\none\n");
  p.up_ok = false;
  ASSERT_TRUE(p.drive_until([&] { return !p.client->is_up() && !p.server->is_up(); }, 3 * T));
  p.up_ok = p.down_ok = true;
  ASSERT_TRUE(p.drive_until([&] { return p.client->inflight() == 0; }, 30000));
  EXPECT_EQ(drain_lines(*p.server), "");  // retransmission discarded
  EXPECT_EQ(p.server->stats().duplicates_discarded, 1u);
  EXPECT_EQ(p.client->stats().retransmits, 1u);
}

TEST(EnginePair, LostAckOfMidZeroAcrossReconnectIsTheV1Duplicate) {
  // The protocol's known weak spot, pinned so a change in it is noticed.
  EnginePair p;
  p.start();
  ASSERT_TRUE(p.drive_until([&] { return p.both_up(); }, 100));
  p.down_ok = false;
  ASSERT_EQ(write_str(*p.client, "boot", true, p.now), Error::ok);
  p.advance(10);
  EXPECT_EQ(drain_lines(*p.server), "boot\n");
  p.up_ok = false;
  ASSERT_TRUE(p.drive_until([&] { return !p.client->is_up() && !p.server->is_up(); }, 3 * T));
  p.up_ok = p.down_ok = true;
  ASSERT_TRUE(p.drive_until([&] { return p.client->inflight() == 0; }, 30000));
  EXPECT_EQ(drain_lines(*p.server), "boot\n");
  EXPECT_EQ(p.server->stats().peer_restarts, 2u);
}

TEST(EnginePair, ClientRebootRestartsMidsAndServerDeliversAgain) {
  EnginePair p;
  p.start();
  ASSERT_TRUE(p.drive_until([&] { return p.both_up(); }, 100));
  for (const char* m : {"a", "b", "c"}) {
    ASSERT_EQ(write_str(*p.client, m, true, p.now), Error::ok);
    ASSERT_TRUE(p.drive_until([&] { return p.client->inflight() == 0; }, 100));
  }
  EXPECT_EQ(drain_lines(*p.server), "a\nb\nc\n");
  p.reboot_client();
  ASSERT_TRUE(p.drive_until([&] { return p.client->is_up(); }, 10 * T));
  ASSERT_EQ(write_str(*p.client, "after-reboot", true, p.now), Error::ok);
  ASSERT_EQ(write_str(*p.client, "x", true, p.now), Error::would_block);  // window 1
  ASSERT_TRUE(p.drive_until([&] { return p.client->inflight() == 0; }, 10 * T));
  ASSERT_EQ(write_str(*p.client, "b", true, p.now), Error::ok);  // mid 1 again: new
  ASSERT_TRUE(p.drive_until([&] { return p.client->inflight() == 0; }, 10 * T));
  EXPECT_EQ(drain_lines(*p.server), "after-reboot\nb\n");
  EXPECT_EQ(p.server->stats().peer_restarts, 2u);
  // The server's old connection was replaced by the new one, never doubled.
  EXPECT_LE(p.server->stats().outages, 1u);
}

TEST(EnginePair, SlowReaderGetsEverythingInOrderThroughRefusals) {
  EnginePair p({.window = 8});
  p.start();
  ASSERT_TRUE(p.drive_until([&] { return p.both_up(); }, 100));
  std::string expect, got;
  int sent = 0;
  for (int round = 0; round < 4000 && (sent < 100 || p.client->inflight() > 0); ++round) {
    while (sent < 100 && p.client->can_write(true, 8)) {
      std::string m = "n" + std::to_string(sent++);
      ASSERT_EQ(write_str(*p.client, m, true, p.now), Error::ok);
      expect += m + "\n";
    }
    p.advance(10);
    if (round % 50 == 0) got += drain_lines(*p.server);  // reads rarely
  }
  got += drain_lines(*p.server);
  EXPECT_EQ(got, expect);
  EXPECT_GT(p.server->stats().deferred, 0u);
  EXPECT_EQ(p.client->stats().outages, 0u);
}

TEST(EnginePair, OutagesRepeatedNothingLostDuplicatedOrReordered) {
  EnginePair p({.timeout_ms = 400, .seed = 3, .window = 4});
  p.start();
  std::string expect_s, expect_c, got_s, got_c;
  int next = 0;
  for (int cycle = 0; cycle < 30; ++cycle) {
    for (int k = 0; k < 300; ++k) {
      while (p.client->can_write(true, 8) && p.server->can_write(true, 8)) {
        std::string m = std::to_string(next++);
        ASSERT_EQ(write_str(*p.client, m, true, p.now), Error::ok);
        ASSERT_EQ(write_str(*p.server, m, true, p.now), Error::ok);
        expect_s += m + "\n";
        expect_c += m + "\n";
      }
      p.advance(1);
      got_s += drain_lines(*p.server);
      got_c += drain_lines(*p.client);
    }
    p.up_ok = p.down_ok = false;  // outage of varying length
    p.advance(100 + (cycle * 137) % 1500);
    p.up_ok = p.down_ok = true;
  }
  ASSERT_TRUE(p.drive_until([&] { return p.client->inflight() == 0 && p.server->inflight() == 0; },
                            60000));
  got_s += drain_lines(*p.server);
  got_c += drain_lines(*p.client);
  EXPECT_EQ(got_s, expect_s);
  EXPECT_EQ(got_c, expect_c);
  EXPECT_GT(p.client->stats().outages, 10u);
}

}  // namespace
