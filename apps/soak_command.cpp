// `resilink soak`: the demo's machinery without a time limit, for hours; JSON
// lines as it goes, the report at the end or on SIGINT.
#include "commands.h"
#include "soak_options.h"

namespace resilink::apps {

void register_soak(CLI::App& app, int& exit_status) {
  auto command = std::make_shared<SoakCommand>();
  lab::SoakOptions& o = command->options;
  o.name = "soak";
  o.clients = 8;
  o.timeout_ms = 1000;
  o.duration_s = 0;
  o.message_interval_ms = 50;
  o.metrics_path = "resilink-soak.jsonl";
  auto* cmd = app.add_subcommand(
      "soak", "run clients through the fault proxy until --duration, --outages or Ctrl-C, then report "
              "detection, recovery, latency and lost/duplicated/reordered counts");
  add_soak_options(*cmd, *command);
  add_fault_option(*cmd, *command, "outage every=4s+-2s for=2s+-1500ms");
  cmd->callback([command, &exit_status] {
    exit_status = finish_soak_options(*command) ? lab::run_soak(command->options) : 2;
  });
}

}  // namespace resilink::apps
