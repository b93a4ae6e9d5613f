// The core section of `resilink bench`: runs the Google Benchmark executable
// resilink_core_bench (bench/core_bench.cpp) with repetitions, reports the
// medians (the decoder next to a memchr splitter of the same bytes, measured in
// the same run), and the core's flash and static RAM per microcontroller target
// from tools/mcu-build.sh --json.
//
// The micro-benchmarks run in their own process so that Google Benchmark's
// flags, warm-up and repetitions apply exactly as when a developer runs it by
// hand, and so that the `resilink` binary needs no benchmark library.
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "resilink/bench/sections.h"

extern char** environ;

namespace resilink::bench {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A private scratch directory, removed with everything in it.
class ScratchDir {
 public:
  ScratchDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/resilink-bench-core-XXXXXX";
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("cannot create a scratch directory " + pattern);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs argv[0] with stdout and stderr into `log`; returns its exit status.
int run_process(const std::vector<std::string>& argv, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int err = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(err));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("waitpid failed for " + argv[0]);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The last lines of a log, to show why a child failed.
std::string tail_of(const fs::path& log, size_t max_lines = 12) {
  std::ifstream in(log);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (size_t i = lines.size() > max_lines ? lines.size() - max_lines : 0; i < lines.size(); ++i)
    out += "\n  " + lines[i];
  return out;
}

fs::path self_dir(const CommonOptions& common) {
  std::error_code ec;
  fs::path exe = common.self_exe.empty() ? fs::read_symlink("/proc/self/exe", ec) : fs::path(common.self_exe);
  return fs::weakly_canonical(exe, ec).parent_path();
}

bool is_executable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

// Next to the resilink binary (an install), then the build tree's bench/
// (resilink is in <build>/apps), then where this build put it.
fs::path find_core_bench(const CommonOptions& common) {
  fs::path dir = self_dir(common);
  std::vector<fs::path> candidates = {dir / "resilink_core_bench", dir / ".." / "bench" / "resilink_core_bench"};
#ifdef RESILINK_CORE_BENCH_PATH
  candidates.emplace_back(RESILINK_CORE_BENCH_PATH);
#endif
  std::string tried;
  for (const fs::path& c : candidates) {
    if (is_executable(c)) return fs::weakly_canonical(c);
    std::string shown = "\n  " + c.lexically_normal().string();
    if (tried.find(shown) == std::string::npos) tried += shown;
  }
  throw std::runtime_error(
      "resilink_core_bench not found (build it: cmake --build <build dir> --target resilink_core_bench); "
      "looked for:" + tried);
}

// The repository holding tools/mcu-build.sh: above the executable (a build
// tree inside a checkout), else the source directory this was compiled from.
std::optional<fs::path> find_repo_root(const CommonOptions& common) {
  std::vector<fs::path> candidates;
  for (fs::path dir = self_dir(common); !dir.empty(); dir = dir.parent_path()) {
    candidates.push_back(dir);
    if (dir == dir.root_path()) break;
  }
#ifdef RESILINK_SOURCE_DIR
  candidates.emplace_back(RESILINK_SOURCE_DIR);
#endif
  for (const fs::path& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c / "tools" / "mcu-build.sh", ec) && fs::is_directory(c / "core", ec)) return c;
  }
  return std::nullopt;
}

// ------------------------------------------------------------ micro-benchmarks

struct Aggregate {
  json median;       // the median run's fields (rates are per second)
  double cv = -1;    // coefficient of variation over repetitions, if reported
};

struct MicroResults {
  std::map<std::string, Aggregate> runs;  // by run name, e.g. "BM_ServerRx/32"
  json context;                           // Google Benchmark's, with ours added
};

