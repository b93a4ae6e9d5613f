// The deadlines of every Connection of a Server on one clock, so that the
// server needs one asio timer however many clients it holds.
//
// A hashed timing wheel (Varghese and Lauck): kSlots slots of one millisecond;
// a timer due at d waits in slot d mod kSlots, and timers due a lap or more
// later wait in the same slot and are passed over until their lap comes.
// Arming, re-arming and cancelling touch a constant number of list nodes and
// allocate nothing (the Timer is a node embedded in its owner): a Connection
// re-arms at every keepalive, and a heap would re-sift through log n other
// connections' cache lines each time. One-millisecond slots keep each timer
// exact to the millisecond.
//
// Pure, like the core: no clock, no Asio. The host arms timers with absolute
// deadlines (monotonic ms), sleeps until next_wake() and then calls
// expire(now), which calls on_deadline() of every timer due, in deadline
// order (ties in the order they were armed).
//
//   state     event                        next      action
//   disarmed  arm(d)                       armed(d)
//   armed(d)  arm(e)                       armed(e)  (moves; no allocation)
//   armed(d)  cancel()                     disarmed
//   armed(d)  expire(now), now >= d        disarmed  on_deadline(now)
//   any       owner destroyed              -         owner must cancel first
#pragma once

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include <memory>

namespace resilink {

class TimerWheel {
  struct Link {
    Link* next = nullptr;
    Link* prev = nullptr;
  };

 public:
  // One lap: 4.096 s, beyond twice the default timeout, so with the default
  // every deadline a link has (the 2T first-read allowance included) is in
  // the current lap. A later deadline costs a pass over its slot per lap.
  static constexpr size_t kSlots = 4096;
  static constexpr uint64_t kNever = ~static_cast<uint64_t>(0);

  // A deadline. The owner derives from it and overrides on_deadline().
  class Timer : private Link {
   public:
    bool armed() const { return next != nullptr; }
    // When it fires (or fired): the deadline it was last armed with, or the
    // wheel's next millisecond if that deadline had already passed.
    uint64_t deadline() const { return deadline_; }

   protected:
    Timer() = default;
    // Not virtual: owners are not deleted through a Timer. They cancel first
    // (the wheel would reach into a destroyed owner), or outlive the wheel.
    ~Timer() { assert(!armed()); }
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

   private:
    friend class TimerWheel;
    // Called from expire(), disarmed. It may arm or cancel any timer of the
    // wheel (this one too), but must not call expire() or destroy the wheel.
    virtual void on_deadline(uint64_t now) = 0;

    uint64_t deadline_ = 0;  // its slot is deadline_ mod kSlots
  };

  // now: the clock's current time; deadlines before it fire at the first
  // expire() (as all deadlines already past do).
  explicit TimerWheel(uint64_t now);
  // Timers still armed are disarmed (not fired).
  ~TimerWheel();
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Arms `timer` for `deadline`, replacing its earlier deadline if armed. A
  // deadline already past fires at the next expire().
  void arm(Timer& timer, uint64_t deadline);
  void cancel(Timer& timer);

  bool empty() const { return armed_ == 0; }
  size_t size() const { return armed_; }

  // When to call expire() next: the time of the first slot holding a timer,
  // kNever if none. Exact for deadlines within a lap; a timer due laps later
  // shows up once per lap, and expire() then fires nothing for it.
  uint64_t next_wake() const;
  // Fires every timer due at or before now, in deadline order.
  void expire(uint64_t now);
  // With nothing armed, moves the wheel's clock on to now, so that the next
  // expire() does not walk through the idle laps one slot at a time. Does
  // nothing while a timer is armed.
  void idle_to(uint64_t now);

 private:
  static constexpr uint64_t kSlotMask = kSlots - 1;
  static_assert((kSlots & kSlotMask) == 0, "kSlots must be a power of two");

  static void unlink(Link& node);
  static void link_before(Link& at, Link& node);
  void link_into_slot(Timer& timer);
  void disarm(Timer& timer);
  // The first time at or after next_ whose slot holds a timer (within a lap).
  uint64_t first_occupied() const;
  void fire_slot(uint64_t time, uint64_t now);
  void mark(uint64_t slot) { occupied_[slot / 64] |= uint64_t{1} << (slot % 64); }
  void unmark_if_empty(uint64_t slot);

  // Each slot is a circular list through a sentinel; 64 KB, on the heap so a
  // Server can live on a thread's stack.
  std::unique_ptr<Link[]> slots_;
  uint64_t occupied_[kSlots / 64] = {};  // a bit per non-empty slot
  // The first millisecond not yet expired: every deadline before it has fired.
  uint64_t next_;
  size_t armed_ = 0;
};

}  // namespace resilink
