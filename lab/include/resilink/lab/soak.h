// The soak: a resilink server and N clients in one process, qos traffic both
// ways, faults injected on their links, every message and link change
// recorded and checked (see recorder.h). `resilink demo`, `resilink soak` and
// `resilink lab` are this one machine with different settings:
//
// - chaos (demo, soak): each client reaches the server through its own
//   ChaosProxy on loopback, with that proxy's own seeded fault schedule;
// - netns (lab): the server and the clients live in two network namespaces
//   joined by a veth pair, and an outage sets the link down for real (every
//   client at once, as when an access point goes away).
//
// Traffic: message k of each direction of each client is due at
// start + k * interval. Both directions stop at the same due time, so they
// carry the same number of messages; a sender held up by an outage catches up
// afterwards, and latency counts from the due time. At the end the faults
// stop, everything still queued is delivered (or the run is not "drained"),
// and the report is written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "resilink/lab/chaos_proxy.h"

namespace resilink::lab {

enum class FaultMode { chaos, netns };
enum class ViewMode { live, plain, quiet };

struct SoakOptions {
  std::string name = "soak";     // the summary line's first word: demo, soak, lab
  int clients = 4;
  uint32_t timeout_ms = 1000;
  uint64_t seed = 1;
  double duration_s = 60;        // traffic time; 0: until max_outages or SIGINT
  uint64_t max_outages = 0;      // stop once this many outages have ended (0: no limit)
  FaultMode mode = FaultMode::chaos;
  // chaos: the schedules every client's proxy runs (each drawn from its own seed).
  std::vector<FaultSchedule> faults;
  // netns: when the shared link goes down and for how long.
  Spread netns_every{3000, 1000}, netns_for{1500, 500};
  uint32_t message_interval_ms = 100;  // per client, each way
  size_t payload_bytes = 32;
  std::string metrics_path;      // JSON lines; empty: none
  std::string svg_path;          // the timeline picture; empty: none
  std::string log_path;          // library logs; empty: warnings to stderr (quiet in live view)
  ViewMode view = ViewMode::plain;
};

// Runs the soak, prints the report and the summary line to stdout, and
// returns the exit status: 0 when nothing was lost, duplicated, reordered or
// unexpected and everything sent was delivered; 1 otherwise; 2 when the run
// could not start (the reason is printed to stderr).
int run_soak(const SoakOptions& options);

}  // namespace resilink::lab