MicroResults run_micro_benchmarks(const CoreOptions& options, const fs::path& exe, const ScratchDir& scratch) {
  const CommonOptions& common = options.common;
  fs::path out = scratch.path() / "core_bench.json";
  fs::path log = scratch.path() / "core_bench.log";
  // Quick runs: short measurements for smoke tests; the figures are noisier.
  std::string min_time = common.quick ? "0.02" : "0.2";
  std::string warmup = common.quick ? "0.01" : "0.1";
  std::vector<std::string> argv = {
      exe.string(),
      "--benchmark_out=" + out.string(),
      "--benchmark_out_format=json",
      "--benchmark_repetitions=" + std::to_string(common.repetitions),
      "--benchmark_report_aggregates_only=true",
      "--benchmark_min_time=" + min_time,
      "--benchmark_min_warmup_time=" + warmup,
      // Repetitions of different benchmarks interleaved: a burst of load from
      // another process spreads over all of them instead of skewing one, so
      // the decoder/memchr ratio compares like with like.
      "--benchmark_enable_random_interleaving=true",
  };
  int status = run_process(argv, log);
  if (status != 0)
    throw std::runtime_error(exe.string() + " exited with status " + std::to_string(status) + tail_of(log));
  std::ifstream in(out);
  json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("benchmarks"))
    throw std::runtime_error(exe.string() + " wrote no JSON report to " + out.string());

  MicroResults results;
  results.context = doc.value("context", json::object());
  for (const json& b : doc["benchmarks"]) {
    std::string name = b.value("run_name", b.value("name", ""));
    if (b.value("error_occurred", false))
      throw std::runtime_error("benchmark " + name + " failed: " + b.value("error_message", "?"));
    std::string kind = b.value("aggregate_name", "");
    // One repetition gives no aggregates: the single run is its own median.
    if (kind == "median" || (kind.empty() && !results.runs.count(name))) results.runs[name].median = b;
    if (kind == "cv") results.runs[name].cv = b.value("cpu_time", -1.0);
  }
  results.context["executable"] = exe.string();
  results.context["min_time_s"] = std::stod(min_time);
  results.context["warmup_s"] = std::stod(warmup);
  return results;
}

const Aggregate& need(const std::map<std::string, Aggregate>& results, const std::string& name) {
  auto it = results.find(name);
  if (it == results.end()) throw std::runtime_error("resilink_core_bench reported no result for " + name);
  return it->second;
}

double rate(const Aggregate& a, const char* counter) {
  double value = a.median.value(counter, 0.0);
  if (value <= 0) throw std::runtime_error(std::string("resilink_core_bench reported no ") + counter);
  return value;
}

std::string spread(const Aggregate& a, uint32_t repetitions) {
  if (a.cv < 0) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "; cv %.1f%% over %u reps", 100 * a.cv, repetitions);
  return buf;
}

