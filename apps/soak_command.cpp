// `resilink soak`: the demo's machinery without a time limit, for hours; JSON
// lines as it goes, the report at the end or on SIGINT.
#include "commands.h"
#include "soak_options.h"

namespace resilink::apps {

void register_soak(CLI::App& app, int& exit_status) {
  lab::SoakOptions o;
  o.clients = 8;
  o.timeout_ms = 1000;
  o.duration_s = 0;
  o.message_interval_ms = 50;
  o.metrics_path = "resilink-soak.jsonl";
  register_proxy_soak(app, "soak",
                      "run clients through the fault proxy until --duration, --outages or Ctrl-C, then "
                      "report detection, recovery, latency and lost/duplicated/reordered counts",
                      o, "outage every=4s+-2s for=2s+-1500ms", exit_status);
}

}  // namespace resilink::apps
