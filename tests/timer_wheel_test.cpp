// TimerWheel in virtual time: literal milliseconds in, the order of
// on_deadline() calls out. No clock, no Asio.
#include "resilink/server/timer_wheel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace resilink {
namespace {

// Timers are declared before their wheel in each test: the wheel goes first
// and disarms what is left (an owner must not outlive its armed timer).

// What fired, in order: (timer name, the `now` it was given).
struct Firing {
  int name;
  uint64_t now;
  bool operator==(const Firing&) const = default;
};

class Recorder final : public TimerWheel::Timer {
 public:
  Recorder(int name, std::vector<Firing>* log) : name_(name), log_(log) {}
  // Runs after the firing is logged (re-arms, cancels others, ...).
  std::function<void(uint64_t now)> then;

 private:
  void on_deadline(uint64_t now) override {
    log_->push_back({name_, now});
    if (then) then(now);
  }
  int name_;
  std::vector<Firing>* log_;
};

// Expires at every millisecond from..to, as a host polling each tick would.
void tick(TimerWheel& wheel, uint64_t from, uint64_t to) {
  for (uint64_t t = from; t <= to; ++t) wheel.expire(t);
}

TEST(TimerWheel, FiresAtItsDeadlineNotBefore) {
  std::vector<Firing> log;
  Recorder a(1, &log);
  TimerWheel wheel(1000);
  wheel.arm(a, 1500);
  EXPECT_TRUE(a.armed());
  EXPECT_EQ(a.deadline(), 1500u);
  EXPECT_EQ(wheel.next_wake(), 1500u);
  wheel.expire(1499);
  EXPECT_TRUE(log.empty());
  wheel.expire(1500);
  EXPECT_EQ(log, (std::vector<Firing>{{1, 1500}}));
  EXPECT_FALSE(a.armed());
  EXPECT_TRUE(wheel.empty());
  EXPECT_EQ(wheel.next_wake(), TimerWheel::kNever);
}

TEST(TimerWheel, DeadlinesFireInOrderWhateverTheArmingOrder) {
  std::vector<Firing> log;
  Recorder a(1, &log), b(2, &log), c(3, &log), d(4, &log);
  TimerWheel wheel(0);
  wheel.arm(c, 30);
  wheel.arm(a, 10);
  wheel.arm(d, 40);
  wheel.arm(b, 20);
  EXPECT_EQ(wheel.size(), 4u);
  EXPECT_EQ(wheel.next_wake(), 10u);
  // One late expire covering all four still fires them in deadline order.
  wheel.expire(45);
  ASSERT_EQ(log.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(log[static_cast<size_t>(i)].name, i + 1);
  EXPECT_EQ(log[0].now, 45u);
}

TEST(TimerWheel, SameMillisecondTiesFireInArmingOrder) {
  std::vector<Firing> log;
  Recorder a(1, &log), b(2, &log), c(3, &log);
  TimerWheel wheel(0);
  wheel.arm(b, 7);
  wheel.arm(c, 7);
  wheel.arm(a, 7);
  wheel.expire(7);
  EXPECT_EQ(log, (std::vector<Firing>{{2, 7}, {3, 7}, {1, 7}}));
}

TEST(TimerWheel, RearmMovesTheDeadlineEarlierOrLater) {
  std::vector<Firing> log;
  Recorder a(1, &log), b(2, &log);
  TimerWheel wheel(0);
  wheel.arm(a, 100);
  wheel.arm(b, 50);
  wheel.arm(a, 20);  // earlier
  EXPECT_EQ(wheel.size(), 2u);
  EXPECT_EQ(wheel.next_wake(), 20u);
  wheel.arm(b, 300);  // later
  tick(wheel, 1, 299);
  EXPECT_EQ(log, (std::vector<Firing>{{1, 20}}));
  wheel.expire(300);
  EXPECT_EQ(log.back(), (Firing{2, 300}));
}

TEST(TimerWheel, CancelledTimerNeverFires) {
  std::vector<Firing> log;
  Recorder a(1, &log), b(2, &log);
  TimerWheel wheel(0);
  wheel.arm(a, 10);
  wheel.arm(b, 10);
  wheel.cancel(a);
  wheel.cancel(a);  // twice is harmless
  EXPECT_FALSE(a.armed());
  EXPECT_EQ(wheel.size(), 1u);
  wheel.expire(10);
  EXPECT_EQ(log, (std::vector<Firing>{{2, 10}}));
  wheel.cancel(b);  // after firing: nothing to do
  EXPECT_TRUE(wheel.empty());
}

TEST(TimerWheel, DeadlineInThePastFiresAtTheNextExpire) {
  std::vector<Firing> log;
  Recorder a(1, &log);
  TimerWheel wheel(100);
  wheel.expire(200);
  wheel.arm(a, 150);  // already past
  EXPECT_LE(wheel.next_wake(), 201u);
  wheel.expire(201);
  EXPECT_EQ(log, (std::vector<Firing>{{1, 201}}));
}

TEST(TimerWheel, DeadlinesLapsAheadWaitForTheirLap) {
  std::vector<Firing> log;
  Recorder near_timer(1, &log), far_timer(2, &log), farther(3, &log);
  TimerWheel wheel(0);
  // Same slot, different laps.
  wheel.arm(near_timer, 5);
  wheel.arm(far_timer, 5 + TimerWheel::kSlots);
  wheel.arm(farther, 5 + 3 * TimerWheel::kSlots);
  tick(wheel, 1, 5 + TimerWheel::kSlots - 1);
  EXPECT_EQ(log, (std::vector<Firing>{{1, 5}}));
  wheel.expire(5 + TimerWheel::kSlots);
  EXPECT_EQ(log.back(), (Firing{2, 5 + TimerWheel::kSlots}));
  // A jump over several laps at once still waits for the exact deadline.
  wheel.expire(4 + 3 * TimerWheel::kSlots);
  EXPECT_EQ(log.size(), 2u);
  wheel.expire(5 + 3 * TimerWheel::kSlots);
  EXPECT_EQ(log.back(), (Firing{3, 5 + 3 * TimerWheel::kSlots}));
}

TEST(TimerWheel, NextWakeIsTheEarliestDeadlineWithinALap) {
  std::vector<Firing> log;
  Recorder a(1, &log), b(2, &log), c(3, &log);
  TimerWheel wheel(10'000);
  // Slots on both sides of the wheel's start slot and across the bitmap's
  // 64-slot words.
  wheel.arm(a, 10'000 + TimerWheel::kSlots - 1);
  EXPECT_EQ(wheel.next_wake(), 10'000 + TimerWheel::kSlots - 1);
  wheel.arm(b, 10'000 + 700);
  EXPECT_EQ(wheel.next_wake(), 10'700u);
  wheel.arm(c, 10'000 + 63);
  EXPECT_EQ(wheel.next_wake(), 10'063u);
  wheel.expire(10'063);
  EXPECT_EQ(wheel.next_wake(), 10'700u);
  wheel.expire(10'700);
  EXPECT_EQ(wheel.next_wake(), 10'000 + TimerWheel::kSlots - 1);
}

TEST(TimerWheel, IdleWheelMovesItsClockOn) {
  std::vector<Firing> log;
  Recorder a(1, &log), b(2, &log);
  TimerWheel wheel(0);
  wheel.idle_to(50'000'000);  // a long idle spell
  wheel.arm(a, 50'000'010);
  EXPECT_EQ(wheel.next_wake(), 50'000'010u);
  wheel.expire(50'000'010);
  EXPECT_EQ(log, (std::vector<Firing>{{1, 50'000'010}}));

  // While a timer is armed, idle_to() changes nothing.
  wheel.arm(b, 50'000'020);
  wheel.idle_to(50'000'030);
  wheel.expire(50'000'019);
  EXPECT_EQ(log.size(), 1u);
  wheel.expire(50'000'020);
  EXPECT_EQ(log.back(), (Firing{2, 50'000'020}));
}

TEST(TimerWheel, CallbackMayRearmItselfAndOthers) {
  std::vector<Firing> log;
  Recorder keepalive(1, &log), victim(2, &log), later(3, &log);
  TimerWheel wheel(0);
  // A keepalive every 5 ms, re-armed from its own callback. At 5 ms it arms
  // two more timers behind itself in the 10 ms slot; at 10 ms it cancels one
  // of them (already taken out with the slot) and moves the other.
  keepalive.then = [&](uint64_t now) {
    wheel.arm(keepalive, now + 5);
    if (now == 5) {
      wheel.arm(victim, 10);
      wheel.arm(later, 10);
    }
    if (now == 10) {
      wheel.cancel(victim);
      wheel.arm(later, 12);
    }
  };
  wheel.arm(keepalive, 5);
  tick(wheel, 1, 20);
  EXPECT_EQ(log, (std::vector<Firing>{{1, 5}, {1, 10}, {3, 12}, {1, 15}, {1, 20}}));
  EXPECT_TRUE(keepalive.armed());
  EXPECT_FALSE(victim.armed());
}

TEST(TimerWheel, CallbackArmingInThePastDoesNotSpin) {
  std::vector<Firing> log;
  Recorder a(1, &log);
  TimerWheel wheel(0);
  int fired = 0;
  a.then = [&](uint64_t now) {
    (void)now;
    if (++fired < 100) wheel.arm(a, 0);  // always long past
  };
  wheel.arm(a, 3);
  wheel.expire(3);
  // Fired once at 3; its past deadline waits for the next millisecond.
  EXPECT_EQ(fired, 1);
  wheel.expire(3);
  EXPECT_EQ(fired, 1);
  wheel.expire(4);
  EXPECT_EQ(fired, 2);
  // A late expire fires it once per millisecond passed, no more.
  wheel.expire(10);
  EXPECT_EQ(fired, 8);
}

TEST(TimerWheel, ManyTimersFireExactlyOnceInDeadlineOrder) {
  // 20,000 connections' deadlines spread over two laps, re-armed at random,
  // expired at irregular steps: each fires once, at its last deadline, in
  // deadline order (ties in arming order).
  constexpr size_t kTimers = 20'000;
  std::vector<Firing> log;
  std::vector<std::unique_ptr<Recorder>> timers;
  std::vector<uint64_t> deadline(kTimers);
  std::vector<uint64_t> armed_seq(kTimers);
  std::mt19937 rng(7);
  TimerWheel wheel(1'000);
  uint64_t seq = 0;
  for (size_t i = 0; i < kTimers; ++i) {
    timers.push_back(std::make_unique<Recorder>(static_cast<int>(i), &log));
    deadline[i] = 1'000 + 1 + rng() % (2 * TimerWheel::kSlots);
    wheel.arm(*timers[i], deadline[i]);
    armed_seq[i] = seq++;
  }
  for (size_t i = 0; i < kTimers; i += 3) {  // re-arm a third
    deadline[i] = 1'000 + 1 + rng() % (2 * TimerWheel::kSlots);
    wheel.arm(*timers[i], deadline[i]);
    armed_seq[i] = seq++;
  }
  for (size_t i = 1; i < kTimers; i += 10) {  // cancel a tenth
    wheel.cancel(*timers[i]);
    deadline[i] = TimerWheel::kNever;
  }
  auto still_armed = [](uint64_t d) { return d != TimerWheel::kNever; };
  auto expected_count = static_cast<size_t>(std::count_if(deadline.begin(), deadline.end(), still_armed));
  EXPECT_EQ(wheel.size(), expected_count);

  uint64_t now = 1'000;
  while (!wheel.empty()) {
    uint64_t wake = wheel.next_wake();
    ASSERT_NE(wake, TimerWheel::kNever);
    ASSERT_GE(wake, now);
    now = wake + rng() % 3;  // a host that wakes a little late
    size_t before = log.size();
    wheel.expire(now);
    for (size_t k = before; k < log.size(); ++k) {
      size_t i = static_cast<size_t>(log[k].name);
      EXPECT_LE(deadline[i], now) << "timer " << i << " fired early";
      EXPECT_GE(deadline[i] + 2, now) << "timer " << i << " fired late";
    }
  }
  ASSERT_EQ(log.size(), expected_count);
  for (size_t k = 1; k < log.size(); ++k) {
    size_t a = static_cast<size_t>(log[k - 1].name), b = static_cast<size_t>(log[k].name);
    ASSERT_TRUE(deadline[a] < deadline[b] || (deadline[a] == deadline[b] && armed_seq[a] < armed_seq[b]))
        << "out of order at firing " << k;
  }
}

TEST(TimerWheel, DestroyingTheWheelDisarmsItsTimers) {
  std::vector<Firing> log;
  Recorder a(1, &log);
  {
    TimerWheel wheel(0);
    wheel.arm(a, 10);
  }
  EXPECT_FALSE(a.armed());
}

}  // namespace
}  // namespace resilink
