// The sections of `resilink bench`. Each runs its measurements and adds its
// figures (with the baselines measured in the same run) to the Report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "resilink/bench/report.h"

namespace resilink::bench {

// Options shared by every section.
struct CommonOptions {
  bool quick = false;        // fewer repetitions and smaller sizes (tests, smoke runs)
  uint32_t repetitions = 5;  // medians are taken over repetitions
  std::string self_exe;      // path of the resilink binary (/proc/self/exe), for child processes
};

// qos round trip vs raw TCP ping-pong vs mosquitto qos1 (bench/src/rtt.cpp).
struct RttOptions {
  CommonOptions common;
  // 1022 B is the longest payload a Linux-build line carries (RESILINK_MAX_LINE 1024 - mid).
  std::vector<size_t> payload_sizes = {32, 1022};
  uint32_t round_trips = 20000;  // per payload size and repetition
};
void run_rtt(const RttOptions& options, Report& report);

// qos and non-qos messages per second, one client and many (bench/src/throughput.cpp).
struct ThroughputOptions {
  CommonOptions common;
  uint32_t messages = 200000;  // per run (20000 with --quick)
  uint32_t clients = 16;       // the many-clients runs; one client is always measured too
  size_t payload_size = 32;
  uint8_t window = 16;             // qos messages in flight per client (RESILINK_TX_WINDOW on Linux)
  uint32_t generator_threads = 0;  // 0: nproc - 1, at least 1, at most 4
};
void run_throughput(const ThroughputOptions& options, Report& report);

// N idle clients with keepalives: memory, CPU, false outages (bench/src/scale.cpp).
struct ScaleOptions {
  CommonOptions common;
  uint32_t clients = 10000;
  uint32_t timeout_ms = 2000;
  uint32_t hold_s = 20;  // how long the full load is held and measured
  // The ramp: client counts below `clients` to hold and measure first. Empty:
  // 1-2-5 steps from clients/10 (1000, 2000, 5000 for 10,000).
  std::vector<uint32_t> steps;
  uint32_t step_hold_s = 0;        // hold of each earlier step; 0: hold_s/2, at most 10 (2 with quick)
  uint32_t generator_threads = 2;  // load generator threads, each driving many links
  uint32_t connects_in_flight = 256;  // links connecting at once (spares the accept backlog)
  // The server's application: "callback" takes every line in Server::on_line;
  // "coroutine" runs a readline() loop per connection (about 1 KB more each).
  std::string app = "callback";
};
void run_scale(const ScaleOptions& options, Report& report);

// Engine micro-benchmarks and the core's static RAM and flash per target
// (bench/src/core_section.cpp).
struct CoreOptions {
  CommonOptions common;
  // Also build the core for ESP8266 and Cortex-M0+ (tools/mcu-build.sh, a few
  // seconds) and report its flash and static RAM; skipped with a note where
  // the cross toolchains are missing.
  bool mcu = true;
};
void run_core(const CoreOptions& options, Report& report);

}  // namespace resilink::bench