void add_micro_figures(const MicroResults& micro, uint32_t reps, const std::string& mcu_skipped,
                       Report& report) {
  const std::map<std::string, Aggregate>& results = micro.runs;
  const json& context = micro.context;
  report.set("core_bench", {{"executable", context.value("executable", "")},
                            {"repetitions", reps},
                            {"min_time_s", context.value("min_time_s", 0.0)},
                            {"warmup_s", context.value("warmup_s", 0.0)},
                            {"core_capacities", context.value("core_capacities", "")},
                            {"cpu_scaling_enabled", context.value("cpu_scaling_enabled", false)},
                            {"library_build_type", context.value("library_build_type", "")}});
  for (int size : {32, 1000}) {
    std::string arg = "/" + std::to_string(size);
    std::string bytes = std::to_string(size) + " B";

    const Aggregate& decoder = need(results, "BM_LineDecoder" + arg);
    Figure f;
    f.section = "core";
    f.name = "line decoder, " + bytes + " messages";
    f.value = rate(decoder, "items_per_second");
    f.unit = "lines/s";
    f.baseline = rate(need(results, "BM_MemchrSplit" + arg), "items_per_second");
    f.baseline_name = "memchr split";
    f.note = "same bytes, 1460 B reads; the splitter copies only lines cut by a read" + spread(decoder, reps);
    report.add(f);

    const Aggregate& rx = need(results, "BM_ServerRx" + arg);
    f = Figure{};
    f.section = "core";
    f.name = "server engine rx, " + bytes + " qos messages";
    f.value = rate(rx, "items_per_second");
    f.unit = "lines/s";
    f.note = "handle_rx of 4-message reads (cut at 1460 B), app pops, ACKs sent" + spread(rx, reps);
    report.add(f);

    const Aggregate& tx = need(results, "BM_ClientSend" + arg);
    f = Figure{};
    f.section = "core";
    f.name = "client engine send, " + bytes + " qos messages";
    f.value = rate(tx, "items_per_second");
    f.unit = "msg/s";
    f.note = "write x4, tx_pending/handle_tx_sent, 4 ACKs in one read" + spread(tx, reps);
    report.add(f);

    const Aggregate& exchange = need(results, "BM_Exchange" + arg);
    f = Figure{};
    f.section = "core";
    f.name = "two engines, qos message -> ACK, " + bytes;
    f.value = rate(exchange, "events");
    f.unit = "events/s";
    char note[160];
    std::snprintf(note, sizeof note, "8 engine calls per exchange: %.0f exchanges/s, virtual time",
                  rate(exchange, "items_per_second"));
    f.note = note + spread(exchange, reps);
    report.add(f);
  }

  // 10000 engines (the scale section's default) do not fit in the caches,
  // 1000 mostly do: the difference is what memory costs an idle server.
  Figure f;
  for (int engines : {10000, 1000}) {
    const Aggregate& idle = need(results, "BM_IdleTick/" + std::to_string(engines));
    f = Figure{};
    f.section = "core";
    f.name = "idle engine tick, " + std::to_string(engines) + " engines";
    f.value = 1e9 / rate(idle, "items_per_second");
    f.unit = "ns/tick";
    f.note = "per engine per T/4: timer fires, keepalive out, keepalive in, re-arms" + spread(idle, reps);
    report.add(f);
  }

  const Aggregate& deadline = need(results, "BM_NextDeadline");
  f = Figure{};
  f.section = "core";
  f.name = "next_deadline(), link up";
  f.value = 1e9 / rate(deadline, "items_per_second");
  f.unit = "ns/call";
  f.note = "a driver calls it after every engine call" + spread(deadline, reps);
  report.add(f);

  const Aggregate& nothing_due = need(results, "BM_HandleTimeoutNothingDue");
  f = Figure{};
  f.section = "core";
  f.name = "handle_timeout(), nothing due";
  f.value = 1e9 / rate(nothing_due, "items_per_second");
  f.unit = "ns/call";
  f.note = "an early or spurious timer wake-up" + spread(nothing_due, reps);
  report.add(f);

  // Informative: the capacities are the Linux build's (core/CMakeLists.txt);
  // the microcontroller sizes follow it, or the reason they are missing.
  f = Figure{};
  f.section = "core";
  f.name = "sizeof(core::Engine), Linux capacities";
  f.value = std::stod(context.value("sizeof_engine", "0"));
  f.unit = "B";
  f.note = context.value("core_capacities", "");
  if (!mcu_skipped.empty()) f.note += "; microcontroller sizes skipped: " + mcu_skipped;
  report.add(f);
}

// ------------------------------------------------------------ mcu sizes

struct McuSizes {
  std::vector<Figure> figures;
  std::string skipped;  // why there are none, if so
};

