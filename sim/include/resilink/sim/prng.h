// The simulator's one source of randomness: xoshiro256** seeded by SplitMix64.
//
// Written out here rather than taken from <random>: the standard engines are
// portable but the std distributions are not (libstdc++ and libc++ draw
// different numbers from the same engine), and a seed must replay the same
// run with g++ and clang alike. Only integer arithmetic, no floating point in
// any draw that decides what happens.
#pragma once

#include <cstdint>

namespace resilink::sim {

// SplitMix64 (Steele, Lea, Flood 2014): expands one 64-bit seed into a stream
// of well-mixed words; used to seed xoshiro and to derive per-seed sub-seeds.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// xoshiro256** 1.0 (Blackman, Vigna 2018).
class Prng {
 public:
  explicit Prng(uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t& word : state_) word = splitmix64(s);
  }

  uint64_t next() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, n); n > 0. The modulo bias (n / 2^64) is far below what
  // any fault rate here can resolve.
  uint64_t below(uint64_t n) { return next() % n; }
  // Uniform in [lo, hi], both inclusive.
  uint64_t between(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }
  // True with probability per_mille / 1000.
  bool chance(uint32_t per_mille) { return below(1000) < per_mille; }
  // Roughly exponential with the given mean, from integers only (no libm,
  // so no platform differences): a geometric count of 1/64 steps of the mean,
  // plus a uniform fraction of one step. Used for fault inter-arrival times.
  uint64_t exponential(uint64_t mean) {
    uint64_t steps = 0;
    while (below(64) != 0 && steps < 64 * 16) ++steps;
    return mean * steps / 64 + below(mean / 64 + 1);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

}  // namespace resilink::sim
