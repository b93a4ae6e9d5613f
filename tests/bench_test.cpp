// `resilink bench`: the Report on its own (targets, table, JSON), then the rtt
// and throughput sections end to end as a user runs them, with --quick.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "resilink/bench/report.h"
#include "support/child_process.h"

namespace resilink::bench {
namespace {

using namespace std::chrono_literals;

Figure figure(double value, std::optional<double> baseline = std::nullopt, Goal goal = Goal::none,
              double target = 0, bool on_ratio = false) {
  Figure f;
  f.section = "rtt";
  f.name = "qos round trip p50, 32 B";
  f.value = value;
  f.unit = "us";
  f.baseline = baseline;
  f.baseline_name = "raw TCP p50";
  f.goal = goal;
  f.target = target;
  f.target_on_ratio = on_ratio;
  return f;
}

TEST(BenchReport, NoGoalIsAlwaysMet) {
  EXPECT_TRUE(figure(5).met());
  EXPECT_TRUE(figure(5, 0.0).met());
}

TEST(BenchReport, AtMostAndAtLeastOnTheValue) {
  EXPECT_TRUE(figure(10, std::nullopt, Goal::at_most, 10).met());
  EXPECT_FALSE(figure(10.5, std::nullopt, Goal::at_most, 10).met());
  EXPECT_TRUE(figure(100000, std::nullopt, Goal::at_least, 100000).met());
  EXPECT_FALSE(figure(99999, std::nullopt, Goal::at_least, 100000).met());
}

TEST(BenchReport, RatioTargetsJudgeValueOverBaseline) {
  EXPECT_DOUBLE_EQ(*figure(30, 20.0).ratio(), 1.5);
  EXPECT_TRUE(figure(30, 20.0, Goal::at_most, 2.0, true).met());
  EXPECT_FALSE(figure(50, 20.0, Goal::at_most, 2.0, true).met());
  EXPECT_TRUE(figure(50, 20.0, Goal::at_least, 2.0, true).met());
  EXPECT_FALSE(figure(30, 20.0, Goal::at_least, 2.0, true).met());
}

TEST(BenchReport, ARatioTargetWithoutABaselineIsNotMet) {
  EXPECT_FALSE(figure(30, std::nullopt, Goal::at_most, 2.0, true).ratio());
  EXPECT_FALSE(figure(30, std::nullopt, Goal::at_most, 2.0, true).met());
  EXPECT_FALSE(figure(30, 0.0, Goal::at_most, 2.0, true).ratio());  // no division by zero
  EXPECT_FALSE(figure(30, 0.0, Goal::at_most, 2.0, true).met());
}

Report sample_report() {
  Report report;
  report.set("nproc", 2);
  report.add(figure(30, 20.0, Goal::at_most, 2.0, true));
  Figure slow = figure(50, 20.0, Goal::at_most, 2.0, true);
  slow.name = "qos round trip p50, 1022 B";
  slow.note = "a noisy neighbour";
  report.add(slow);
  Figure rate;
  rate.section = "throughput";
  rate.name = "qos msg/s per server core, 1 client";
  rate.value = 250000;
  rate.unit = "msg/s";
  rate.goal = Goal::at_least;
  rate.target = 100000;
  report.add(rate);
  return report;
}

TEST(BenchReport, TableShowsValueBaselineRatioTargetAndMet) {
  std::ostringstream out;
  sample_report().print_table(out);
  std::string table = out.str();
  std::printf("%s", table.c_str());
  for (const char* expected : {"section", "figure", "baseline", "ratio", "target", "met",
                               "qos round trip p50, 32 B", "30 us", "raw TCP p50 20 us", "1.50x", "<= 2x",
                               "2.50x", "250000 msg/s", ">= 100000 msg/s", "throughput",
                               "note: rtt / qos round trip p50, 1022 B: a noisy neighbour"})
    EXPECT_NE(table.find(expected), std::string::npos) << expected;
  // One row per figure, judged: 32 B met, 1022 B missed, the rate met.
  std::istringstream lines(table);
  std::vector<std::string> judged;
  for (std::string line; std::getline(lines, line);)
    if (line.ends_with(" yes") || line.ends_with(" no")) judged.push_back(line.substr(line.rfind(' ') + 1));
  EXPECT_EQ(judged, (std::vector<std::string>{"yes", "no", "yes"}));
}

TEST(BenchReport, JsonHoldsEveryFieldAndCountsMissedTargets) {
  Report report = sample_report();
  EXPECT_EQ(report.missed_targets(), 1u);
  nlohmann::json j = report.to_json();
  EXPECT_EQ(j["context"]["nproc"], 2);
  ASSERT_EQ(j["figures"].size(), 3u);
  const nlohmann::json& first = j["figures"][0];
  EXPECT_EQ(first["section"], "rtt");
  EXPECT_EQ(first["name"], "qos round trip p50, 32 B");
  EXPECT_EQ(first["value"], 30.0);
  EXPECT_EQ(first["unit"], "us");
  EXPECT_EQ(first["baseline"], 20.0);
  EXPECT_EQ(first["baseline_name"], "raw TCP p50");
  EXPECT_DOUBLE_EQ(first["ratio"].get<double>(), 1.5);
  EXPECT_EQ(first["goal"], "at_most");
  EXPECT_EQ(first["target"], 2.0);
  EXPECT_EQ(first["target_on_ratio"], true);
  EXPECT_EQ(first["met"], true);
  EXPECT_EQ(first["note"], "");
  EXPECT_EQ(j["figures"][1]["met"], false);
  const nlohmann::json& rate = j["figures"][2];
  EXPECT_TRUE(rate["baseline"].is_null());
  EXPECT_TRUE(rate["ratio"].is_null());
  EXPECT_EQ(rate["goal"], "at_least");
}

// ---------------------------------------------------------------- end to end

struct BenchRun {
  std::optional<int> status;
  std::vector<std::string> lines;
  nlohmann::json report;
};

BenchRun run_bench(const std::vector<std::string>& args) {
  std::string json = ::testing::TempDir() + "bench_test_" + std::to_string(::getpid()) + ".json";
  std::string log = ::testing::TempDir() + "bench_test_stderr_" + std::to_string(::getpid()) + ".log";
  std::vector<std::string> argv = {RESILINK_BINARY, "bench"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--json", json});
  test::ChildProcess child(argv, log);
  BenchRun run;
  auto end = std::chrono::steady_clock::now() + 100s;
  while (std::chrono::steady_clock::now() < end) {
    child.read_lines(run.lines, 100);
    if ((run.status = child.wait(1ms))) break;
  }
  child.read_lines(run.lines, 100);
  for (const std::string& line : run.lines) std::printf("  | %s\n", line.c_str());
  std::ifstream err(log);
  for (std::string line; std::getline(err, line);) std::fprintf(stderr, "  stderr: %s\n", line.c_str());
  std::remove(log.c_str());
  std::ifstream in(json);
  if (in) run.report = nlohmann::json::parse(in, nullptr, false);
  std::remove(json.c_str());
  return run;
}

std::set<std::string> expected_figures(bool mosquitto) {
  std::set<std::string> names;
  for (const char* size : {"32 B", "1022 B"}) {
    for (const char* p : {"p50", "p99", "max"}) {
      names.insert(std::string("raw TCP ping-pong ") + p + ", " + size);
      names.insert(std::string("qos round trip ") + p + ", " + size);
      if (mosquitto) names.insert(std::string("mosquitto qos1 round trip ") + p + ", " + size);
    }
    names.insert(std::string("qos round trip p50 vs mosquitto, ") + size);
  }
  for (const char* who : {"1 client", "16 clients"})
    for (const char* mode : {"qos", "non-qos"}) {
      names.insert(std::string(mode) + " msg/s per server core, " + who);
      names.insert(std::string(mode) + " msg/s wall clock, " + who);
      names.insert(std::string("generator CPU, ") + mode + ", " + who);
    }
  return names;
}

TEST(BenchCommand, RttAndThroughputQuickReportEveryFigureWithBaselineAndRatio) {
  BenchRun run = run_bench({"--only", "rtt,throughput", "--quick"});
  ASSERT_EQ(run.status, 0);
  bool has_missed_line = false;
  for (const std::string& line : run.lines) has_missed_line |= line.starts_with("targets missed: ");
  EXPECT_TRUE(has_missed_line);
  ASSERT_TRUE(run.report.is_object());

  const nlohmann::json& context = run.report["context"];
  for (const char* key : {"nproc", "kernel", "compiler", "build_type", "command_line", "date"})
    EXPECT_TRUE(context.contains(key)) << key;
  EXPECT_NE(context["command_line"].get<std::string>().find("--only rtt,throughput"), std::string::npos);
  EXPECT_EQ(context["failed_sections"].size(), 0u);

  const bool mosquitto = ::access("/usr/sbin/mosquitto", X_OK) == 0;
  std::set<std::string> seen;
  size_t missed = 0;
  for (const nlohmann::json& f : run.report["figures"]) {
    std::string name = f["name"];
    SCOPED_TRACE(name);
    EXPECT_TRUE(seen.insert(name).second) << "twice";
    EXPECT_TRUE(f["section"] == "rtt" || f["section"] == "throughput");
    EXPECT_GT(f["value"].get<double>(), 0);
    EXPECT_FALSE(f["unit"].get<std::string>().empty());
    if (!f["baseline"].is_null()) {
      double baseline = f["baseline"];
      EXPECT_GT(baseline, 0);
      EXPECT_FALSE(f["baseline_name"].get<std::string>().empty());
      ASSERT_FALSE(f["ratio"].is_null());
      EXPECT_NEAR(f["ratio"].get<double>(), f["value"].get<double>() / baseline, 1e-9 * f["ratio"].get<double>());
    } else {
      EXPECT_TRUE(f["ratio"].is_null());
    }
    if (name.starts_with("qos round trip p50, ")) {
      EXPECT_EQ(f["goal"], "at_most");
      EXPECT_EQ(f["target"], 2.0);
      EXPECT_EQ(f["target_on_ratio"], true);
      EXPECT_EQ(f["met"], f["ratio"].get<double>() <= 2.0);
    }
    if (name.starts_with("qos round trip p50 vs mosquitto")) {
      if (mosquitto) {
        EXPECT_EQ(f["goal"], "at_most");
        EXPECT_EQ(f["met"], f["ratio"].get<double>() <= 1.0);
      } else {
        EXPECT_EQ(f["note"], "mosquitto not installed");
      }
    }
    if (name.starts_with("qos msg/s per server core")) {
      EXPECT_EQ(f["goal"], "at_least");
      EXPECT_EQ(f["target"], 100000.0);
      EXPECT_EQ(f["met"], f["value"].get<double>() >= 100000);
    }
    // Every figure but the raw baseline's own stands next to a baseline.
    bool baseline_expected = !name.starts_with("raw TCP ping-pong") &&
                             (mosquitto || name.find("vs mosquitto") == std::string::npos);
    EXPECT_EQ(!f["baseline"].is_null(), baseline_expected);
    if (!f["met"].get<bool>()) ++missed;
  }
  EXPECT_EQ(seen, expected_figures(mosquitto));
  bool counted = false;
  for (const std::string& line : run.lines) counted |= line == "targets missed: " + std::to_string(missed);
  EXPECT_TRUE(counted);
}

TEST(BenchCommand, AnUnknownSectionIsAUsageError) {
  BenchRun run = run_bench({"--only", "rtt,latency"});
  EXPECT_NE(run.status, 0);
  EXPECT_TRUE(run.report.is_null());
}

}  // namespace
}  // namespace resilink::bench
