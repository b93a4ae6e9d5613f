// `resilink demo`: the main job. A server and 4 clients, each through its own
// fault proxy with an outage every few seconds, qos traffic both ways, a live
// view, a report, the summary line and the timeline picture.
#include "commands.h"
#include "soak_options.h"

namespace resilink::apps {

void register_demo(CLI::App& app, int& exit_status) {
  lab::SoakOptions o;
  o.clients = 4;
  o.timeout_ms = 1000;
  o.duration_s = 60;
  o.message_interval_ms = 100;
  o.svg_path = "resilink-demo.svg";
  register_proxy_soak(app, "demo",
                      "a server and N clients through a fault proxy that makes an outage every few "
                      "seconds; watch them heal, then read the summary and the timeline picture",
                      o, "outage every=7s+-3s for=2s+-1500ms", exit_status);
}

}  // namespace resilink::apps
