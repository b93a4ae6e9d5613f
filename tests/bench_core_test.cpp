// `resilink bench --only core --quick` end to end, as a user runs it: every
// core figure is in the JSON and positive, the decoder carries its memchr
// baseline, and the microcontroller sizes are there (with the Cortex-M0+ flash
// budget as target) unless the cross toolchains are missing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "support/child_process.h"

namespace resilink::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

bool on_path(const std::string& tool) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && ::access((dir + "/" + tool).c_str(), X_OK) == 0) return true;
  return false;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct QuickRun {
  std::optional<int> status;
  json report;
  std::string stderr_text;
};

// One run for every test below: it measures, so it is not repeated.
const QuickRun& quick_run() {
  static const QuickRun run = [] {
    QuickRun r;
    std::string tag = std::to_string(::getpid());
    std::string json_path = ::testing::TempDir() + "bench_core_test_" + tag + ".json";
    std::string log = ::testing::TempDir() + "bench_core_test_" + tag + ".log";
    ChildProcess child({RESILINK_BINARY, "bench", "--only", "core", "--quick", "--json", json_path}, log);
    r.status = child.wait(90s);
    std::ifstream in(json_path);
    if (in) r.report = json::parse(in, nullptr, false);
    r.stderr_text = read_file(log);
    std::remove(json_path.c_str());
    std::remove(log.c_str());
    return r;
  }();
  return run;
}

std::map<std::string, json> core_figures(const json& report) {
  std::map<std::string, json> figures;
  if (!report.is_object() || !report.contains("figures")) return figures;
  for (const json& f : report["figures"])
    if (f.value("section", "") == "core") figures[f.value("name", "")] = f;
  return figures;
}

TEST(BenchCore, QuickRunExitsZeroAndWritesTheReport) {
  const QuickRun& run = quick_run();
  ASSERT_TRUE(run.status.has_value()) << "still running after 90 s";
  EXPECT_EQ(*run.status, 0) << run.stderr_text;
  ASSERT_TRUE(run.report.is_object()) << run.stderr_text;
  EXPECT_TRUE(run.report["context"]["failed_sections"].empty()) << run.stderr_text;
  // The medians are over the --quick repetitions, warm-up excluded.
  const json& bench = run.report["context"]["core_bench"];
  EXPECT_EQ(bench.value("repetitions", 0), 2);
  EXPECT_GT(bench.value("warmup_s", 0.0), 0.0);
}

TEST(BenchCore, EveryMicroBenchmarkFigureIsPresentAndPositive) {
  auto figures = core_figures(quick_run().report);
  std::vector<std::pair<std::string, std::string>> expected = {
      {"idle engine tick, 10000 engines", "ns/tick"},
      {"idle engine tick, 1000 engines", "ns/tick"},
      {"next_deadline(), link up", "ns/call"},
      {"handle_timeout(), nothing due", "ns/call"},
      {"sizeof(core::Engine), Linux capacities", "B"},
  };
  for (const char* size : {"32 B", "1000 B"}) {
    expected.push_back({std::string("line decoder, ") + size + " messages", "lines/s"});
    expected.push_back({std::string("server engine rx, ") + size + " qos messages", "lines/s"});
    expected.push_back({std::string("client engine send, ") + size + " qos messages", "msg/s"});
    expected.push_back({std::string("two engines, qos message -> ACK, ") + size, "events/s"});
  }
  for (const auto& [name, unit] : expected) {
    SCOPED_TRACE(name);
    auto it = figures.find(name);
    ASSERT_NE(it, figures.end()) << "missing figure";
    EXPECT_GT(it->second.value("value", 0.0), 0.0);
    EXPECT_EQ(it->second.value("unit", ""), unit);
  }
}

TEST(BenchCore, TheDecoderIsMeasuredAgainstMemchrInTheSameRun) {
  auto figures = core_figures(quick_run().report);
  for (const char* name : {"line decoder, 32 B messages", "line decoder, 1000 B messages"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(figures.count(name));
    const json& f = figures[name];
    ASSERT_TRUE(f["baseline"].is_number());
    double baseline = f["baseline"].get<double>();
    EXPECT_GT(baseline, 0.0);
    EXPECT_NEAR(f["ratio"].get<double>(), f["value"].get<double>() / baseline, 1e-9);
  }
}

TEST(BenchCore, MicrocontrollerSizesOrASkipNote) {
  const QuickRun& run = quick_run();
  auto figures = core_figures(run.report);
  bool toolchains = on_path("xtensa-lx106-elf-g++") && on_path("arm-none-eabi-g++");
  if (!toolchains) {
    EXPECT_NE(run.report["context"].value("core_mcu", "").find("skipped"), std::string::npos);
    EXPECT_FALSE(figures.count("flash, core text+rodata, Cortex-M0+"));
    GTEST_SKIP() << "cross toolchains missing: the section says so and reports no sizes";
  }
  for (const char* target : {"ESP8266", "Cortex-M0+"}) {
    SCOPED_TRACE(target);
    std::string flash = std::string("flash, core text+rodata, ") + target;
    std::string ram = std::string("static RAM, one engine, ") + target;
    ASSERT_TRUE(figures.count(flash));
    ASSERT_TRUE(figures.count(ram));
    EXPECT_GT(figures[flash]["value"].get<double>(), 0.0);
    EXPECT_GT(figures[ram]["value"].get<double>(), 0.0);
  }
  // The flash budget tools/mcu-build.sh enforces is the figure's target.
  const json& m0 = figures["flash, core text+rodata, Cortex-M0+"];
  EXPECT_EQ(m0.value("goal", ""), "at_most");
  EXPECT_EQ(m0.value("target", 0.0), 6144.0);
}

}  // namespace
}  // namespace resilink::test
