#include "resilink/server/timer_wheel.h"

#include <algorithm>
#include <bit>

namespace resilink {

TimerWheel::TimerWheel(uint64_t now) : slots_(new Link[kSlots]), next_(now) {
  for (size_t i = 0; i < kSlots; ++i) slots_[i].next = slots_[i].prev = &slots_[i];
}

TimerWheel::~TimerWheel() {
  for (size_t i = 0; i < kSlots; ++i) {
    Link& head = slots_[i];
    while (head.next != &head) {
      Link* node = head.next;
      unlink(*node);
      node->next = node->prev = nullptr;
    }
  }
}

void TimerWheel::unlink(Link& node) {
  node.prev->next = node.next;
  node.next->prev = node.prev;
}

void TimerWheel::link_before(Link& at, Link& node) {
  node.next = &at;
  node.prev = at.prev;
  at.prev->next = &node;
  at.prev = &node;
}

void TimerWheel::link_into_slot(Timer& timer) {
  uint64_t slot = timer.deadline_ & kSlotMask;
  link_before(slots_[slot], timer);  // at the tail: ties fire in arming order
  mark(slot);
}

void TimerWheel::unmark_if_empty(uint64_t slot) {
  if (slots_[slot].next == &slots_[slot]) occupied_[slot / 64] &= ~(uint64_t{1} << (slot % 64));
}

void TimerWheel::disarm(Timer& timer) {
  unlink(timer);
  timer.next = timer.prev = nullptr;
  --armed_;
  unmark_if_empty(timer.deadline_ & kSlotMask);
}

void TimerWheel::arm(Timer& timer, uint64_t deadline) {
  if (timer.armed()) disarm(timer);
  // A deadline already past waits in the first slot not yet expired.
  timer.deadline_ = std::max(deadline, next_);
  link_into_slot(timer);
  ++armed_;
}

void TimerWheel::cancel(Timer& timer) {
  if (timer.armed()) disarm(timer);
}

void TimerWheel::idle_to(uint64_t now) {
  if (armed_ == 0 && now > next_) next_ = now;
}

uint64_t TimerWheel::first_occupied() const {
  const uint64_t start = next_ & kSlotMask;
  constexpr size_t kWords = kSlots / 64;
  size_t word = start / 64;
  // The start word from the start bit, the other words, then the start word's
  // bits before the start bit (the end of the lap).
  uint64_t bits = occupied_[word] & (~uint64_t{0} << (start % 64));
  for (size_t step = 0; step <= kWords; ++step) {
    if (bits != 0) {
      uint64_t slot = word * 64 + static_cast<uint64_t>(std::countr_zero(bits));
      return next_ + ((slot - start) & kSlotMask);
    }
    word = (word + 1) % kWords;
    bits = occupied_[word];
  }
  return kNever;  // not reached while a timer is armed
}

uint64_t TimerWheel::next_wake() const { return armed_ == 0 ? kNever : first_occupied(); }

void TimerWheel::expire(uint64_t now) {
  while (next_ <= now) {
    uint64_t time = armed_ == 0 ? kNever : first_occupied();
    if (time > now) {
      next_ = now + 1;
      return;
    }
    // Deadlines armed while this slot fires that are already past land in
    // the next millisecond's slot, never back in this one.
    next_ = time + 1;
    fire_slot(time, now);
  }
}

void TimerWheel::fire_slot(uint64_t time, uint64_t now) {
  Link& head = slots_[time & kSlotMask];
  // Take the whole list out first: callbacks may arm timers into this slot
  // (a lap on) and must not be met again in this pass.
  Link due;
  due.next = due.prev = &due;
  if (head.next != &head) {
    due.next = head.next;
    due.prev = head.prev;
    due.next->prev = &due;
    due.prev->next = &due;
    head.next = head.prev = &head;
  }
  unmark_if_empty(time & kSlotMask);
  while (due.next != &due) {
    Timer& timer = *static_cast<Timer*>(due.next);
    if (timer.deadline_ <= time) {
      disarm(timer);
      timer.on_deadline(now);
    } else {  // a later lap: back into its slot
      unlink(timer);
      link_into_slot(timer);
    }
  }
}

}  // namespace resilink
