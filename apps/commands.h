// The resilink subcommands. Each registers itself on the command line; its
// callback runs the command and stores the process exit status.
#pragma once

#include <CLI/CLI.hpp>

namespace resilink::apps {

void register_server(CLI::App& app, int& exit_status);  // server_bridge.cpp
void register_client(CLI::App& app, int& exit_status);  // client_bridge.cpp
void register_chaos(CLI::App& app, int& exit_status);   // chaos_command.cpp
void register_lab(CLI::App& app, int& exit_status);     // lab_command.cpp
void register_demo(CLI::App& app, int& exit_status);    // demo_command.cpp
void register_soak(CLI::App& app, int& exit_status);    // soak_command.cpp
void register_sim(CLI::App& app, int& exit_status);     // sim_command.cpp
void register_bench(CLI::App& app, int& exit_status);   // bench_command.cpp
// The server process the scale benchmark measures (hidden).
void register_bench_server(CLI::App& app, int& exit_status);  // bench_server_command.cpp

}  // namespace resilink::apps
