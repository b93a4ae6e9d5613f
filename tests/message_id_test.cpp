#include "resilink/core/message_id.h"

#include <gtest/gtest.h>

using namespace resilink::core;

TEST(MidSequence, StartsAtZeroThenCyclesOneTo255) {
  MidSequence s;
  EXPECT_EQ(s.take(), 0);
  for (int i = 1; i <= 255; ++i) EXPECT_EQ(s.take(), i);
  EXPECT_EQ(s.take(), 1);  // 0 never comes again
  EXPECT_EQ(s.take(), 2);
}

TEST(MidDistance, CountsStepsInTheOneTo255Cycle) {
  EXPECT_EQ(mid_distance(0, 1), 1u);
  EXPECT_EQ(mid_distance(5, 5), 0u);
  EXPECT_EQ(mid_distance(250, 2), 7u);
  EXPECT_EQ(mid_distance(255, 1), 1u);
}

TEST(SeenMap, AcceptForgetsTheByte128Ahead) {
  SeenMap m;
  for (int mid = 128; mid < 136; ++mid) m.accept(static_cast<uint8_t>(mid));
  EXPECT_TRUE(m.contains(130));
  m.accept(3);  // byte 0 -> clears byte 16 = mids 128..135
  EXPECT_TRUE(m.contains(3));
  for (int mid = 128; mid < 136; ++mid) EXPECT_FALSE(m.contains(static_cast<uint8_t>(mid)));
  m.accept(136);  // byte 17 -> clears byte 1 = mids 8..15, leaves 3
  EXPECT_TRUE(m.contains(3));
}

TEST(SeenMap, MatchesReferenceRuleOverAFullCycle) {
  // The seen-map must behave as the micropython-iot receiver does: a sender
  // numbering 1..255 cyclically never has a fresh mid rejected.
  SeenMap m;
  MidSequence s;
  for (int i = 0; i < 2000; ++i) {
    uint8_t mid = s.take();
    ASSERT_FALSE(m.contains(mid)) << "message " << i << " mid " << int(mid);
    m.accept(mid);
    ASSERT_TRUE(m.contains(mid));
  }
}

TEST(SeenMap, AGapOfLostMidsForgetsThePreviousLapOverTheWholeGap) {
  SeenMap m;
  for (int mid = 0; mid <= 0x80; ++mid) m.accept(static_cast<uint8_t>(mid));
  m.advance(0xc5);  // 0x81..0xc4 never arrived
  for (int mid = 0x01; mid <= 0x45; ++mid)
    EXPECT_FALSE(m.contains(static_cast<uint8_t>(mid))) << "mid " << mid << " still looks seen";
  EXPECT_TRUE(m.contains(0x80));
}

TEST(SeenMap, AResendBehindTheNewestMovesNothingFurther) {
  SeenMap m;
  for (int mid = 0; mid <= 0x40; ++mid) m.accept(static_cast<uint8_t>(mid));
  m.advance(0xe0);  // 0xa0 behind 0x40: a resend of an old mid, not a jump
  EXPECT_TRUE(m.contains(0x01));
  EXPECT_TRUE(m.contains(0x40));
}

TEST(Hex, FormatsLowercaseAndParsesBothCases) {
  uint8_t out[2];
  format_mid(0xab, out);
  EXPECT_EQ(out[0], 'a');
  EXPECT_EQ(out[1], 'b');
  uint8_t mid = 0;
  const uint8_t upper[2] = {'F', '0'};
  EXPECT_TRUE(parse_mid(upper, &mid));
  EXPECT_EQ(mid, 0xf0);
  const uint8_t bad[2] = {'g', '0'};
  EXPECT_FALSE(parse_mid(bad, &mid));
}
