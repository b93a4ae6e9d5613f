// The simulated network: TCP connections as two one-way pipes of bytes.
//
// A pipe keeps TCP's promises and nothing more: bytes arrive in the order
// sent, each send becomes a segment delivered after a delay (never before an
// earlier one), and a FIN or RST travels behind the data like any packet.
// What the receiver's read() returns is chunked by the world, not here. A
// pipe's storage is reused across connections, so steady-state sends and
// deliveries do not allocate.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "resilink/core/config.h"

namespace resilink::sim {

enum class SegmentKind : uint8_t { data, fin, rst };

struct Segment {
  uint64_t deliver_at;
  uint32_t len;
  SegmentKind kind;
};

class Pipe {
 public:
  static constexpr uint64_t kNotScheduled = ~0ull;

  void clear() {
    bytes_.clear();
    segments_.clear();
    byte_head_ = seg_head_ = 0;
    in_flight_ = 0;
    last_at_ = 0;
    scheduled_at = kNotScheduled;
  }
  bool empty() const { return seg_head_ == segments_.size(); }
  size_t in_flight() const { return in_flight_; }
  // Appends a segment; returns when it will arrive (no earlier than the
  // previous one: TCP delivers in order).
  uint64_t push(uint64_t at, SegmentKind kind, const uint8_t* data, size_t len) {
    if (at < last_at_) at = last_at_;
    last_at_ = at;
    segments_.push_back(Segment{at, static_cast<uint32_t>(len), kind});
    if (len) bytes_.insert(bytes_.end(), data, data + len);
    in_flight_ += len;
    return at;
  }
  const Segment& head() const { return segments_[seg_head_]; }
  const uint8_t* head_bytes() const { return bytes_.data() + byte_head_; }
  void pop() {
    const Segment& s = segments_[seg_head_++];
    byte_head_ += s.len;
    in_flight_ -= s.len;
    if (seg_head_ == segments_.size()) {
      segments_.clear();
      bytes_.clear();
      seg_head_ = byte_head_ = 0;
    } else if (byte_head_ > 65536 && byte_head_ * 2 > bytes_.size()) {
      bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(byte_head_));
      byte_head_ = 0;
    }
  }

  uint64_t scheduled_at = kNotScheduled;  // time of the pending delivery event

 private:
  std::vector<uint8_t> bytes_;
  std::vector<Segment> segments_;
  size_t byte_head_ = 0;
  size_t seg_head_ = 0;
  size_t in_flight_ = 0;
  uint64_t last_at_ = 0;
};

enum Direction : uint8_t { kUp = 0, kDown = 1 };  // up: client to server

// One TCP connection between client `client` and the server.
struct Conn {
  uint64_t gen = 0;          // unique per world; events carry it to detect reuse
  uint32_t client = 0;
  bool in_use = false;
  bool client_open = false;  // the client still holds its socket
  bool server_open = false;  // the server still holds its socket
  bool attached = false;     // id line read, socket handed to the server engine
  bool rst_sent[2] = {false, false};
  uint8_t id_len = 0;
  uint8_t id[RESILINK_MAX_ID + 1] = {};
  Pipe pipe[2];
};

}  // namespace resilink::sim
