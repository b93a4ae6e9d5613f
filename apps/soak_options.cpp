#include "soak_options.h"

#include <unistd.h>

#include <cstdio>

namespace resilink::apps {

void add_soak_options(CLI::App& cmd, SoakCommand& command) {
  lab::SoakOptions& o = command.options;
  cmd.add_option("--clients", o.clients, "number of clients")->check(CLI::Range(1, 1000))->capture_default_str();
  cmd.add_option("--timeout-ms", o.timeout_ms, "outage timeout T in ms (both ends)")
      ->check(CLI::Range(50u, 60000u))
      ->capture_default_str();
  cmd.add_option("--seed", o.seed, "seed of the fault schedules and backoff jitter")->capture_default_str();
  cmd.add_option("--duration", o.duration_s, "seconds of traffic (0: no limit)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  cmd.add_option("--outages", o.max_outages, "stop once this many outages have ended (0: no limit)")
      ->capture_default_str();
  cmd.add_option("--interval-ms", o.message_interval_ms, "one message each way per client every this many ms")
      ->check(CLI::Range(1u, 60000u))
      ->capture_default_str();
  cmd.add_option("--payload", o.payload_bytes, "message size in bytes")
      ->check(CLI::Range(24, 1000))
      ->capture_default_str();
  cmd.add_option("--metrics", o.metrics_path, "write JSON-lines metrics here")->capture_default_str();
  cmd.add_option("--svg", o.svg_path, "write the timeline picture here")->capture_default_str();
  cmd.add_option("--log", o.log_path, "write the library log here (default: warnings to stderr)");
  cmd.add_flag("--plain", command.plain, "plain event lines even on a terminal");
}

void add_fault_option(CLI::App& cmd, SoakCommand& command, const std::string& default_fault) {
  command.faults = {default_fault};
  cmd.add_option("--fault", command.faults,
                 "a fault schedule for every client's proxy, e.g. \"outage every=6s+-2s for=2s+-1s\", "
                 "\"half_open stream=downstream every=9s for=2s\", \"reset_peer every=15s\" (repeatable)")
      ->capture_default_str();
}

bool finish_soak_options(SoakCommand& command) {
  command.options.faults.clear();
  for (const std::string& spec : command.faults) {
    std::string error;
    auto schedule = lab::parse_schedule(spec, &error);
    if (!schedule) {
      std::fprintf(stderr, "bad --fault \"%s\": %s\n", spec.c_str(), error.c_str());
      return false;
    }
    command.options.faults.push_back(*schedule);
  }
  command.options.view = !command.plain && ::isatty(STDOUT_FILENO) ? lab::ViewMode::live : lab::ViewMode::plain;
  return true;
}

void register_proxy_soak(CLI::App& app, const std::string& name, const std::string& description,
                         const lab::SoakOptions& defaults, const std::string& default_fault,
                         int& exit_status) {
  auto command = std::make_shared<SoakCommand>();
  command->options = defaults;
  command->options.name = name;
  auto* cmd = app.add_subcommand(name, description);
  add_soak_options(*cmd, *command);
  add_fault_option(*cmd, *command, default_fault);
  cmd->callback([command, &exit_status] {
    exit_status = finish_soak_options(*command) ? lab::run_soak(command->options) : 2;
  });
}

}  // namespace resilink::apps
