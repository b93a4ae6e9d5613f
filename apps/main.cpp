// The resilink command line: stdio bridges for the server and the client.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "client_bridge.h"
#include "server_bridge.h"

namespace {

std::set<std::string> split_ids(const std::string& list) {
  std::set<std::string> ids;
  std::stringstream in(list);
  std::string id;
  while (std::getline(in, id, ','))
    if (!id.empty()) ids.insert(id);
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  // Logs go to stderr: stdout carries the bridged messages.
  spdlog::set_default_logger(spdlog::stderr_color_mt("resilink"));
  spdlog::set_pattern("%H:%M:%S.%e %^%l%$ %v");

  CLI::App app{"resilink: resilient links between WiFi microcontrollers and servers"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  resilink::apps::ServerBridgeOptions server;
  std::string expect;
  auto* server_cmd = app.add_subcommand(
      "server", "stdio bridge: client messages to stdout as ID<TAB>payload; stdin ID<TAB>payload "
                "lines sent to that client with qos");
  server_cmd->add_option("--port", server.port, "TCP port (0: any free port)")->default_val(8123);
  server_cmd->add_option("--address", server.address, "address to listen on")->default_val("0.0.0.0");
  server_cmd->add_option("--timeout-ms", server.timeout_ms, "outage timeout in ms")
      ->default_val(2000)
      ->check(CLI::Range(8u, 3600000u));
  server_cmd->add_option("--expect", expect, "comma-separated client ids to expect");
  server_cmd->add_flag("--reject-duplicates", server.reject_duplicates,
                       "refuse a second connection for an id that is still connected "
                       "(default: the newcomer replaces it)");
  server_cmd->add_option("--port-file", server.port_file, "write the bound port to this file");

  resilink::ClientBridgeOptions client;
  auto* client_cmd = app.add_subcommand(
      "client", "stdio bridge: stdin lines sent with qos; server messages to stdout");
  client_cmd->add_option("--id", client.id, "client id")->required();
  client_cmd->add_option("--server", client.host, "server host")->default_val("127.0.0.1");
  client_cmd->add_option("--port", client.port, "server port")->default_val(8123);
  client_cmd->add_option("--timeout-ms", client.timeout_ms, "outage timeout in ms")
      ->default_val(2000)
      ->check(CLI::Range(8u, 3600000u));

  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));

  if (server_cmd->parsed()) {
    server.expected = split_ids(expect);
    return resilink::apps::run_server_bridge(server);
  }
  return resilink::run_client_bridge(client);
}
