// `resilink soak`, `demo` and `lab` end to end, as a user runs them: the
// process's exit status, its summary line and the JSON report it writes.
// These are the CI runs the outage lab promises: at least 100 outages through
// the fault proxy and 20 real link-down outages between network namespaces,
// with nothing lost, duplicated or reordered.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "resilink/lab/netns.h"
#include "support/child_process.h"

namespace resilink::test {
namespace {

using namespace std::chrono_literals;

struct Outcome {
  std::optional<int> status;
  std::vector<std::string> lines;
  std::string errors;  // stderr
};

// Runs `resilink args...` (after `prefix`, e.g. a command that drops privileges).
Outcome run(std::vector<std::string> args, std::chrono::seconds timeout,
            std::function<void(ChildProcess&, const std::vector<std::string>&)> during = {},
            std::vector<std::string> prefix = {}) {
  args.insert(args.begin(), RESILINK_BINARY);
  args.insert(args.begin(), prefix.begin(), prefix.end());
  std::string log = ::testing::TempDir() + "soak_test_stderr_" + std::to_string(::getpid()) + ".log";
  ChildProcess child(args, log);
  Outcome out;
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    child.read_lines(out.lines, 100);
    if (during) during(child, out.lines);
    if ((out.status = child.wait(1ms))) break;
  }
  child.read_lines(out.lines, 100);
  if (!out.status) {
    child.terminate();
    child.wait(5s);
  }
  std::ifstream err(log);
  for (std::string line; std::getline(err, line);) {
    std::fprintf(stderr, "  stderr: %s\n", line.c_str());
    out.errors += line + "\n";
  }
  std::remove(log.c_str());
  for (const auto& line : out.lines) std::printf("  | %s\n", line.c_str());
  return out;
}

// The last line of a metrics file: the report.
nlohmann::json report(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  std::remove(path.c_str());
  if (last.empty()) return {};
  auto j = nlohmann::json::parse(last);
  return j.value("event", "") == "report" ? j : nlohmann::json{};
}

void expect_exactly_once(const nlohmann::json& r) {
  ASSERT_FALSE(r.is_null()) << "no report in the metrics file";
  for (const char* direction : {"up", "down"}) {
    const auto& m = r["messages"][direction];
    SCOPED_TRACE(direction);
    EXPECT_GT(m["sent"].get<int>(), 0);
    EXPECT_EQ(m["delivered"], m["sent"]);
    EXPECT_EQ(m["lost"], 0);
    EXPECT_EQ(m["duplicated"], 0);
    EXPECT_EQ(m["reordered"], 0);
    EXPECT_EQ(m["unexpected"], 0);
  }
  EXPECT_EQ(r["drained"], true);
  EXPECT_EQ(r["ok"], true);
  // Every outage long enough to be declared was declared, at both ends.
  EXPECT_EQ(r["missed_detections"], 0);
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + name + "_" + std::to_string(::getpid());
}

TEST(Soak, AHundredOutagesAndOtherFaultsThroughTheProxyLoseDuplicateAndReorderNothing) {
  std::string metrics = temp_path("soak.jsonl");
  Outcome out = run({"soak", "--plain", "--clients", "8", "--timeout-ms", "300", "--interval-ms", "20",
                     "--outages", "100", "--metrics", metrics,
                     "--fault", "outage every=1500ms+-700ms for=600ms+-450ms",
                     "--fault", "half_open stream=upstream every=5s+-2s for=700ms",
                     "--fault", "half_open stream=downstream every=5s+-2s for=700ms",
                     "--fault", "reset_peer every=6s+-3s"},
                    170s);
  ASSERT_EQ(out.status, 0);
  nlohmann::json r = report(metrics);
  expect_exactly_once(r);
  EXPECT_GE(r["outages"].get<int>(), 100);
  // A link declared down with no fault to explain it is a false outage.
  EXPECT_EQ(r["false_outages"], 0);
  ASSERT_FALSE(out.lines.empty());
  EXPECT_TRUE(std::regex_match(out.lines.back(),
                               std::regex(R"(soak: 8 clients, \d+ outages, \d+ messages each way, 0 lost, 0 duplicated, 0 reordered)")))
      << out.lines.back();
}

TEST(Soak, SigintEndsTheRunWithTheReport) {
  std::string metrics = temp_path("sigint.jsonl");
  bool sent = false;
  auto started = std::chrono::steady_clock::now();
  Outcome out = run({"soak", "--plain", "--clients", "2", "--timeout-ms", "300", "--duration", "0",
                     "--metrics", metrics, "--fault", "outage every=1s for=500ms"},
                    60s, [&](ChildProcess& child, const std::vector<std::string>&) {
                      if (!sent && std::chrono::steady_clock::now() - started > 4s) {
                        child.interrupt();
                        sent = true;
                      }
                    });
  ASSERT_TRUE(sent);
  ASSERT_EQ(out.status, 0);
  nlohmann::json r = report(metrics);
  expect_exactly_once(r);
  ASSERT_FALSE(out.lines.empty());
  EXPECT_EQ(out.lines.back().rfind("soak: 2 clients, ", 0), 0u) << out.lines.back();
}

TEST(Demo, PrintsTheSummaryLineAndWritesTheTimeline) {
  std::string svg = temp_path("demo.svg");
  Outcome out = run({"demo", "--duration", "8", "--timeout-ms", "300", "--svg", svg,
                     "--fault", "outage every=2s+-500ms for=700ms+-200ms"},
                    90s);
  ASSERT_EQ(out.status, 0);
  ASSERT_GE(out.lines.size(), 2u);
  EXPECT_TRUE(std::regex_match(out.lines.back(),
                               std::regex(R"(demo: 4 clients, [1-9]\d* outages, [1-9]\d* messages each way, 0 lost, 0 duplicated, 0 reordered)")))
      << out.lines.back();
  EXPECT_EQ(out.lines[out.lines.size() - 2], "timeline: " + svg);
  std::ifstream in(svg);
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(svg.c_str());
  EXPECT_NE(doc.find("<svg"), std::string::npos);
  EXPECT_NE(doc.find("</svg>"), std::string::npos);
  EXPECT_NE(doc.find("client 4"), std::string::npos);
}

TEST(Demo, ABadFaultSpecIsNamedAndExitsTwo) {
  Outcome out = run({"demo", "--fault", "blackhole every=1s"}, 20s);
  EXPECT_EQ(out.status, 2);
}

TEST(Lab, TwentyRealLinkDownOutagesLoseDuplicateAndReorderNothing) {
  std::string why;
  if (!lab::NetnsLab::can_run(&why)) GTEST_SKIP() << why;
  std::string metrics = temp_path("lab.jsonl");
  Outcome out = run({"lab", "--plain", "--clients", "4", "--timeout-ms", "300", "--outages", "20",
                     "--every", "2s+-500ms", "--for", "800ms+-300ms", "--metrics", metrics},
                    170s);
  ASSERT_EQ(out.status, 0);
  nlohmann::json r = report(metrics);
  expect_exactly_once(r);
  EXPECT_GE(r["outages"].get<int>(), 20);
  EXPECT_EQ(r["false_outages"], 0);
}

TEST(Lab, WithoutPrivilegesItSaysSoAndExitsNonZero) {
  if (::geteuid() != 0 || ::access("/usr/bin/setpriv", X_OK) != 0)
    GTEST_SKIP() << "needs root and setpriv to run the lab as an unprivileged user";
  Outcome out = run({"lab", "--outages", "1"}, 20s, {},
                    {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"});
  if (out.status == 126 || out.status == 127) GTEST_SKIP() << "user nobody cannot reach the binary";
  EXPECT_EQ(out.status, 2);
  EXPECT_NE(out.errors.find("needs root"), std::string::npos) << out.errors;
}

}  // namespace
}  // namespace resilink::test
