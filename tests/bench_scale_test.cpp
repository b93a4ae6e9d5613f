// `resilink bench --only scale --quick --clients 300`: the scale section runs
// end to end and its JSON report holds the figures. Only what must hold on
// any machine is asserted (no false outages, every link up at the server);
// the memory and CPU targets are the benchmark's to judge, not the test's.
// The bare keepalive loop that gives the CPU figure its baseline must keep
// every link up too.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "support/child_process.h"

namespace {

using nlohmann::json;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The scale figure whose name starts with `prefix`, or null.
const json* find_figure(const json& report, const std::string& prefix) {
  for (const json& f : report["figures"])
    if (f["section"] == "scale" && f["name"].get<std::string>().rfind(prefix, 0) == 0) return &f;
  return nullptr;
}

TEST(BenchScale, ThreeHundredIdleClientsHoldWithoutFalseOutages) {
  const std::string json_path = testing::TempDir() + "bench_scale_test.json";
  const std::string log_path = testing::TempDir() + "bench_scale_test.stderr";
  std::remove(json_path.c_str());
  resilink::test::ChildProcess bench(
      {RESILINK_BINARY, "bench", "--only", "scale", "--quick", "--clients", "300", "--json", json_path}, log_path);
  ASSERT_TRUE(bench.running());
  std::optional<int> status = bench.wait(std::chrono::seconds(90));
  std::string log = slurp(log_path);
  ASSERT_TRUE(status.has_value()) << "bench still running after 90 s; stderr:\n" << log;
  ASSERT_EQ(*status, 0) << log;

  json report = json::parse(slurp(json_path));
  ASSERT_TRUE(report["context"].contains("scale")) << report.dump(2);
  EXPECT_EQ(report["context"]["scale"]["clients"], 300);

  const json* outages = find_figure(report, "false outages");
  ASSERT_NE(outages, nullptr) << report.dump(2);
  EXPECT_EQ((*outages)["value"], 0) << (*outages)["note"] << "\n" << log;
  EXPECT_EQ((*outages)["goal"], "at_most");
  EXPECT_EQ((*outages)["target"], 0);

  const json* links = find_figure(report, "links up at the server");
  ASSERT_NE(links, nullptr) << report.dump(2);
  EXPECT_EQ((*links)["value"], 300) << (*links)["note"];

  const json* memory = find_figure(report, "server user-space memory per connection");
  ASSERT_NE(memory, nullptr);
  EXPECT_GT((*memory)["value"].get<double>(), 0);  // a connection costs something
  EXPECT_EQ((*memory)["goal"], "at_most");
  EXPECT_EQ((*memory)["target"], 2048);

  const json* cpu = find_figure(report, "server CPU at keepalive load");
  ASSERT_NE(cpu, nullptr);
  EXPECT_GE((*cpu)["value"].get<double>(), 0);
  EXPECT_EQ((*cpu)["target"], 10);

  // The floor: the same links kept alive by the bare epoll loop, measured in
  // the same run after the resilink server. Its links must all have stayed up
  // (a loop that failed to send keepalives would show here as outages), and
  // its CPU is the CPU figure's baseline.
  const json& floor = report["context"]["scale"]["floor"];
  ASSERT_EQ(floor["measured"], true) << floor.dump() << "\n" << log;
  EXPECT_EQ(floor["clients"], 300);
  EXPECT_EQ(floor["server_outages"], 0) << floor.dump();
  EXPECT_EQ(floor["generator_outages"], 0) << floor.dump();
  EXPECT_GT(floor["hold_s"].get<double>(), 0);
  EXPECT_EQ((*cpu)["baseline"], floor["server_cpu_percent"]);
  EXPECT_EQ((*cpu)["baseline_name"], "bare loop");
  const json* floor_figure = find_figure(report, "bare keepalive loop CPU, 300 clients");
  ASSERT_NE(floor_figure, nullptr) << report.dump(2);
  EXPECT_EQ((*floor_figure)["value"], floor["server_cpu_percent"]);

  EXPECT_NE(find_figure(report, "server kernel memory per connection"), nullptr);
  EXPECT_NE(find_figure(report, "load generator CPU"), nullptr);
  EXPECT_NE(find_figure(report, "connect rate"), nullptr);

  // Every step of the ramp was measured and every link came up at each.
  const json& steps = report["context"]["scale"]["steps"];
  ASSERT_FALSE(steps.empty());
  EXPECT_EQ(steps.back()["clients"], 300);
  for (const json& step : steps) {
    EXPECT_EQ(step["server_up"], step["clients"]) << step.dump();
    EXPECT_EQ(step["generator_up"], step["clients"]) << step.dump();
  }
}

}  // namespace
