// The event trace of one simulated world: every event is folded into an
// FNV-1a 64 hash (two runs of a seed must give the same hash), the last
// kRing events are kept for failure reports, and with `echo` every event is
// printed as it happens (`resilink sim --seed S --trace`).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace resilink::sim {

enum class TraceKind : uint8_t {
  timer, connect, connect_fail, accept, id_line, replace, handshake_timeout, link_up, link_down,
  send, deliver, fin, rst, write, read, ack, outage_start, outage_end, half_open_start, reset,
  reboot, boot, server_restart, server_up, reader_stall, edge_probe, violation, quiet,
};

const char* trace_kind_name(TraceKind k);

struct TraceEntry {
  uint64_t at;
  uint32_t end;    // end index (client i, or clients + i for the server end of i)
  TraceKind kind;
  uint64_t a;      // kind-specific
  uint64_t b;
};

class Trace {
 public:
  static constexpr size_t kRing = 2048;

  explicit Trace(uint32_t clients, bool echo = false) : clients_(clients), echo_(echo) {}

  void add(uint64_t at, uint32_t end, TraceKind kind, uint64_t a = 0, uint64_t b = 0) {
    mix(at);
    mix(end);
    mix(static_cast<uint64_t>(kind));
    mix(a);
    mix(b);
    ring_[count_ % kRing] = TraceEntry{at, end, kind, a, b};
    ++count_;
    if (echo_) std::printf("%s\n", format(ring_[(count_ - 1) % kRing]).c_str());
  }

  uint64_t hash() const { return hash_; }
  uint64_t count() const { return count_; }
  // The last n entries of ends a or b (or of the world), one per line, oldest
  // first.
  std::string tail(size_t n, uint32_t a, uint32_t b) const;
  std::string format(const TraceEntry& e) const;

 private:
  void mix(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      hash_ ^= (v >> (8 * i)) & 0xff;
      hash_ *= 0x100000001b3ull;
    }
  }

  uint32_t clients_;
  bool echo_;
  uint64_t hash_ = 0xcbf29ce484222325ull;
  uint64_t count_ = 0;
  TraceEntry ring_[kRing] = {};
};

}  // namespace resilink::sim
