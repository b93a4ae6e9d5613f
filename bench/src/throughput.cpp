// The throughput section: messages per second through the resilink server,
// qos (a window of messages in flight per client) and non-qos, with one client
// and with many, against a raw TCP baseline doing the same exchange (a line
// each way per message, the same window) measured in the same run.
//
// "Per server core" is messages per second of the server thread's own CPU time
// (its CLOCK_THREAD_CPUTIME_ID, read through pthread_getcpuclockid), so it
// does not depend on how busy the machine's other cores are. The generator's
// CPU is reported beside it: a generator that is busy all the time may be what
// limits the wall-clock rate.
#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "bench_server_thread.h"
#include "bench_util.h"
#include "resilink/bench/sections.h"
#include "throughput_generator.h"

namespace resilink::bench {

using namespace loopback;

namespace {

struct RunFigures {
  double per_core = 0;         // messages per second of receiver CPU
  double wall_rate = 0;        // messages per second of wall-clock time
  double generator_share = 0;  // generator CPU, % of one core
  double receiver_share = 0;   // server (or sink) thread CPU, % of one core
};

struct CaseFigures {
  std::vector<RunFigures> raw, qos, non_qos;
};

template <class Receiver>
void wait_delivered(const Receiver& receiver, uint64_t target) {
  // ACKs go out on acceptance; the application coroutine reads a moment later.
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (receiver.delivered() < target) {
    if (std::chrono::steady_clock::now() > give_up)
      throw std::runtime_error("the receiver was handed " + std::to_string(receiver.delivered()) + " of " +
                               std::to_string(target) + " acknowledged messages within 5 s");
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

template <class Receiver>
RunFigures measure_run(const Receiver& receiver, LoadGenerator& generator, uint64_t messages, bool qos) {
  uint64_t delivered_before = receiver.delivered();
  double cpu_before = thread_cpu_seconds(receiver.cpu_clock());
  double wall_before = wall_seconds();
  GeneratorRun run = generator.send(messages, qos);
  wait_delivered(receiver, delivered_before + messages);
  double wall = wall_seconds() - wall_before;
  double cpu = thread_cpu_seconds(receiver.cpu_clock()) - cpu_before;
  RunFigures f;
  f.per_core = cpu > 0 ? static_cast<double>(messages) / cpu : 0;
  f.wall_rate = static_cast<double>(messages) / wall;
  f.generator_share = 100 * run.cpu_seconds / wall;
  f.receiver_share = 100 * cpu / wall;
  return f;
}

RunFigures median_of(const std::vector<RunFigures>& runs) {
  std::vector<double> per_core, wall, generator, receiver;
  for (const RunFigures& r : runs) {
    per_core.push_back(r.per_core);
    wall.push_back(r.wall_rate);
    generator.push_back(r.generator_share);
    receiver.push_back(r.receiver_share);
  }
  return {median(per_core), median(wall), median(generator), median(receiver)};
}

Figure rate_figure(const std::string& name, double value, double baseline, const std::string& baseline_name) {
  Figure f;
  f.section = "throughput";
  f.name = name;
  f.value = value;
  f.unit = "msg/s";
  f.baseline = baseline;
  f.baseline_name = baseline_name;
  return f;
}

void add_case_figures(Report& report, uint32_t clients, uint32_t generator_threads, const CaseFigures& c,
                      const std::string& first_note, const std::string& refusals) {
  const std::string who = clients == 1 ? "1 client" : std::to_string(clients) + " clients";
  RunFigures raw = median_of(c.raw);
  struct Mode {
    const char* name;
    RunFigures figures;
  };
  const Mode modes[] = {{"qos", median_of(c.qos)}, {"non-qos", median_of(c.non_qos)}};
  for (const Mode& mode : modes) {
    const bool qos = std::string(mode.name) == "qos";
    Figure per_core = rate_figure(std::string(mode.name) + " msg/s per server core, " + who,
                                  mode.figures.per_core, raw.per_core, "raw TCP per core");
    if (qos) {
      per_core.goal = Goal::at_least;
      per_core.target = 100000;
      per_core.note = first_note + refusals;
    }
    report.add(std::move(per_core));
    report.add(rate_figure(std::string(mode.name) + " msg/s wall clock, " + who, mode.figures.wall_rate,
                           raw.wall_rate, "raw TCP"));
    Figure generator;
    generator.section = "throughput";
    generator.name = std::string("generator CPU, ") + mode.name + ", " + who;
    generator.value = mode.figures.generator_share;
    generator.unit = "% core";
    generator.baseline = mode.figures.receiver_share;
    generator.baseline_name = "server thread";
    const double capacity = 100.0 * std::min(generator_threads, clients);
    if (mode.figures.generator_share >= 0.9 * capacity)
      generator.note = "the generator was busy throughout: it may have limited the wall-clock rate";
    report.add(std::move(generator));
  }
}

}  // namespace

void run_throughput(const ThroughputOptions& options, Report& report) {
  const uint32_t repetitions = std::max<uint32_t>(1, options.common.repetitions);
  const uint64_t messages = options.common.quick ? std::min<uint32_t>(options.messages, 20000) : options.messages;
  const uint64_t warmup = std::max<uint64_t>(messages / 10, 1000);
  if (options.window < 1 || options.window > RESILINK_TX_WINDOW)
    throw std::invalid_argument("throughput window " + std::to_string(options.window) + ": must be 1.." +
                                std::to_string(RESILINK_TX_WINDOW));
  uint32_t generator_threads = options.generator_threads;
  if (generator_threads == 0)
    generator_threads = std::clamp<uint32_t>(std::thread::hardware_concurrency(), 2, 5) - 1;

  nlohmann::json runs = nlohmann::json::array();
  std::vector<uint32_t> client_counts = {1};
  if (options.clients > 1) client_counts.push_back(options.clients);
  for (uint32_t clients : client_counts) {
    BenchServerThread server(kThroughputLinkTimeoutMs, options.window);
    RawAckSink sink;
    LoadGenerator resilink_load(LinkKind::resilink, server.port(), clients, generator_threads, options.window,
                                options.payload_size);
    LoadGenerator raw_load(LinkKind::raw, sink.port(), clients, generator_threads, options.window,
                           options.payload_size);
    // Warm-up, not measured: connections, caches, the allocator, the CPU clock.
    measure_run(sink, raw_load, warmup, false);
    measure_run(server, resilink_load, warmup, true);
    measure_run(server, resilink_load, warmup, false);

    // The three systems take turns in every repetition, so a disturbance from
    // another process lands on all of them.
    CaseFigures figures;
    for (uint32_t rep = 0; rep < repetitions; ++rep) {
      figures.raw.push_back(measure_run(sink, raw_load, messages, false));
      figures.qos.push_back(measure_run(server, resilink_load, messages, true));
      figures.non_qos.push_back(measure_run(server, resilink_load, messages, false));
    }

    core::EngineStats stats = server.stats();
    std::string refusals;
    if (stats.deferred > 0 || stats.outages > 0)
      refusals = "; server refused " + std::to_string(stats.deferred) + " messages (queue full), " +
                 std::to_string(stats.outages) + " outages";
    std::string note = std::to_string(options.payload_size) + " B payload, window " +
                       std::to_string(options.window) + ", " + std::to_string(messages) + " messages per run, " +
                       std::to_string(std::min(generator_threads, clients)) + " generator thread(s)";
    if (clients == 1)
      note += "; per core: per second of the server thread's CPU time (loopback TCP work is charged to the "
              "thread that sends)";
    add_case_figures(report, clients, generator_threads, figures, note, refusals);
    // Every repetition's figures, so a reader can see the spread behind a median.
    const std::pair<const char*, const std::vector<RunFigures>*> systems[] = {
        {"raw TCP", &figures.raw}, {"qos", &figures.qos}, {"non-qos", &figures.non_qos}};
    for (const auto& [system, reps] : systems) {
      nlohmann::json per_core = nlohmann::json::array(), wall = nlohmann::json::array();
      nlohmann::json generator = nlohmann::json::array(), receiver = nlohmann::json::array();
      for (const RunFigures& r : *reps) {
        per_core.push_back(r.per_core);
        wall.push_back(r.wall_rate);
        generator.push_back(r.generator_share);
        receiver.push_back(r.receiver_share);
      }
      runs.push_back({{"clients", clients}, {"system", system}, {"per_core_msg_s", per_core},
                      {"wall_msg_s", wall}, {"generator_cpu_pct", generator}, {"receiver_cpu_pct", receiver}});
    }
  }
  report.set("throughput_repetitions", std::move(runs));
  report.set("throughput_messages_per_run", messages);
  report.set("throughput_warmup_messages", warmup);
  report.set("throughput_payload_size", options.payload_size);
  report.set("throughput_window", options.window);
  report.set("throughput_generator_threads", generator_threads);
  report.set("throughput_clients", client_counts);
}

}  // namespace resilink::bench
