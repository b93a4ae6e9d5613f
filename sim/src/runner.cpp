#include "resilink/sim/runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace resilink::sim {

namespace {

void merge(RunReport& r, WorldResult& w) {
  r.events += w.events;
  r.sim_ms += w.sim_ms;
  r.client_hours += w.client_hours;
  r.outages_injected += w.outages_injected;
  r.outages_long += w.outages_long;
  r.edge_probes += w.edge_probes;
  r.resets += w.resets;
  r.reboots += w.reboots;
  r.server_restarts += w.server_restarts;
  r.reader_stalls += w.reader_stalls;
  r.engine_outages += w.engine_outages;
  r.connects += w.connects;
  r.replacements += w.replacements;
  r.handshake_timeouts += w.handshake_timeouts;
  r.quiesce_max_ms = std::max(r.quiesce_max_ms, w.quiesce_ms);
  r.liveness_bound_ms = w.liveness_bound_ms;
  r.detect_client_ms.insert(r.detect_client_ms.end(), w.detect_client_ms.begin(), w.detect_client_ms.end());
  r.detect_server_ms.insert(r.detect_server_ms.end(), w.detect_server_ms.begin(), w.detect_server_ms.end());
  r.counts.add(w.counts);
  for (std::string& f : w.failures)
    if (r.failures.size() < 20) r.failures.push_back(std::move(f));
}

// Nearest-rank percentile of a sorted vector.
uint32_t percentile(const std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > v.size()) rank = v.size();
  return v[rank - 1];
}

}  // namespace

RunReport run_seeds(const RunOptions& options) {
  auto started = std::chrono::steady_clock::now();
  std::vector<WorldResult> results(options.seeds);
  std::atomic<uint64_t> next{0};
  auto worker = [&] {
    for (;;) {
      uint64_t i = next.fetch_add(1);
      if (i >= options.seeds) return;
      results[i] = run_world(options.first_seed + i, options.world);
      // Keep memory flat on long runs: only the summary figures stay.
      results[i].detect_client_ms.shrink_to_fit();
      results[i].detect_server_ms.shrink_to_fit();
    }
  };
  unsigned threads = std::max(1u, std::min<unsigned>(options.threads, static_cast<unsigned>(options.seeds)));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();

  RunReport r;
  r.seeds = options.seeds;
  uint64_t h = 0xcbf29ce484222325ull;
  for (WorldResult& w : results) {
    for (int b = 0; b < 8; ++b) {
      h ^= (w.trace_hash >> (8 * b)) & 0xff;
      h *= 0x100000001b3ull;
    }
    if (r.seed_hashes.size() < 16) r.seed_hashes.emplace_back(w.seed, w.trace_hash);
    merge(r, w);
  }
  r.combined_hash = h;
  std::sort(r.detect_client_ms.begin(), r.detect_client_ms.end());
  std::sort(r.detect_server_ms.begin(), r.detect_server_ms.end());
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return r;
}

