// The soak's recorder: exactly-once accounting, fault attribution, detection,
// recovery and latency, on a clock the test sets.
#include "resilink/lab/recorder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

namespace resilink::lab {
namespace {

constexpr uint32_t kTimeout = 1000;

class RecorderTest : public ::testing::Test {
 protected:
  // The recorder's clock, in ms from its start.
  void at(double ms) { now_us_ = static_cast<uint64_t>(ms * 1000); }
  std::string message(uint64_t seq, double due_ms = 0) {
    return make_soak_message(seq, static_cast<uint64_t>(due_ms * 1000), 32);
  }
  void send(Recorder& r, size_t lane, Direction d, uint64_t count) {
    for (uint64_t seq = 0; seq < count; ++seq) r.sent(lane, d, seq);
  }
  Recorder make(size_t lanes, const std::string& metrics = "") {
    std::string error;
    return Recorder(lanes, kTimeout, metrics, &error, [this] { return now_us_; });
  }
  uint64_t now_us_ = 0;
};

TEST(SoakMessage, CarriesSeqAndDueTimeAndHasTheRequestedSize) {
  std::string m = make_soak_message(42, 1234567, 32);
  EXPECT_EQ(m.size(), 32u);
  EXPECT_EQ(m.rfind("42 1234567 ", 0), 0u);
  EXPECT_EQ(make_soak_message(7, 1, 4), "7 1 ");  // never truncated below its header
  EXPECT_NE(make_soak_message(1, 0, 32).substr(4), make_soak_message(2, 0, 32).substr(4));
}

TEST_F(RecorderTest, CountsDeliveredLostDuplicatedReorderedAndUnexpected) {
  Recorder r = make(1);
  send(r, 0, Direction::up, 5);
  for (uint64_t seq : {0, 1, 3, 2, 3}) r.delivered(0, Direction::up, message(seq));
  r.delivered(0, Direction::up, "garbage");
  r.delivered(0, Direction::up, message(10));  // never sent
  EXPECT_FALSE(r.drained());
  SoakReport report = r.finish(r.drained());
  const Counts& up = report.messages[0];
  EXPECT_EQ(up.sent, 5u);
  EXPECT_EQ(up.delivered, 4u);
  EXPECT_EQ(up.duplicated, 1u);
  EXPECT_EQ(up.reordered, 1u);  // 2 after 3
  EXPECT_EQ(up.lost, 1u);       // 4
  EXPECT_EQ(up.unexpected, 2u);
  EXPECT_EQ(report.messages[1].sent, 0u);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(format_summary("demo", report),
            "demo: 1 clients, 0 outages, 5 messages up and 0 down, 1 lost, 1 duplicated, 1 reordered");
}

TEST_F(RecorderTest, AllDeliveredOnceInOrderIsOkAndDrained) {
  Recorder r = make(2);
  for (size_t lane = 0; lane < 2; ++lane)
    for (Direction d : {Direction::up, Direction::down}) {
      send(r, lane, d, 3);
      for (uint64_t seq = 0; seq < 3; ++seq) r.delivered(lane, d, message(seq));
    }
  EXPECT_TRUE(r.drained());
  SoakReport report = r.finish(true);
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(format_summary("soak", report),
            "soak: 2 clients, 0 outages, 6 messages each way, 0 lost, 0 duplicated, 0 reordered");
}

TEST_F(RecorderTest, DetectionIsMeasuredFromTheFaultStartAtEachEnd) {
  Recorder r = make(1);
  r.link(0, End::client, true);
  r.link(0, End::server, true);
  r.fault(0, "outage-1", "outage", true, 1000);
  at(2100);
  r.link(0, End::client, false, core::OutageReason::read_timeout);
  at(2300);
  r.link(0, End::server, false, core::OutageReason::read_timeout);
  r.fault(0, "outage-1", "outage", false, 2500);
  EXPECT_EQ(r.outages_ended(), 1u);
  SoakReport report = r.finish(true);
  ASSERT_EQ(report.detection[0].count(), 1u);
  EXPECT_DOUBLE_EQ(report.detection[0].max(), 1100);
  EXPECT_DOUBLE_EQ(report.detection[1].max(), 1300);
  EXPECT_EQ(report.detection_within_bound[0], 1u);  // 1100 <= 1250
  EXPECT_EQ(report.detection_within_bound[1], 0u);  // 1300 > 1250
  EXPECT_EQ(report.detection_within_timeout[0], 0u);
  EXPECT_EQ(report.outages, 1u);
  EXPECT_EQ(report.missed, 0u);
  EXPECT_EQ(report.unexplained_downs, 0u);
}

TEST_F(RecorderTest, ALinkDownWithNoFaultIsAFalseOutage) {
  Recorder r = make(1);
  r.link(0, End::client, true);
  at(5000);
  r.link(0, End::client, false, core::OutageReason::read_timeout);
  EXPECT_EQ(r.finish(true).unexplained_downs, 1u);
}

TEST_F(RecorderTest, AResetExplainsTheLinkGoingDownButIsNotADetection) {
  Recorder r = make(1);
  r.link(0, End::client, true);
  r.fault(0, "reset_peer", "reset_peer", true, 1000);
  r.fault(0, "reset_peer", "reset_peer", false, 1000);
  at(1010);
  r.link(0, End::client, false, core::OutageReason::socket_error);
  SoakReport report = r.finish(true);
  EXPECT_EQ(report.unexplained_downs, 0u);
  EXPECT_EQ(report.detection[0].count(), 0u);
  EXPECT_EQ(report.outages, 0u);
  EXPECT_EQ(report.faults, 1u);
}

TEST_F(RecorderTest, OverlappingOutagesAreDeclaredTogetherWithoutADetectionSample) {
  Recorder r = make(1);
  r.link(0, End::client, true);
  r.fault(0, "outage-s1", "outage", true, 1000);
  r.fault(0, "half_open-s2", "half_open", true, 1500);
  at(2050);
  r.link(0, End::client, false, core::OutageReason::read_timeout);
  r.fault(0, "outage-s1", "outage", false, 3000);
  r.fault(0, "half_open-s2", "half_open", false, 3000);
  SoakReport report = r.finish(true);
  // Which fault did it detect? Neither measure would be the promise's.
  EXPECT_EQ(report.detection[0].count(), 0u);
  EXPECT_EQ(report.missed, 0u);  // both were declared, by the one event
  EXPECT_EQ(report.unexplained_downs, 0u);
}

TEST_F(RecorderTest, AResetReportedJustAfterTheLinkWentDownStillExplainsIt) {
  Recorder r = make(1);
  r.link(0, End::client, true);
  at(5000);
  r.link(0, End::client, false, core::OutageReason::peer_closed);
  r.fault(0, "reset_peer-s1", "reset_peer", true, 5020);
  r.fault(0, "reset_peer-s1", "reset_peer", false, 5020);
  at(8000);
  r.link(0, End::client, true);
  at(9000);
  r.link(0, End::client, false, core::OutageReason::peer_closed);  // and this one nothing explains
  r.fault(0, "reset_peer-s1", "reset_peer", true, 9500);
  EXPECT_EQ(r.finish(true).unexplained_downs, 1u);
}

TEST_F(RecorderTest, AConnectionAttemptFailingDuringAFaultIsNoDetection) {
  Recorder r = make(1);
  r.link(0, End::client, true);
  r.link(0, End::server, true);
  r.fault(0, "outage-1", "outage", true, 1000);
  at(2000);
  r.link(0, End::client, false, core::OutageReason::read_timeout);
  r.link(0, End::server, false, core::OutageReason::read_timeout);
  r.fault(0, "outage-1", "outage", false, 2500);
  r.fault(0, "outage-2", "outage", true, 3000);  // while the client is still down
  at(3600);
  r.link(0, End::client, false, core::OutageReason::read_timeout);  // its reconnect times out
  EXPECT_EQ(r.snapshot(0).outages_declared[0], 1u);
  SoakReport report = r.finish(true);
  EXPECT_EQ(report.detection[0].count(), 1u);  // the first fault only
  EXPECT_EQ(report.missed, 0u);                // the second began with the link down
  EXPECT_EQ(report.began_down, 1u);
  EXPECT_EQ(report.ridden_through, 0u);
  EXPECT_EQ(report.unexplained_downs, 0u);
}

TEST_F(RecorderTest, ALongOutageAnEndNeverDeclaredIsMissedAShortOneIsRiddenThrough) {
  Recorder r = make(1);
  r.link(0, End::client, true);
  r.link(0, End::server, true);
  r.fault(0, "short", "outage", true, 1000);
  r.fault(0, "short", "outage", false, 1500);  // shorter than T: no one declares it
  r.fault(0, "long", "half_open", true, 3000);
  at(4000);
  r.link(0, End::server, false, core::OutageReason::read_timeout);
  r.fault(0, "long", "half_open", false, 6000);  // the client never declared it
  SoakReport report = r.finish(true);
  EXPECT_EQ(report.outages, 2u);
  EXPECT_EQ(report.ridden_through, 1u);
  EXPECT_EQ(report.missed, 1u);
}

TEST_F(RecorderTest, RecoveryRunsFromTheFaultsEndToTheNextDeliveryOnThatLane) {
  Recorder r = make(2);
  send(r, 0, Direction::up, 2);
  send(r, 1, Direction::up, 1);
  r.fault(-1, "outage-1", "outage", true, 1000);  // every lane
  r.fault(-1, "outage-1", "outage", false, 3000);
  at(3100);
  r.delivered(1, Direction::up, message(0, 500));
  at(3400);
  r.delivered(0, Direction::up, message(0, 500));
  r.delivered(0, Direction::up, message(1, 500));
  EXPECT_EQ(r.outages_ended(), 1u);  // one fault, however many lanes it hit
  SoakReport report = r.finish(true);
  EXPECT_EQ(report.outages, 1u);
  EXPECT_EQ(report.link_outages, 2u);  // one per lane
  ASSERT_EQ(report.recovery.count(), 2u);
  EXPECT_DOUBLE_EQ(report.recovery.min(), 100);
  EXPECT_DOUBLE_EQ(report.recovery.max(), 400);
}

TEST_F(RecorderTest, LatencyAcrossAFaultIsKeptApartFromSteadyState) {
  Recorder r = make(1);
  send(r, 0, Direction::up, 3);
  at(100);
  r.delivered(0, Direction::up, message(0, 99));  // 1 ms, nothing happened
  r.fault(0, "outage-1", "outage", true, 200);
  r.fault(0, "outage-1", "outage", false, 1200);
  at(1300);
  r.delivered(0, Direction::up, message(1, 150));  // due before the fault: disturbed
  at(1402);
  r.delivered(0, Direction::up, message(2, 1400));  // due after everything settled
  SoakReport report = r.finish(true);
  ASSERT_EQ(report.latency_steady.count(), 2u);
  EXPECT_DOUBLE_EQ(report.latency_steady.max(), 2);
  ASSERT_EQ(report.latency_disturbed.count(), 1u);
  EXPECT_DOUBLE_EQ(report.latency_disturbed.max(), 1150);
}

TEST_F(RecorderTest, WritesOneJsonObjectPerLineEndingWithTheReport) {
  std::string path = ::testing::TempDir() + "recorder_test_" + std::to_string(::getpid()) + ".jsonl";
  {
    Recorder r = make(1, path);
    r.link(0, End::client, true);
    r.fault(0, "outage-1", "outage", true, 10);
    at(1100);
    r.link(0, End::client, false, core::OutageReason::read_timeout);
    r.finish(true);
  }
  std::ifstream in(path);
  std::string line;
  std::vector<nlohmann::json> events;
  while (std::getline(in, line)) events.push_back(nlohmann::json::parse(line));
  std::remove(path.c_str());
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1]["event"], "fault_start");
  EXPECT_EQ(events[2]["event"], "link_down");
  EXPECT_EQ(events[2]["reason"], "read_timeout");
  EXPECT_DOUBLE_EQ(events[2]["detection_ms"].get<double>(), 1090);
  EXPECT_EQ(events[3]["event"], "report");
  EXPECT_EQ(events[3]["detection_ms"]["client"]["count"], 1);
  EXPECT_EQ(events[3]["ok"], true);
}

TEST_F(RecorderTest, AnUnwritableMetricsPathIsNamedInTheError) {
  std::string error;
  Recorder r(1, kTimeout, "/nonexistent-dir/m.jsonl", &error);
  EXPECT_NE(error.find("/nonexistent-dir/m.jsonl"), std::string::npos) << error;
}

TEST(Distribution, NearestRankPercentiles) {
  Distribution d;
  EXPECT_EQ(d.p50(), 0);
  for (int i = 100; i >= 1; --i) d.add(i);
  EXPECT_EQ(d.p50(), 50);
  EXPECT_EQ(d.p99(), 99);
  EXPECT_EQ(d.max(), 100);
  EXPECT_EQ(d.min(), 1);
  EXPECT_DOUBLE_EQ(d.fraction_at_most(25), 0.25);
}

}  // namespace
}  // namespace resilink::lab
