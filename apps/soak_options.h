// Command-line options shared by `resilink demo`, `soak` and `lab`.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "resilink/lab/soak.h"

namespace resilink::apps {

struct SoakCommand {
  lab::SoakOptions options;
  std::vector<std::string> faults;  // schedule specs (chaos mode)
  bool plain = false;               // plain lines even on a terminal
};

// Adds the options every soak-like command takes, with `defaults` shown.
void add_soak_options(CLI::App& cmd, SoakCommand& command);
// Adds --fault (chaos mode's schedules).
void add_fault_option(CLI::App& cmd, SoakCommand& command, const std::string& default_fault);
// Parses the fault specs and picks the view; prints the problem and returns
// false when a spec is bad.
bool finish_soak_options(SoakCommand& command);
// A command that runs the harness through fault proxies (demo, soak), with
// its own defaults and default fault schedule.
void register_proxy_soak(CLI::App& app, const std::string& name, const std::string& description,
                         const lab::SoakOptions& defaults, const std::string& default_fault,
                         int& exit_status);

}  // namespace resilink::apps
