// The simulator's checker on hand-made histories: what it must call a
// violation, and what it must count as a v1 limit instead.
#include "resilink/sim/checker.h"

#include <gtest/gtest.h>

using namespace resilink::sim;

namespace {

struct History {
  Checker checker{1};  // streams 0 (client to server) and 1
  uint8_t buf[128];
  uint32_t ticket = 0;
  uint32_t writes = 0;
  uint32_t send(MsgClass cls) {
    uint32_t seq = checker.created(0, cls);
    uint8_t mid = writes == 0 ? 0 : static_cast<uint8_t>((writes - 1) % 255 + 1);
    ++writes;
    checker.written(0, seq, mid, ++ticket);
    return seq;
  }
  void deliver(uint32_t seq, MsgClass cls, uint64_t conn) {
    size_t len = Checker::format_payload(0, seq, cls, 5, buf);
    checker.delivered(0, buf, len, conn, 100);
  }
  uint64_t violations(Violation v) const { return checker.counts().violations[static_cast<size_t>(v)]; }
};

}  // namespace

TEST(Checker, Mid0RedeliveryOnALaterConnectionIsTheV1Ambiguity) {
  History h;
  uint32_t first = h.send(MsgClass::qos_window);   // mid 0
  uint32_t second = h.send(MsgClass::qos_window);  // mid 1
  h.deliver(first, MsgClass::qos_window, 1);
  h.deliver(second, MsgClass::qos_window, 1);
  h.deliver(first, MsgClass::qos_window, 2);   // resent on connection 2: map cleared
  h.deliver(second, MsgClass::qos_window, 2);  // so the rest of the flight comes again
  EXPECT_EQ(h.checker.counts().v1_mid0_duplicate, 2u);
  EXPECT_EQ(h.checker.counts().total_violations(), 0u);
}

TEST(Checker, DuplicateOnTheSameConnectionIsAViolation) {
  History h;
  h.send(MsgClass::qos_window);
  uint32_t m = h.send(MsgClass::qos_window);
  h.deliver(0, MsgClass::qos_window, 1);
  h.deliver(m, MsgClass::qos_window, 1);
  h.deliver(m, MsgClass::qos_window, 1);
  EXPECT_EQ(h.violations(Violation::duplicate), 1u);
  ASSERT_FALSE(h.checker.violations().empty());
  EXPECT_NE(h.checker.violations()[0].detail.find("delivered twice"), std::string::npos);
}

TEST(Checker, SkippedQosMessageIsLossAndNonQosDuplicateIsCaught) {
  History h;
  uint32_t a = h.send(MsgClass::qos_window);
  uint32_t b = h.send(MsgClass::qos_wait);
  uint32_t c = h.send(MsgClass::nonqos);
  h.deliver(b, MsgClass::qos_wait, 1);  // a skipped
  h.deliver(c, MsgClass::nonqos, 1);
  h.deliver(c, MsgClass::nonqos, 2);
  h.deliver(a, MsgClass::qos_window, 1);  // late: out of order
  EXPECT_EQ(h.violations(Violation::loss), 1u);
  EXPECT_EQ(h.violations(Violation::nonqos_duplicate), 1u);
  EXPECT_EQ(h.violations(Violation::reorder), 1u);
}

TEST(Checker, SenderRestartLossIsClassifiedNotAViolation) {
  History h;
  uint32_t a = h.send(MsgClass::qos_window);
  h.send(MsgClass::qos_window);  // never delivered: lost with the reboot
  h.deliver(a, MsgClass::qos_window, 1);
  h.checker.sender_restarted(0);
  h.writes = 0;
  h.ticket = 0;
  uint32_t c = h.send(MsgClass::qos_window);
  h.deliver(c, MsgClass::qos_window, 2);
  EXPECT_EQ(h.checker.outstanding(), 0u);
  h.checker.finish(1000, true);
  EXPECT_EQ(h.checker.counts().lost_with_sender, 1u);
  EXPECT_EQ(h.checker.counts().qos_delivered, 2u);
  EXPECT_EQ(h.checker.counts().total_violations(), 0u);
}

TEST(Checker, UndeliveredAtTheLivenessDeadlineIsAViolation) {
  History h;
  h.send(MsgClass::qos_window);
  h.checker.finish(1000, true);
  EXPECT_EQ(h.violations(Violation::liveness), 1u);
}

TEST(Checker, ForeignPayloadIsCorrupt) {
  History h;
  h.send(MsgClass::qos_window);
  const uint8_t junk[] = "s0:7:0:zz";
  h.checker.delivered(0, junk, sizeof junk - 1, 1, 5);
  EXPECT_EQ(h.violations(Violation::corrupt), 1u);
}
