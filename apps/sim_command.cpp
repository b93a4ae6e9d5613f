// `resilink sim`: the deterministic simulator (sim/). Runs seeds of simulated
// worlds, prints every failure with its seed and replay command, then the
// figures. Exit status 1 if any invariant was violated.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "commands.h"
#include "resilink/sim/runner.h"

namespace resilink::apps {

namespace {

struct SimCommand {
  sim::RunOptions run;
  double client_hours = 0;
  double hours = 1.0;
  bool seed_given = false;
  bool sabotage = false;
};

std::string replay_prefix(const SimCommand& c) {
  const sim::WorldOptions& w = c.run.world;
  char buf[320];
  std::snprintf(buf, sizeof buf, "resilink sim --clients %u --hours %g --timeout-ms %u --fault-every-ms %u "
                "--server-restart-every-ms %u --message-every-ms %u%s%s",
                w.clients, c.hours, w.timeout_ms, w.fault_every_ms, w.server_restart_every_ms,
                w.message_every_ms, w.nonqos_first ? " --nonqos-first" : "",
                c.sabotage ? " --sabotage-duplicate-line" : "");
  return buf;
}

int run_sim(SimCommand& c) {
  sim::RunOptions& o = c.run;
  o.world.fault_ms = static_cast<uint64_t>(std::llround(c.hours * 3600000.0));
  if (o.world.fault_ms < 1000) o.world.fault_ms = 1000;
  if (c.sabotage) o.world.sabotage = sim::Sabotage::duplicate_line;
  if (c.client_hours > 0 && !c.seed_given) {
    double per_seed = o.world.clients * static_cast<double>(o.world.fault_ms) / 3600000.0;
    o.seeds = static_cast<uint64_t>(std::ceil(c.client_hours / per_seed));
  }
  if (o.seeds == 0) o.seeds = 1;
  if (o.world.trace) o.threads = 1;  // one seed's events, in order
  o.world.replay = replay_prefix(c);
  sim::RunReport report = sim::run_seeds(o);
  print_report(report, o, stdout);
  std::fflush(stdout);
  return report.counts.total_violations() == 0 ? 0 : 1;
}

}  // namespace

void register_sim(CLI::App& app, int& exit_status) {
  auto command = std::make_shared<SimCommand>();
  SimCommand& c = *command;
  c.run.threads = std::max(1u, std::thread::hardware_concurrency());
  auto* cmd = app.add_subcommand(
      "sim", "deterministic simulation: the real engines over a simulated faulty network in virtual time; "
             "checks delivery, detection and liveness invariants; every failure prints its seed");
  cmd->add_option("--seed", c.run.first_seed, "first seed (alone: replay exactly this seed)")
      ->each([command](const std::string&) { command->seed_given = true; })
      ->capture_default_str();
  cmd->add_option("--seeds", c.run.seeds, "number of seeds, run in sequence from --seed")->capture_default_str();
  cmd->add_option("--client-hours", c.client_hours,
                  "run enough seeds for this many simulated client-hours (ignored with --seed)");
  cmd->add_option("--clients", c.run.world.clients, "clients per seed")->check(CLI::Range(1u, 1000u))->capture_default_str();
  cmd->add_option("--hours", c.hours, "simulated hours of faults and traffic per seed")
      ->check(CLI::Range(0.001, 1000.0))
      ->capture_default_str();
  cmd->add_option("--timeout-ms", c.run.world.timeout_ms, "outage timeout T (both ends)")
      ->check(CLI::Range(100u, 60000u))
      ->capture_default_str();
  cmd->add_option("--fault-every-ms", c.run.world.fault_every_ms, "mean time between faults per client (0: none)")
      ->capture_default_str();
  cmd->add_option("--server-restart-every-ms", c.run.world.server_restart_every_ms,
                  "mean time between server restarts (0: none)")
      ->capture_default_str();
  cmd->add_option("--message-every-ms", c.run.world.message_every_ms,
                  "mean time between messages per end (0: drawn per seed, 0.5..5 s)")
      ->capture_default_str();
  cmd->add_option("--threads", c.run.threads, "worker threads, each taking whole seeds")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  cmd->add_flag("--nonqos-first", c.run.world.nonqos_first,
                "applications make their first message after start non-qos (against PROTOCOL.md §6a's advice)");
  cmd->add_flag("--trace", c.run.world.trace, "print every event (use with --seed)");
  cmd->add_flag("--sabotage-duplicate-line", c.sabotage,
                "test the checker: a broken network replays message lines as mid 00 (must FAIL)");
  cmd->callback([command, &exit_status] { exit_status = run_sim(*command); });
}

}  // namespace resilink::apps
