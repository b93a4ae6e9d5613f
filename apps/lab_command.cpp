// `resilink lab`: real-kernel outages. The server and the clients live in two
// network namespaces joined by a veth pair; an outage sets the link down.
// Needs root.
#include "commands.h"
#include "soak_options.h"

namespace resilink::apps {

namespace {

bool parse_spread(const std::string& text, lab::Spread& out, const char* option) {
  auto spread = lab::parse_spread(text);
  if (!spread || spread->mean_ms == 0) {
    std::fprintf(stderr, "bad %s \"%s\": expected a duration with an optional spread, e.g. 3s+-1s\n",
                 option, text.c_str());
    return false;
  }
  out = *spread;
  return true;
}

}  // namespace

void register_lab(CLI::App& app, int& exit_status) {
  auto command = std::make_shared<SoakCommand>();
  auto every = std::make_shared<std::string>("3s+-1s");
  auto length = std::make_shared<std::string>("1500ms+-500ms");
  lab::SoakOptions& o = command->options;
  o.name = "lab";
  o.mode = lab::FaultMode::netns;
  o.clients = 4;
  o.timeout_ms = 500;
  o.duration_s = 0;
  o.max_outages = 20;
  o.message_interval_ms = 50;
  auto* cmd = app.add_subcommand(
      "lab", "real outages: server and clients in two network namespaces, the veth link set down "
             "and up (needs root)");
  add_soak_options(*cmd, *command);
  cmd->add_option("--every", *every, "time between outages, e.g. 3s+-1s")->capture_default_str();
  cmd->add_option("--for", *length, "length of an outage, e.g. 1500ms+-500ms")->capture_default_str();
  cmd->callback([command, every, length, &exit_status] {
    command->faults.clear();
    if (!finish_soak_options(*command) || !parse_spread(*every, command->options.netns_every, "--every") ||
        !parse_spread(*length, command->options.netns_for, "--for")) {
      exit_status = 2;
      return;
    }
    exit_status = lab::run_soak(command->options);
  });
}

}  // namespace resilink::apps