void print_report(const RunReport& r, const RunOptions& o, std::FILE* out) {
  for (const std::string& f : r.failures) std::fprintf(out, "%s", f.c_str());
  const CheckCounts& c = r.counts;
  uint32_t t = o.world.timeout_ms;
  std::fprintf(out, "resilink sim: seeds %llu..%llu, %u clients x %.3f h each, T=%u ms, %u thread(s)\n",
               static_cast<unsigned long long>(o.first_seed),
               static_cast<unsigned long long>(o.first_seed + o.seeds - 1), o.world.clients,
               static_cast<double>(o.world.fault_ms) / 3600000.0, t, o.threads);
  for (const auto& [seed, hash] : r.seed_hashes)
    if (r.seeds <= 16) std::fprintf(out, "  seed %llu trace_hash=%016llx\n", static_cast<unsigned long long>(seed),
                                    static_cast<unsigned long long>(hash));
  std::fprintf(out, "trace_hash=%016llx (FNV-1a 64 over every event; combined over seeds in order)\n",
               static_cast<unsigned long long>(r.combined_hash));
  std::fprintf(out, "simulated client-hours=%.1f outages=%llu (long enough to check detection: %llu; "
               "edge probes T-1/T/T+1: %llu)\n",
               r.client_hours, static_cast<unsigned long long>(r.outages_injected),
               static_cast<unsigned long long>(r.outages_long), static_cast<unsigned long long>(r.edge_probes));
  std::fprintf(out, "faults: resets=%llu client reboots=%llu server restarts=%llu reader stalls=%llu\n",
               static_cast<unsigned long long>(r.resets), static_cast<unsigned long long>(r.reboots),
               static_cast<unsigned long long>(r.server_restarts),
               static_cast<unsigned long long>(r.reader_stalls));
  std::fprintf(out, "engines: outages declared=%llu connections=%llu replace_old takeovers=%llu "
               "handshake timeouts=%llu\n",
               static_cast<unsigned long long>(r.engine_outages), static_cast<unsigned long long>(r.connects),
               static_cast<unsigned long long>(r.replacements),
               static_cast<unsigned long long>(r.handshake_timeouts));
  std::fprintf(out, "qos: messages=%llu delivered=%llu lost_with_sender_restart=%llu lost_unread_at_receiver_restart=%llu\n",
               static_cast<unsigned long long>(c.qos_messages), static_cast<unsigned long long>(c.qos_delivered),
               static_cast<unsigned long long>(c.lost_with_sender), static_cast<unsigned long long>(c.lost_unread));
  std::fprintf(out, "non-qos: written=%llu delivered=%llu lost(allowed)=%llu unwritten_at_restart=%llu\n",
               static_cast<unsigned long long>(c.nonqos_written), static_cast<unsigned long long>(c.nonqos_delivered),
               static_cast<unsigned long long>(c.nonqos_lost), static_cast<unsigned long long>(c.nonqos_unwritten));
  std::fprintf(out, "v1 limits (expected, not violations): v1_mid0_duplicate=%llu receiver_restart_duplicate=%llu "
               "v1_mid0_lost=%llu\n",
               static_cast<unsigned long long>(c.v1_mid0_duplicate),
               static_cast<unsigned long long>(c.receiver_restart_duplicate),
               static_cast<unsigned long long>(c.v1_mid0_lost));
  std::fprintf(out, "detection (outage start -> declared, bound T+T/4=%u ms): client n=%zu p50=%u p99=%u max=%u; "
               "server n=%zu p50=%u p99=%u max=%u\n",
               t + t / 4, r.detect_client_ms.size(), percentile(r.detect_client_ms, 50),
               percentile(r.detect_client_ms, 99), percentile(r.detect_client_ms, 100),
               r.detect_server_ms.size(), percentile(r.detect_server_ms, 50), percentile(r.detect_server_ms, 99),
               percentile(r.detect_server_ms, 100));
  std::fprintf(out, "liveness: everything delivered within max %llu ms of faults stopping (bound %llu ms)\n",
               static_cast<unsigned long long>(r.quiesce_max_ms),
               static_cast<unsigned long long>(r.liveness_bound_ms));
  std::fprintf(out, "violations by kind:");
  for (size_t k = 0; k < static_cast<size_t>(Violation::count); ++k)
    std::fprintf(out, " %s=%llu", violation_name(static_cast<Violation>(k)),
                 static_cast<unsigned long long>(c.violations[k]));
  std::fprintf(out, "\n");
  double sim_s = static_cast<double>(r.sim_ms) / 1000.0 * o.world.clients;
  std::fprintf(out, "wall=%.2f s events=%llu (%.2f M events/s) simulated client-time/wall-time=%.0fx\n",
               r.wall_s, static_cast<unsigned long long>(r.events),
               static_cast<double>(r.events) / r.wall_s / 1e6, sim_s / r.wall_s);
  std::fprintf(out, "violations=%llu\n", static_cast<unsigned long long>(c.total_violations()));
}

}  // namespace resilink::sim
