// One simulated world, one seed: N clients and the server, the real core
// engines, a simulated network and a fault schedule, all in virtual time.
//
// The world is a third shell beside server/ and client/: it drives each
// engine through the loop in core/engine.h (handle_timeout at
// next_deadline(), act on state(), feed received bytes, send tx_pending()) and
// makes no protocol decision of its own. Like the server shell it reads the
// id line of each new connection (2T deadline, core::validate_client_id) and
// applies replace_old; like the client shell it connects when the engine is in
// `connecting` and reports success or failure.
//
// Everything random comes from one Prng seeded with the seed, and every event
// runs from one EventQueue, so a seed replays exactly: `trace_hash` (FNV-1a 64
// over every traced event) is the same on every run and every compiler.
//
// Phases: faults and traffic for `fault_ms`; then faults stop (every outage
// ends, rebooting clients boot, a restarting server comes up), applications
// stop creating messages, and the world runs until every qos message is
// delivered or the liveness bound passes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "resilink/sim/checker.h"

namespace resilink::sim {

// Test seams: a deliberately broken network, to prove the checker fails.
enum class Sabotage : uint8_t {
  none,
  // Now and then copies a message line (client to server) and sends the copy
  // again right behind it with mid 00, as a buggy middlebox replaying data
  // might: the receiver takes it for a restart and delivers it twice.
  duplicate_line,
};

// Relative weights of the per-client faults (0 disables a kind).
struct FaultMix {
  uint32_t outage = 45;       // both directions stall (bytes held in flight)
  uint32_t half_open = 15;    // one direction stalls
  uint32_t reset = 8;         // both ends receive an RST
  uint32_t reboot = 6;        // the client's engine and application are lost
  uint32_t edge_probe = 8;    // an outage ending exactly T-1, T or T+1 after the last byte
  uint32_t reader_stall = 10; // an application stops reading (receive queue fills)
  uint32_t total() const { return outage + half_open + reset + reboot + edge_probe + reader_stall; }
};

struct WorldOptions {
  uint32_t clients = 16;
  uint64_t fault_ms = 3600000;            // length of the fault phase
  uint32_t timeout_ms = 2000;             // T, both ends
  uint32_t fault_every_ms = 90000;        // mean time between faults, per client
  uint32_t server_restart_every_ms = 1200000;  // mean; 0: never
  uint32_t message_every_ms = 0;          // mean per end; 0: drawn per seed (0.5..5 s)
  FaultMix mix;
  bool nonqos_first = false;  // the application ignores §6a's advice
  bool trace = false;         // print every event
  Sabotage sabotage = Sabotage::none;
  std::string replay;         // the command that replays a seed (for FAIL lines)
};

struct WorldResult {
  uint64_t seed = 0;
  uint64_t trace_hash = 0;
  uint64_t events = 0;
  uint64_t sim_ms = 0;                   // virtual time run, both phases
  double client_hours = 0;               // clients x fault phase
  uint64_t outages_injected = 0;         // link outages: both ways, half-open, edge probes
  uint64_t outages_long = 0;             // of which long enough that detection is checked
  uint64_t edge_probes = 0;
  uint64_t resets = 0;
  uint64_t reboots = 0;
  uint64_t server_restarts = 0;
  uint64_t reader_stalls = 0;
  uint64_t engine_outages = 0;           // declared by client and server engines
  uint64_t connects = 0;                 // connections that reached the server engine
  uint64_t replacements = 0;             // replace_old took over a still-open connection
  uint64_t handshake_timeouts = 0;
  uint64_t quiesce_ms = 0;               // faults stop -> everything delivered
  uint64_t liveness_bound_ms = 0;
  std::vector<uint32_t> detect_client_ms;  // outage start -> declared, client end
  std::vector<uint32_t> detect_server_ms;
  CheckCounts counts;
  std::vector<std::string> failures;     // FAIL lines, each with its trace tail
};

// Runs one seed to completion.
WorldResult run_world(uint64_t seed, const WorldOptions& options);

// The liveness bound after faults stop, from T and the engine defaults:
// a connection in await_peer reads for 2T, the hold-off is 2T, a connect that
// hung just before the faults stopped times out after 2T and backs off up to
// backoff_max_ms, one refusal/block round is 2T, and the application's queue
// drains one window per round trip.
uint64_t liveness_bound_ms(uint32_t timeout_ms);

}  // namespace resilink::sim