// Skips (with a note, not an error) where the cross toolchains are missing.
McuSizes measure_mcu(const CommonOptions& common, const ScratchDir& scratch, Report& report) {
  McuSizes sizes;
  auto skip = [&](const std::string& why) {
    std::fprintf(stderr, "bench: core: microcontroller sizes skipped: %s\n", why.c_str());
    report.set("core_mcu", "skipped: " + why);
    sizes.skipped = why;
    return sizes;
  };
  std::optional<fs::path> root = find_repo_root(common);
  if (!root) return skip("tools/mcu-build.sh not found above " + self_dir(common).string());
  fs::path script = *root / "tools" / "mcu-build.sh";
  fs::path out = scratch.path() / "mcu.json";
  fs::path log = scratch.path() / "mcu.log";
  // Its own build directory: a concurrent ctest run uses <build>/mcu.
  int status = run_process({"/bin/bash", script.string(), "--json", out.string(),
                            (scratch.path() / "mcu").string()},
                           log);
  std::ifstream in(out);
  json doc = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) throw std::runtime_error(script.string() + " wrote no JSON (status " +
                                                 std::to_string(status) + ")" + tail_of(log));
  if (doc.contains("missing_tools")) {
    std::string tools;
    for (const json& t : doc["missing_tools"]) {
      std::string name = t.get<std::string>();
      if (name.ends_with("-g++") || name.find(".specs") != std::string::npos)
        tools += (tools.empty() ? "" : ", ") + name;
    }
    return skip("cross toolchains missing (" + (tools.empty() ? doc["missing_tools"].dump() : tools) +
                "; tools/install-deps.sh installs them)");
  }
  if (!doc.value("passed", false))
    std::fprintf(stderr, "bench: core: tools/mcu-build.sh found %d problem(s):%s\n", doc.value("problems", 0),
                 tail_of(log, 6).c_str());
  report.set("core_mcu", {{"script", script.string()}, {"passed", doc.value("passed", false)}});

  std::string budget_target = doc.value("budget_target", "");
  double budget = doc.value("text_budget", 0.0);
  const json targets = doc.value("targets", json::object());
  for (const auto& [target, t] : targets.items()) {
    std::string shown = target == "cortex-m0plus" ? "Cortex-M0+" : target == "esp8266" ? "ESP8266" : target;
    if (!t.value("text", json()).is_number()) {
      std::fprintf(stderr, "bench: core: %s: not measured (the core did not build)\n", shown.c_str());
      continue;
    }
    Figure f;
    f.section = "core";
    f.name = "flash, core text+rodata, " + shown;
    f.value = t.value("text", 0.0);
    f.unit = "B";
    f.note = std::to_string(t.value("code", 0)) + " code + " + std::to_string(t.value("rodata", 0)) +
             " rodata, -Os, default capacities; " + t.value("compiler", "");
    if (target == budget_target && budget > 0) {
      f.goal = Goal::at_most;
      f.target = budget;
    }
    sizes.figures.push_back(f);

    if (t.value("sizeof_engine", json()).is_number()) {
      f = Figure{};
      f.section = "core";
      f.name = "static RAM, one engine, " + shown;
      int data_bss = t.value("data", 0) + t.value("bss", 0);
      f.value = t.value("sizeof_engine", 0.0) + data_bss;
      f.unit = "B";
      f.note = "sizeof(Engine) " + std::to_string(t.value("sizeof_engine", 0)) + " + core .data+.bss " +
               std::to_string(data_bss) + ", default capacities";
      sizes.figures.push_back(f);
    }
  }
  return sizes;
}

}  // namespace

void run_core(const CoreOptions& options, Report& report) {
  ScratchDir scratch;
  // A part that cannot run fails the section, after whatever the other part
  // measured is in the report.
  std::string failed;
  McuSizes mcu;
  if (options.mcu) {
    try {
      mcu = measure_mcu(options.common, scratch, report);
    } catch (const std::runtime_error& e) {
      failed = e.what();
      mcu.skipped = "tools/mcu-build.sh failed";
    }
  }
  try {
    fs::path exe = find_core_bench(options.common);
    std::fprintf(stderr, "bench: core: %s (%u repetitions, medians)\n", exe.c_str(), options.common.repetitions);
    add_micro_figures(run_micro_benchmarks(options, exe, scratch), options.common.repetitions, mcu.skipped,
                      report);
  } catch (const std::runtime_error& e) {
    failed += (failed.empty() ? "" : "; ") + std::string(e.what());
  }
  for (Figure& f : mcu.figures) report.add(std::move(f));
  if (!failed.empty()) throw std::runtime_error(failed);
}

}  // namespace resilink::bench
