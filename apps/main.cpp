// The resilink command line: stdio bridges, the fault proxy, the outage lab,
// the demo, the soak and the simulator.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "commands.h"

int main(int argc, char** argv) {
  // Logs go to stderr: stdout carries the bridged messages and the reports.
  spdlog::set_default_logger(spdlog::stderr_color_mt("resilink"));
  spdlog::set_pattern("%H:%M:%S.%e %^%l%$ %v");

  CLI::App app{"resilink: resilient links between WiFi microcontrollers and servers"};
  app.require_subcommand(1);
  // Applied as soon as it is parsed, before any subcommand runs.
  app.add_option_function<std::string>(
         "--log-level", [](const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); },
         "trace, debug, info, warn, error, off (default info)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  int exit_status = 0;
  resilink::apps::register_server(app, exit_status);
  resilink::apps::register_client(app, exit_status);
  resilink::apps::register_demo(app, exit_status);
  resilink::apps::register_soak(app, exit_status);
  resilink::apps::register_lab(app, exit_status);
  resilink::apps::register_chaos(app, exit_status);
  resilink::apps::register_sim(app, exit_status);
  resilink::apps::register_bench(app, exit_status);
  resilink::apps::register_bench_server(app, exit_status);
  CLI11_PARSE(app, argc, argv);
  return exit_status;
}
