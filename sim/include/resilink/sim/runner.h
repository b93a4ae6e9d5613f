// Runs many seeds of the simulator, on several threads, and reports.
//
// Many seeds of a moderate world (16 clients for one simulated hour by
// default), not one huge world: each seed is its own fault scenario, a failing
// one replays alone in a fraction of a second (`--seed S`), and seeds spread
// over threads with no sharing. Determinism is per seed; the report's sums
// and the combined hash (over the per-seed hashes in seed order) do not
// depend on the thread count.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "resilink/sim/world.h"

namespace resilink::sim {

struct RunOptions {
  uint64_t first_seed = 1;
  uint64_t seeds = 1;
  unsigned threads = 2;
  WorldOptions world;
};

struct RunReport {
  uint64_t seeds = 0;
  uint64_t combined_hash = 0;
  uint64_t events = 0;
  uint64_t sim_ms = 0;
  double client_hours = 0;
  double wall_s = 0;
  uint64_t outages_injected = 0, outages_long = 0, edge_probes = 0, resets = 0, reboots = 0,
           server_restarts = 0, reader_stalls = 0, engine_outages = 0, connects = 0,
           replacements = 0, handshake_timeouts = 0;
  uint64_t quiesce_max_ms = 0, liveness_bound_ms = 0;
  std::vector<uint32_t> detect_client_ms, detect_server_ms;
  CheckCounts counts;
  std::vector<std::string> failures;
  std::vector<std::pair<uint64_t, uint64_t>> seed_hashes;  // (seed, hash) when few seeds
};

RunReport run_seeds(const RunOptions& options);
// The figures, human-readable; `violations=N` is on its own line for scripts.
void print_report(const RunReport& report, const RunOptions& options, std::FILE* out);

}  // namespace resilink::sim
