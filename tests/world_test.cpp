// Whole simulated worlds: replay, a planted bug, detection, reboots.
#include "resilink/sim/world.h"

#include <gtest/gtest.h>

using namespace resilink::sim;

namespace {

WorldOptions small(uint64_t minutes = 10) {
  WorldOptions o;
  o.clients = 4;
  o.fault_ms = minutes * 60000;
  o.fault_every_ms = 20000;
  o.server_restart_every_ms = 0;
  o.replay = "resilink sim --clients 4";
  return o;
}

FaultMix only(uint32_t FaultMix::*kind) {
  FaultMix m{0, 0, 0, 0, 0, 0};
  m.*kind = 1;
  return m;
}

std::string failures(const WorldResult& r) {
  std::string out;
  for (const auto& f : r.failures) out += f;
  return out;
}

}  // namespace

TEST(World, SameSeedSameTraceHash) {
  WorldOptions o = small();
  o.server_restart_every_ms = 120000;
  WorldResult a = run_world(42, o), b = run_world(42, o), c = run_world(43, o);
  EXPECT_GT(a.events, 10000u);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.counts.qos_delivered, b.counts.qos_delivered);
  EXPECT_NE(a.trace_hash, c.trace_hash);
  EXPECT_EQ(a.counts.total_violations(), 0u) << failures(a);
}

TEST(World, PlantedDuplicatingNetworkIsCaughtWithItsSeed) {
  WorldOptions o = small();
  o.sabotage = Sabotage::duplicate_line;
  WorldResult r = run_world(7, o);
  EXPECT_GT(r.counts.violations[static_cast<size_t>(Violation::duplicate)], 0u);
  ASSERT_FALSE(r.failures.empty());
  const std::string& first = r.failures.front();
  EXPECT_NE(first.find("FAIL seed=7 kind=duplicate"), std::string::npos) << first;
  EXPECT_NE(first.find("replay: resilink sim --clients 4 --seed 7 --trace"), std::string::npos) << first;
  EXPECT_NE(first.find("last events of this link"), std::string::npos) << first;
}

TEST(World, OutagesAreDetectedWithinTimeoutPlusAQuarterAtBothEnds) {
  WorldOptions o = small(30);
  o.mix = only(&FaultMix::outage);
  WorldResult r = run_world(11, o);
  EXPECT_EQ(r.counts.total_violations(), 0u) << failures(r);
  EXPECT_GT(r.outages_long, 20u);
  ASSERT_FALSE(r.detect_client_ms.empty());
  ASSERT_FALSE(r.detect_server_ms.empty());
  for (uint32_t d : r.detect_client_ms) EXPECT_LE(d, o.timeout_ms + o.timeout_ms / 4);
  for (uint32_t d : r.detect_server_ms) EXPECT_LE(d, o.timeout_ms + o.timeout_ms / 4);
}

TEST(World, HalfOpenOutagesAreDetectedAtBothEnds) {
  WorldOptions o = small(30);
  o.mix = only(&FaultMix::half_open);
  WorldResult r = run_world(12, o);
  EXPECT_EQ(r.counts.total_violations(), 0u) << failures(r);
  EXPECT_GT(r.detect_client_ms.size(), 10u);
  EXPECT_GT(r.detect_server_ms.size(), 10u);
}

TEST(World, RebootLossesAreClassifiedNotViolations) {
  WorldOptions o = small(30);
  o.mix = only(&FaultMix::reboot);
  o.fault_every_ms = 10000;
  o.message_every_ms = 300;  // enough traffic that reboots catch messages queued
  WorldResult r = run_world(13, o);
  EXPECT_GT(r.reboots, 50u);
  EXPECT_GT(r.counts.lost_with_sender, 0u);
  EXPECT_EQ(r.counts.total_violations(), 0u) << failures(r);
  EXPECT_EQ(r.counts.qos_delivered + r.counts.lost_with_sender + r.counts.lost_unread +
                r.counts.v1_mid0_lost,
            r.counts.qos_messages);
}

TEST(World, EverythingIsDeliveredWithinTheLivenessBound) {
  WorldOptions o = small(20);
  o.server_restart_every_ms = 60000;
  WorldResult r = run_world(14, o);
  EXPECT_EQ(r.counts.total_violations(), 0u) << failures(r);
  EXPECT_LE(r.quiesce_ms, r.liveness_bound_ms);
  EXPECT_GT(r.counts.qos_delivered, 1000u);
}
