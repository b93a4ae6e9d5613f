// One event queue for a whole simulated world: a binary heap of small,
// trivially copyable events ordered by (time, order). `order` is a seeded
// tie-break key drawn when the event is pushed, so events landing on the same
// millisecond run in a seed-determined but varied order (a timer and a byte
// arrival at exactly T race both ways across seeds) and every seed replays.
#pragma once

#include <cstdint>
#include <vector>

namespace resilink::sim {

enum class EventKind : uint8_t {
  engine_timer,       // index: end; token: the deadline armed
  pipe_deliver,       // index: connection; side: direction; token: connection generation
  connect_done,       // index: client; token: attempt
  connect_refused,    // index: client; token: attempt
  handshake_deadline, // index: connection; token: connection generation
  app_generate,       // index: end
  fault_next,         // index: client
  fault_end,          // index: client; side: fault kind; token: fault id
  client_boot,        // index: client
  server_restart,
  server_up,
  detect_check,       // index: end; token: outage id
  reader_resume,      // index: end
  faults_stop,
  liveness_check,
};

struct Event {
  uint64_t at;
  uint64_t order;
  uint64_t token;
  uint32_t index;
  EventKind kind;
  uint8_t side;
};

class EventQueue {
 public:
  void reserve(size_t n) { heap_.reserve(n); }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  const Event& top() const { return heap_.front(); }

  void push(const Event& e) {
    heap_.push_back(e);
    size_t i = heap_.size() - 1;
    while (i > 0) {
      size_t parent = (i - 1) / 2;
      if (!before(heap_[i], heap_[parent])) break;
      Event tmp = heap_[i];
      heap_[i] = heap_[parent];
      heap_[parent] = tmp;
      i = parent;
    }
  }

  Event pop() {
    Event out = heap_.front();
    heap_.front() = heap_.back();
    heap_.pop_back();
    size_t n = heap_.size(), i = 0;
    for (;;) {
      size_t l = 2 * i + 1, r = l + 1, best = i;
      if (l < n && before(heap_[l], heap_[best])) best = l;
      if (r < n && before(heap_[r], heap_[best])) best = r;
      if (best == i) break;
      Event tmp = heap_[i];
      heap_[i] = heap_[best];
      heap_[best] = tmp;
      i = best;
    }
    return out;
  }

 private:
  static bool before(const Event& a, const Event& b) {
    return a.at != b.at ? a.at < b.at : a.order < b.order;
  }
  std::vector<Event> heap_;
};

}  // namespace resilink::sim
