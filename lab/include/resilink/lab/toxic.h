// Toxics: the faults the chaos proxy (chaos_proxy.h) injects, their text
// forms, and the seeded draws of a repeating fault schedule. Pure: no I/O, no
// clock, no global randomness, so every parse and every draw is testable as is.
//
// Text forms (one toxic per line, words separated by spaces):
//
//   <type> [name=<word>] [stream=upstream|downstream|both] [<attribute>=<value>]...
//
//   type        attributes (default)                      stream default
//   outage      -                                         both
//   half_open   -                                         upstream (both is refused)
//   reset_peer  timeout=<duration> (0)                    both
//   slow_close  delay=<duration> (0)                      both
//   limit_data  bytes=<size> (0)                          both
//   slicer      average_size=<n> (1) size_variation=<n> (0) delay=<duration> (0)
//   latency     latency=<duration> (0) jitter=<duration> (0)
//   bandwidth   rate=<size> (required; bytes per second)
//
// Durations: an integer with an optional fraction and a unit, us, ms or s
// ("500us", "50ms", "1.5s"); a bare number is milliseconds. Fields kept in ms
// must be whole milliseconds. Sizes: an integer with an optional unit, B, KB
// (1000), KiB (1024), MB, MiB ("64KB"); "/s" may follow a rate ("64KB/s").
//
// A schedule is a toxic plus when it strikes:
//
//   <toxic spec> every=<spread> [for=<spread>]
//
// with spread = <duration>[+-<duration>] ("20s+-10s", "3s", "500ms+-100ms"):
// a value drawn uniformly from [mean - spread, mean + spread] each time.
// `every` is the time from one start to the next; when a fault's drawn
// duration reaches past the next drawn start, that start waits for its end,
// so the faults of one schedule never overlap. Without for= the fault is
// instantaneous (applied and removed at once); only reset_peer with no
// timeout makes sense so, and the parser refuses the others.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace resilink::lab {

enum class Stream { upstream, downstream, both };  // upstream = client -> server
enum class ToxicType { outage, half_open, reset_peer, slow_close, limit_data, slicer, latency, bandwidth };

const char* to_string(ToxicType type);
const char* to_string(Stream stream);
std::optional<ToxicType> toxic_type_from_string(std::string_view text);
std::optional<Stream> stream_from_string(std::string_view text);

struct Toxic {
  std::string name;  // unique among active toxics; empty on add(): the type's name
  ToxicType type = ToxicType::outage;
  Stream stream = Stream::both;  // half_open: upstream or downstream only (default upstream)
  uint32_t latency_ms = 0, jitter_ms = 0;  // latency
  uint64_t rate_bytes_per_s = 0;           // bandwidth
  uint32_t delay_ms = 0;                   // slow_close: delay before a close is passed on
  uint32_t timeout_ms = 0;                 // reset_peer: RST after this long (0: at once)
  uint64_t bytes = 0;                      // limit_data: close after this many bytes
  uint32_t average_size = 1, size_variation = 0, delay_us = 0;  // slicer

  bool operator==(const Toxic&) const = default;
};

// True if `toxic` acts on `direction` (upstream or downstream).
bool affects(const Toxic& toxic, Stream direction);
// outage and half_open: the toxics that stop traffic and hold new connections.
bool is_blocking(ToxicType type);

// Parses a text form. On failure returns nullopt and, if error is given, a
// message naming the bad word: "unknown toxic type 'blackhole'",
// "latency: bad value 'abc' for 'jitter'".
std::optional<Toxic> parse_toxic(std::string_view text, std::string* error);
// Checks a toxic built in code (parse_toxic's results always pass). Returns
// the problem, or "" if none. The empty name and half_open's stream=both are
// accepted: add() fills in the defaults.
std::string validate_toxic(const Toxic& toxic);
// The canonical text form; parse_toxic(format_toxic(t)) == t.
std::string format_toxic(const Toxic& toxic);

struct Spread {
  uint32_t mean_ms = 0, spread_ms = 0;  // "20s+-10s", "3s", "500ms+-100ms"
  bool operator==(const Spread&) const = default;
};

struct FaultSchedule {
  Toxic toxic;
  Spread every;
  Spread duration;  // {0, 0}: instantaneous
  bool operator==(const FaultSchedule&) const = default;
};

// "outage every=20s+-10s for=3s+-2s", "half_open stream=downstream every=5s
// for=1s", "reset_peer every=30s" (no for=: instantaneous).
std::optional<FaultSchedule> parse_schedule(std::string_view text, std::string* error);
std::string validate_schedule(const FaultSchedule& schedule);
std::string format_schedule(const FaultSchedule& schedule);

std::optional<Spread> parse_spread(std::string_view text);
std::string format_spread(const Spread& spread);
// Duration text to microseconds ("500us", "50ms", "2s", "1.5s", bare = ms).
std::optional<uint64_t> parse_duration_us(std::string_view text);
std::string format_duration_ms(uint64_t ms);

// SplitMix64: small, fast and the same on every platform and standard
// library (std::uniform_int_distribution is not), so a seed replays exactly.
class ChaosRandom {
 public:
  explicit ChaosRandom(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in [low, high] (low <= high).
  uint64_t between(uint64_t low, uint64_t high);
  // Uniform in [mean - spread, mean + spread], never below 0.
  uint64_t around(uint64_t mean, uint64_t spread);

 private:
  uint64_t state_;
};

// Seed of stream `index` derived from one seed: schedules and connections
// each draw from their own stream, so adding one does not shift the others.
uint64_t derive_seed(uint64_t seed, uint64_t index);

// The draws of one schedule: when each fault starts (ms after the schedule
// was set up) and how long it lasts. The same schedule and seed give the same
// sequence.
class FaultPlan {
 public:
  struct Occurrence {
    uint64_t start_ms = 0;
    uint64_t duration_ms = 0;
    bool operator==(const Occurrence&) const = default;
  };

  FaultPlan(const FaultSchedule& schedule, uint64_t seed);
  Occurrence next();

 private:
  Spread every_, duration_;
  ChaosRandom random_;
  uint64_t last_start_ = 0, last_end_ = 0;
};

}  // namespace resilink::lab
