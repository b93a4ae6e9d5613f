// `resilink bench`: runs the chosen sections in order (rtt, throughput, scale,
// core), prints every figure next to the baseline measured in the same run and
// its target, and writes the same report as JSON. Missing a target is reported,
// not an error; a section that cannot run at all makes the exit status 1.
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"
#include "resilink/bench/sections.h"

namespace resilink::apps {

namespace {

const std::vector<std::string> kSections = {"rtt", "throughput", "scale", "core"};

struct BenchCommand {
  std::vector<std::string> only;
  bool quick = false;
  std::string json_path = "resilink-bench.json";
  uint32_t repetitions = 0;  // 0: 5, or 2 with --quick
  bench::RttOptions rtt;
  bench::ThroughputOptions throughput;
  bench::ScaleOptions scale;
  bench::CoreOptions core;
};

std::string self_exe() {
  char path[4096];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

// The command line as typed (argv joined by spaces), for the report.
std::string command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!raw.empty() && raw.back() == '\0') raw.pop_back();
  std::replace(raw.begin(), raw.end(), '\0', ' ');
  return raw;
}

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Machine facts without the hostname: enough to compare two runs' figures.
void set_machine_context(bench::Report& report) {
  utsname u{};
  ::uname(&u);
  report.set("nproc", std::thread::hardware_concurrency());
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (!line.starts_with("model name")) continue;
    size_t colon = line.find(':');
    if (colon != std::string::npos && colon + 2 <= line.size()) report.set("cpu", line.substr(colon + 2));
    break;
  }
  report.set("kernel", std::string(u.sysname) + " " + u.release + " " + u.machine);
#if defined(__clang__)
  report.set("compiler", std::string("clang ") + __clang_version__);
#elif defined(__GNUC__)
  report.set("compiler", std::string("g++ ") + __VERSION__);
#endif
  report.set("build_type", RESILINK_BUILD_TYPE);
#if defined(__SANITIZE_ADDRESS__)
  report.set("sanitized", true);
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  report.set("sanitized", true);
#endif
#endif
}

bool chosen(const BenchCommand& c, const std::string& section) {
  return c.only.empty() || std::find(c.only.begin(), c.only.end(), section) != c.only.end();
}

int run_bench(BenchCommand& c) {
  bench::CommonOptions common;
  common.quick = c.quick;
  common.repetitions = c.repetitions != 0 ? c.repetitions : (c.quick ? 2 : 5);
  common.self_exe = self_exe();
  c.rtt.common = c.throughput.common = c.scale.common = c.core.common = common;

  bench::Report report;
  set_machine_context(report);
  report.set("command_line", command_line());
  report.set("date", utc_now());
  report.set("quick", c.quick);
  report.set("repetitions", common.repetitions);

  std::vector<std::string> failed;
  nlohmann::json failures = nlohmann::json::object();  // section -> why it could not run
  auto bench_start = std::chrono::steady_clock::now();
  for (const std::string& section : kSections) {
    if (!chosen(c, section)) continue;
    std::fprintf(stderr, "bench: running %s\n", section.c_str());
    auto start = std::chrono::steady_clock::now();
    try {
      if (section == "rtt") bench::run_rtt(c.rtt, report);
      if (section == "throughput") bench::run_throughput(c.throughput, report);
      if (section == "scale") bench::run_scale(c.scale, report);
      if (section == "core") bench::run_core(c.core, report);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench: section %s failed to run: %s\n", section.c_str(), e.what());
      failed.push_back(section);
      failures[section] = e.what();
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.set("seconds_" + section, seconds);
  }
  report.set("seconds_total",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - bench_start).count());
  report.set("failed_sections", failures);

  report.print_table(std::cout);
  std::cout << "\ntargets missed: " << report.missed_targets() << '\n';
  for (const auto& [section, why] : failures.items())
    std::cout << "section " << section << " FAILED to run: " << why.get<std::string>() << '\n';
  std::cout.flush();

  std::ofstream out(c.json_path);
  out << report.to_json().dump(2) << '\n';
  out.close();
  if (!out) {
    std::fprintf(stderr, "bench: cannot write %s\n", c.json_path.c_str());
    return 1;
  }
  std::fprintf(stderr, "bench: wrote %s\n", c.json_path.c_str());
  if (!failed.empty()) {
    std::string names;
    for (const std::string& s : failed) names += (names.empty() ? "" : ", ") + s;
    std::fprintf(stderr, "bench: %zu section(s) failed to run: %s\n", failed.size(), names.c_str());
  }
  return failed.empty() ? 0 : 1;
}

}  // namespace

void register_bench(CLI::App& app, int& exit_status) {
  auto command = std::make_shared<BenchCommand>();
  BenchCommand& c = *command;
  auto* cmd = app.add_subcommand(
      "bench", "benchmarks: qos round trip against raw TCP and mosquitto, throughput, many idle clients, "
               "engine micro-benchmarks; a table with baselines, ratios and targets, and JSON");
  cmd->add_option("--only", c.only, "sections to run, comma separated (default all: rtt,throughput,scale,core)")
      ->delimiter(',')
      ->check(CLI::IsMember(kSections));
  cmd->add_flag("--quick", c.quick, "fewer repetitions and round trips (smoke runs and tests)");
  cmd->add_option("--json", c.json_path, "where to write the JSON report")->capture_default_str();
  cmd->add_option("--repetitions", c.repetitions, "repetitions per measurement, medians reported (default 5, 2 with --quick)")
      ->check(CLI::Range(1u, 1000u));
  cmd->add_option("--round-trips", c.rtt.round_trips, "rtt: round trips per payload size and repetition")
      ->check(CLI::Range(10u, 10000000u))
      ->capture_default_str();
  cmd->add_option("--messages", c.throughput.messages, "throughput: messages per run")
      ->check(CLI::Range(100u, 100000000u))
      ->capture_default_str();
  cmd->add_option("--throughput-clients", c.throughput.clients, "throughput: clients in the many-clients runs")
      ->check(CLI::Range(2u, 1000u))
      ->capture_default_str();
  cmd->add_option("--clients", c.scale.clients, "scale: idle clients")->check(CLI::Range(1u, 1000000u))->capture_default_str();
  cmd->add_option("--scale-app", c.scale.app, "scale: the server's application, callback (Server::on_line) or coroutine (readline loop per link)")
      ->check(CLI::IsMember({"callback", "coroutine"}))
      ->capture_default_str();
  cmd->add_option("--hold-s", c.scale.hold_s, "scale: seconds the full load is held and measured")
      ->check(CLI::Range(1u, 3600u))
      ->capture_default_str();
  cmd->callback([command, &exit_status] { exit_status = run_bench(*command); });
}

}  // namespace resilink::apps
