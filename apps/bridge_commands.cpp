// `resilink server` and `resilink client`: the stdio bridges.
#include <sstream>

#include "client_bridge.h"
#include "commands.h"
#include "server_bridge.h"

namespace resilink::apps {

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

void register_server(CLI::App& app, int& exit_status) {
  auto options = std::make_shared<ServerBridgeOptions>();
  auto expect = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "server", "stdio bridge: client messages to stdout as ID<TAB>payload; stdin ID<TAB>payload "
                "lines sent to that client with qos");
  cmd->add_option("--port", options->port, "TCP port (0: any free port)")->default_val(8123);
  cmd->add_option("--address", options->address, "address to listen on")->default_val("0.0.0.0");
  cmd->add_option("--timeout-ms", options->timeout_ms, "outage timeout in ms")
      ->default_val(2000)
      ->check(CLI::Range(8u, 3600000u));
  cmd->add_option("--expect", *expect, "comma-separated client ids to expect");
  cmd->add_flag("--reject-duplicates", options->reject_duplicates,
                "refuse a second connection for an id that is still connected "
                "(default: the newcomer replaces it)");
  cmd->add_option("--port-file", options->port_file, "write the bound port to this file");
  cmd->callback([options, expect, &exit_status] {
    options->expected = split_ids(*expect);
    exit_status = run_server_bridge(*options);
  });
}

void register_client(CLI::App& app, int& exit_status) {
  auto options = std::make_shared<ClientBridgeOptions>();
  auto* cmd = app.add_subcommand(
      "client", "stdio bridge: stdin lines sent with qos; server messages to stdout");
  cmd->add_option("--id", options->id, "client id")->required();
  cmd->add_option("--server", options->host, "server host")->default_val("127.0.0.1");
  cmd->add_option("--port", options->port, "server port")->default_val(8123);
  cmd->add_option("--timeout-ms", options->timeout_ms, "outage timeout in ms")
      ->default_val(2000)
      ->check(CLI::Range(8u, 3600000u));
  cmd->callback([options, &exit_status] { exit_status = run_client_bridge(*options); });
}

}  // namespace resilink::apps
