// One direction of a proxied connection, without I/O: the bytes read from
// the source wait here, the active toxics decide when and in what pieces they
// go to the destination, and whether the source's close (EOF or reset) is
// passed on. Time is a microsecond argument, randomness a seed, so a test
// drives it with literal timestamps.
//
// The shell (chaos_connection.cpp) drives one pipe per direction:
//  - reader: reads at most room() bytes (0: do not read at all, not even to
//    notice a close) and calls push_data(); on EOF or a read error it calls
//    push_end() and stops reading.
//  - writer: loops on next(now) and does what the Action says: write the
//    bytes (then wrote(n)), wait until a time (or until told something
//    changed), pass the end on (then passed_end()), or close the connection
//    because a limit_data toxic's budget is spent.
//  - set_toxics() whenever the proxy's toxic list changes; discard() when the
//    destination is gone (a write failed).
//
// Per-direction behaviour of each toxic:
//   outage / half_open  held: room() 0 and next() idle. Nothing read, written
//                       or passed on; what was read stays, in order.
//   latency             each chunk (and the end) leaves latency +- jitter after
//                       it was read; chunks leave in order.
//   bandwidth           writes of at most rate/20 bytes (50 ms worth), spaced
//                       so the rate is not exceeded.
//   slicer              writes of average_size +- size_variation bytes,
//                       delay_us apart.
//   limit_data          counts bytes written since the toxic applied; when the
//                       count reaches `bytes` (at once for 0) next() says
//                       limit_close.
//   slow_close          the end leaves delay_ms after it was read.
//   reset_peer          not a pipe toxic: the connection arms its timers.
// Several toxics of one type combine: latencies add, the lowest rate wins,
// the first slicer applies, the longest slow_close applies, every limit counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "resilink/lab/toxic.h"

namespace resilink::lab {

class ToxicPipe {
 public:
  enum class End { none, eof, reset };

  struct Action {
    enum class Kind {
      idle,         // nothing to do until data arrives or the toxics change
      wait,         // nothing to do before until_us
      write,        // write data[0..size) to the destination, then wrote(n)
      shutdown,     // pass the EOF on: shutdown(SHUT_WR), then passed_end()
      reset,        // pass the reset on: RST the destination, then passed_end()
      limit_close,  // limit_data `toxic` is spent: close the connection
    };
    Kind kind = Kind::idle;
    uint64_t until_us = 0;
    const uint8_t* data = nullptr;
    size_t size = 0;
    std::string toxic;
  };

  // Bytes held between source and destination at most: a stalled
  // destination backs up into the kernel's buffers, as with plain TCP.
  static constexpr size_t kDefaultCapacity = 64 * 1024;

  ToxicPipe(Stream direction, uint64_t seed, size_t capacity = kDefaultCapacity);

  // All active toxics, in the order they were added; the pipe keeps those that
  // act on its direction.
  void set_toxics(const std::vector<Toxic>& active);
  bool held() const { return held_; }
  Stream direction() const { return direction_; }

  // ---- reader side
  size_t room() const;
  void push_data(const uint8_t* data, size_t size, uint64_t now_us);
  // The source closed (eof) or failed (reset). A reset after an EOF that was
  // already passed on is passed on too; anything else after the first end is
  // ignored.
  void push_end(End end, uint64_t now_us);
  bool end_seen() const { return end_ != End::none; }

  // ---- writer side
  Action next(uint64_t now_us);
  void wrote(size_t count, uint64_t now_us);
  void passed_end() { end_passed_ = true; }
  // The destination is gone: drop what is queued and whatever comes later.
  void discard();
  bool discarded() const { return discarded_; }
  // Nothing more will cross: the EOF was passed on, or the destination is gone
  // and the source has ended.
  bool finished() const;

  // ---- getters
  uint64_t crossed() const { return crossed_; }  // bytes written to the destination
  size_t queued() const { return queued_; }

 private:
  struct Chunk {
    std::vector<uint8_t> bytes;
    size_t offset = 0;
    uint64_t arrived_us = 0;
    uint64_t release_us = 0;
    uint64_t latency_generation = 0;  // release_us drawn for this generation
  };
  struct Limit {
    std::string name;
    uint64_t bytes = 0;
    uint64_t count = 0;
  };

  uint64_t draw_latency_us();

  Stream direction_;
  ChaosRandom random_;
  size_t capacity_;
  std::vector<Toxic> toxics_;  // those acting on this direction

  // folded from toxics_
  bool held_ = false;
  uint64_t latency_us_ = 0, jitter_us_ = 0;
  uint64_t latency_generation_ = 1;  // bumped when latency or jitter change
  uint64_t rate_ = 0;                // bytes per second, 0: unlimited
  std::optional<Toxic> slicer_;
  uint64_t slow_close_us_ = 0;
  std::vector<Limit> limits_;

  std::deque<Chunk> chunks_;
  size_t queued_ = 0;
  End end_ = End::none;
  bool end_passed_ = false;
  uint64_t end_arrived_us_ = 0;
  uint64_t end_latency_us_ = 0;
  uint64_t end_latency_generation_ = 0;
  bool discarded_ = false;

  uint64_t slice_left_ = 0;
  uint64_t next_slice_at_us_ = 0;
  uint64_t bandwidth_ready_at_us_ = 0;
  uint64_t crossed_ = 0;
};

}  // namespace resilink::lab
