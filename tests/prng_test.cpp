// The simulator's PRNG: fixed outputs for fixed seeds, so a seed means the
// same run with every compiler and standard library.
#include "resilink/sim/prng.h"

#include <gtest/gtest.h>

#include "resilink/sim/event_queue.h"

using resilink::sim::Event;
using resilink::sim::EventKind;
using resilink::sim::EventQueue;
using resilink::sim::Prng;

TEST(Prng, KnownOutputsForKnownSeeds) {
  // xoshiro256** seeded by SplitMix64; pinned so a change of algorithm shows.
  Prng a(0);
  EXPECT_EQ(a.next(), 11091344671253066420ull);
  EXPECT_EQ(a.next(), 13793997310169335082ull);
  Prng b(123456);
  EXPECT_EQ(b.next(), 2366053268901514180ull);
}

TEST(Prng, SameSeedSameSequenceOtherSeedOther) {
  Prng a(77), b(77), c(78);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    differs |= x != c.next();
  }
  EXPECT_TRUE(differs);
}

TEST(Prng, DrawsStayInRange) {
  Prng p(5);
  uint64_t sum = 0;
  for (int i = 0; i < 10000; ++i) {
    uint64_t v = p.between(3, 9);
    ASSERT_GE(v, 3u);
    ASSERT_LE(v, 9u);
    sum += p.exponential(1000);
  }
  // Mean of exponential(1000) is about 1000 (63/64 of it plus half a step).
  EXPECT_GT(sum / 10000, 850u);
  EXPECT_LT(sum / 10000, 1150u);
}

TEST(EventQueue, PopsByTimeThenOrder) {
  EventQueue q;
  uint64_t order = 0;
  for (uint64_t at : {50u, 10u, 30u, 10u, 20u})
    q.push(Event{at, ++order, 0, static_cast<uint32_t>(order), EventKind::app_generate, 0});
  std::vector<uint32_t> got;
  while (!q.empty()) got.push_back(q.pop().index);
  EXPECT_EQ(got, (std::vector<uint32_t>{2, 4, 5, 3, 1}));
}
