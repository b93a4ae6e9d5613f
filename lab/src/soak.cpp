#include "resilink/lab/soak.h"

#include <fmt/format.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "resilink/client/client.h"
#include "resilink/lab/live_view.h"
#include "resilink/lab/netns.h"
#include "resilink/lab/recorder.h"
#include "resilink/lab/timeline_svg.h"
#include "resilink/server/server.h"

namespace resilink::lab {

namespace {

using namespace std::chrono_literals;

constexpr auto kStatsEvery = 200ms;
constexpr uint64_t kNoEnd = UINT64_MAX;

std::atomic<int> g_interrupts{0};
extern "C" void on_interrupt(int) { g_interrupts.fetch_add(1); }

// State every thread of the run shares.
struct Run {
  const SoakOptions& options;
  Recorder& recorder;
  std::shared_ptr<spdlog::logger> logger;
  uint64_t interval_us;
  std::atomic<uint64_t> traffic_end_us{kNoEnd};  // no message is due at or after this
  std::atomic<bool> stop_clients{false};
  std::atomic<bool> stopping{false};  // links close because the run ends: not recorded
  // Server writers that have written every message due before the traffic
  // ended. A writer blocked by an outage has a backlog of due messages it has
  // not recorded as sent yet, so the drain waits for the writers too.
  std::atomic<size_t> server_writers_done{0};

  // Messages due by now (and before the traffic ends), counting from seq 0.
  uint64_t due_count(uint64_t now_us) const {
    uint64_t end = traffic_end_us.load();
    uint64_t until = std::min(now_us + 1, end);  // due times strictly before `end`
    return until == 0 ? 0 : (until - 1) / interval_us + 1;
  }
  uint64_t due_us(uint64_t seq) const { return seq * interval_us; }
  std::string id(size_t lane) const { return std::to_string(lane + 1); }
};

// ---- the server side: one reader and one writer per client ----

asio::awaitable<void> server_reader(Run& run, Connection& conn, size_t lane) {
  try {
    for (;;) run.recorder.delivered(lane, Direction::up, co_await conn.readline());
  } catch (const std::system_error&) {
    // the server closed
  }
}

// Counts a server writer as done when its coroutine ends, on any path.
struct WriterDone {
  std::atomic<size_t>& done;
  ~WriterDone() { ++done; }
};

asio::awaitable<void> server_writer(Run& run, Server& server, size_t lane) {
  WriterDone counted{run.server_writers_done};
  Connection* found = nullptr;
  try {
    found = &(co_await server.client(run.id(lane))).get();
  } catch (const std::system_error&) {
    co_return;  // the server closed before this client ever connected
  }
  Connection& conn = *found;
  asio::co_spawn(co_await asio::this_coro::executor, server_reader(run, conn, lane), asio::detached);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (uint64_t seq = 0;; ++seq) {
    uint64_t due = run.due_us(seq);
    for (;;) {
      if (due >= run.traffic_end_us.load()) co_return;
      uint64_t now = run.recorder.now_us();
      if (now >= due) break;
      timer.expires_after(std::chrono::microseconds(std::min<uint64_t>(due - now, 100000)));
      co_await timer.async_wait(kUseTuple);
    }
    std::string message = make_soak_message(seq, due, run.options.payload_bytes);
    run.recorder.sent(lane, Direction::down, seq);  // before: delivery may beat the ACK back
    // qos, waiting for the ACK: exactly once and in order, through outages.
    if (co_await conn.write(message)) co_return;  // closed
  }
}

asio::awaitable<void> server_stats(Run& run, Server& server) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!server.closed()) {
    for (size_t lane = 0; lane < run.recorder.lanes(); ++lane)
      if (Connection* conn = server.find(run.id(lane)))
        run.recorder.engine_stats(lane, End::server, conn->stats());
    timer.expires_after(kStatsEvery);
    co_await timer.async_wait(kUseTuple);
  }
}

// ---- a client: its own thread, driving its own Client ----

void client_main(Run& run, size_t lane, std::string host, uint16_t port,
                 std::function<std::error_code()> enter_namespace) {
  if (enter_namespace) {
    if (auto ec = enter_namespace()) {
      run.recorder.note(fmt::format("client {}: cannot enter its namespace: {}", lane + 1, ec.message()));
      return;
    }
  }
  ClientOptions options;
  options.id = run.id(lane);
  options.host = std::move(host);
  options.port = port;
  options.timeout_ms = run.options.timeout_ms;
  options.random_seed = static_cast<uint32_t>(run.options.seed * 1000 + lane + 1);
  options.logger = run.logger;
  Client* self = nullptr;
  options.on_status = [&run, lane, &self](bool up) {
    if (run.stopping.load()) return;  // the run's own close is no outage
    run.recorder.link(lane, End::client, up, self ? self->stats().last_outage : core::OutageReason::none);
  };
  Client client(options);
  self = &client;
  if (client.start() != core::Error::ok) {
    run.recorder.note(fmt::format("client {}: cannot start", lane + 1));
    return;
  }
  uint64_t seq = 0;
  auto next_stats = std::chrono::steady_clock::now();
  while (!run.stop_clients.load()) {
    uint64_t now = run.recorder.now_us();
    for (uint64_t due_count = run.due_count(now); seq < due_count; ++seq) {
      std::string message = make_soak_message(seq, run.due_us(seq), run.options.payload_bytes);
      core::Error e = client.try_write(message, /*qos=*/true);
      if (e == core::Error::would_block) break;  // window full: catch up later
      if (e != core::Error::ok) {
        run.recorder.note(fmt::format("client {}: write refused: {}", lane + 1, core::error_name(e)));
        break;
      }
      run.recorder.sent(lane, Direction::up, seq);  // the bytes leave in run_once, below
    }
    uint64_t next_due = run.due_us(seq);
    int wait_ms = next_due > now ? static_cast<int>(std::min<uint64_t>((next_due - now) / 1000 + 1, 50)) : 5;
    client.run_once(wait_ms);
    while (auto line = client.try_readline()) run.recorder.delivered(lane, Direction::down, *line);
    if (std::chrono::steady_clock::now() >= next_stats) {
      run.recorder.engine_stats(lane, End::client, client.stats());
      next_stats += kStatsEvery;
    }
  }
  run.recorder.engine_stats(lane, End::client, client.stats());
  client.close();
}

// ---- faults ----

uint32_t draw(ChaosRandom& rng, Spread s) {
  return static_cast<uint32_t>(std::max<uint64_t>(1, rng.around(s.mean_ms, s.spread_ms)));
}

// netns: the shared link goes down and up on a seeded schedule.
class LinkFlapper {
 public:
  LinkFlapper(NetnsLab& lab, Recorder& recorder, const SoakOptions& options)
      : lab_(lab), recorder_(recorder), options_(options), thread_([this] { loop(); }) {}
  ~LinkFlapper() { stop(); }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  bool sleep_for(uint32_t ms) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  }
  // `every` runs from one start to the next, as in the fault proxy's
  // schedules; an outage that lasts past the next start delays it.
  void loop() {
    ChaosRandom rng(options_.seed);
    uint32_t wait_ms = draw(rng, options_.netns_every);
    for (uint64_t n = 1;; ++n) {
      if (!sleep_for(wait_ms)) return;
      uint32_t every = draw(rng, options_.netns_every);
      uint32_t length = draw(rng, options_.netns_for);
      wait_ms = every > length ? every - length : 0;
      std::string name = fmt::format("outage-{}", n);
      if (auto ec = lab_.set_link(false)) {
        recorder_.note(fmt::format("cannot set the link down: {}", ec.message()));
        return;
      }
      recorder_.fault(-1, name, "outage", true);
      bool more = sleep_for(length);
      if (auto ec = lab_.set_link(true)) recorder_.note(fmt::format("cannot set the link up: {}", ec.message()));
      recorder_.fault(-1, name, "outage", false);
      if (!more) return;
    }
  }

  NetnsLab& lab_;
  Recorder& recorder_;
  const SoakOptions& options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

std::shared_ptr<spdlog::logger> make_logger(const SoakOptions& options, std::string* error) {
  if (!options.log_path.empty()) {
    try {
      auto logger = spdlog::basic_logger_mt("resilink.lab", options.log_path, /*truncate=*/true);
      logger->set_level(spdlog::level::info);
      return logger;
    } catch (const spdlog::spdlog_ex& e) {
      *error = fmt::format("cannot write the log to '{}': {}", options.log_path, e.what());
      return nullptr;
    }
  }
  // The live view owns the terminal; elsewhere warnings are worth seeing.
  if (options.view == ViewMode::live) return std::make_shared<spdlog::logger>("resilink.lab", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>("resilink.lab", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_level(spdlog::level::warn);
  return logger;
}

std::string elapsed_text(double ms, double duration_s) {
  return duration_s > 0 ? fmt::format("{:5.1f} s of {:.0f} s", ms / 1000, duration_s)
                        : fmt::format("{:5.1f} s", ms / 1000);
}

}  // namespace

int run_soak(const SoakOptions& options) {
  const size_t lanes = static_cast<size_t>(options.clients);
  std::string error;
  auto logger = make_logger(options, &error);
  if (!logger) {
    fmt::print(stderr, "{}: {}\n", options.name, error);
    return 2;
  }
  std::unique_ptr<NetnsLab> netns;
  if (options.mode == FaultMode::netns) {
    if (!NetnsLab::can_run(&error)) {
      fmt::print(stderr, "{}: {}\n", options.name, error);
      return 2;
    }
    netns = NetnsLab::create({}, &error);
    if (!netns) {
      fmt::print(stderr, "{}: cannot build the namespaces: {}\n", options.name, error);
      return 2;
    }
  }
  Recorder recorder(lanes, options.timeout_ms, options.metrics_path, &error);
  if (!error.empty()) {
    fmt::print(stderr, "{}: {}\n", options.name, error);
    return 2;
  }
  recorder.keep_points(!options.svg_path.empty());
  Run run{options, recorder, logger, std::max<uint64_t>(1000, options.message_interval_ms * 1000ull)};

  // The server, on its own thread (inside the server namespace for the lab).
  asio::io_context server_io;
  ServerOptions server_options;
  server_options.address = netns ? netns->server_address() : "127.0.0.1";
  server_options.port = 0;
  server_options.timeout_ms = options.timeout_ms;
  for (size_t lane = 0; lane < lanes; ++lane) server_options.expected.insert(run.id(lane));
  server_options.logger = logger;
  Server server(server_io, server_options);
  std::promise<std::error_code> listening;
  std::thread server_thread([&] {
    if (netns) {
      if (auto ec = netns->enter_server()) {
        listening.set_value(ec);
        return;
      }
    }
    std::error_code ec = server.listen();
    listening.set_value(ec);
    if (ec) return;
    server.on_status([&recorder, &run, lanes](Connection& conn, bool up) {
      if (run.stopping.load()) return;
      size_t lane = std::stoul(conn.id()) - 1;
      if (lane < lanes) recorder.link(lane, End::server, up, conn.stats().last_outage);
    });
    for (size_t lane = 0; lane < lanes; ++lane)
      asio::co_spawn(server_io, server_writer(run, server, lane), asio::detached);
    asio::co_spawn(server_io, server_stats(run, server), asio::detached);
    server_io.run();
  });
  if (std::error_code ec = listening.get_future().get()) {
    fmt::print(stderr, "{}: the server cannot listen on {}: {}\n", options.name, server_options.address,
               ec.message());
    server_thread.join();
    return 2;
  }

  // The faults: a proxy per client, or the namespaces' shared link.
  asio::io_context chaos_io;
  std::vector<std::unique_ptr<ChaosProxy>> proxies;
  std::vector<std::pair<std::string, uint16_t>> targets;
  if (options.mode == FaultMode::chaos) {
    for (size_t lane = 0; lane < lanes; ++lane) {
      ChaosOptions chaos;
      chaos.upstream_port = server.port();
      chaos.seed = options.seed * 1000 + lane + 1;
      chaos.logger = logger;
      auto proxy = std::make_unique<ChaosProxy>(chaos_io, chaos);
      if (auto ec = proxy->start()) {
        fmt::print(stderr, "{}: the fault proxy cannot listen: {}\n", options.name, ec.message());
        asio::post(server_io, [&] { server.close(); });
        server_thread.join();
        return 2;
      }
      proxy->on_event([&recorder, lane](const FaultEvent& e) {
        recorder.fault(static_cast<int>(lane), e.name, to_string(e.type), e.active, recorder.ms_at(e.at));
      });
      for (const FaultSchedule& f : options.faults) proxy->schedule(f);
      targets.emplace_back("127.0.0.1", proxy->port());
      proxies.push_back(std::move(proxy));
    }
  } else {
    for (size_t lane = 0; lane < lanes; ++lane) targets.emplace_back(netns->server_address(), server.port());
  }
  std::thread chaos_thread([&] {
    auto guard = asio::make_work_guard(chaos_io);
    chaos_io.run();
  });
  std::unique_ptr<LinkFlapper> flapper;
  if (netns) flapper = std::make_unique<LinkFlapper>(*netns, recorder, options);

  std::vector<std::thread> clients;
  for (size_t lane = 0; lane < lanes; ++lane) {
    std::function<std::error_code()> enter;
    if (netns) enter = [lab = netns.get()] { return lab->enter_client(); };
    clients.emplace_back(client_main, std::ref(run), lane, targets[lane].first, targets[lane].second, enter);
  }

  // Run until the time is up, enough outages have happened, or SIGINT.
  g_interrupts = 0;
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  const bool live = options.view == ViewMode::live;
  std::string heading = fmt::format("resilink {}: {} clients, T={} ms, seed {}{}", options.name, lanes,
                                    options.timeout_ms, options.seed,
                                    netns ? " (network namespaces, link down/up)" : " (through the fault proxy)");
  LiveView view(recorder, stdout, live, heading);
  bool quiet = options.view == ViewMode::quiet;
  const char* why_stopped = "time is up";
  for (;;) {
    std::this_thread::sleep_for(live ? 250ms : 100ms);
    double now = recorder.now_ms();
    if (!quiet) view.update(elapsed_text(now, options.duration_s));
    if (g_interrupts.load() > 0) {
      why_stopped = "interrupted";
      break;
    }
    if (options.max_outages > 0 && recorder.outages_ended() >= options.max_outages) {
      why_stopped = "enough outages";
      break;
    }
    if (options.duration_s > 0 && now >= options.duration_s * 1000) break;
  }

  // Stop the traffic and the faults, then let everything queued arrive.
  run.traffic_end_us = recorder.now_us();
  recorder.note(fmt::format("traffic stops ({}); faults stop; draining", why_stopped));
  if (flapper) flapper->stop();
  {
    std::promise<void> cleared;
    asio::post(chaos_io, [&] {
      for (auto& proxy : proxies) proxy->clear();  // toxics and schedules
      cleared.set_value();
    });
    cleared.get_future().wait();
  }
  // Liveness bound: a link that just went down is back within detection (T),
  // hold-off (2T), the longest backoff and a connect; then the window drains.
  const double drain_bound_ms = 4.0 * options.timeout_ms + 8000 + 2000;
  const double drain_start = recorder.now_ms();
  bool drained = false;
  while (recorder.now_ms() - drain_start < drain_bound_ms && g_interrupts.load() < 2) {
    if (run.server_writers_done.load() == lanes && recorder.drained()) {
      drained = true;
      break;
    }
    std::this_thread::sleep_for(live ? 250ms : 50ms);
    if (!quiet) view.update(fmt::format("draining, {:.1f} s", (recorder.now_ms() - drain_start) / 1000));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);

  run.stopping = true;
  run.stop_clients = true;
  for (auto& t : clients) t.join();
  asio::post(server_io, [&] { server.close(); });
  server_thread.join();
  asio::post(chaos_io, [&] {
    for (auto& proxy : proxies) proxy->stop();
    chaos_io.stop();
  });
  chaos_thread.join();

  SoakReport report = recorder.finish(drained);
  if (!quiet) view.finish(fmt::format("finished after {:.1f} s ({})", report.elapsed_ms / 1000, why_stopped));
  fmt::print("{}", format_report(report));
  if (!options.metrics_path.empty()) fmt::print("metrics: {}\n", options.metrics_path);
  if (!options.svg_path.empty()) {
    Timeline timeline = recorder.timeline(heading);
    if (write_timeline_svg(timeline, options.svg_path, &error))
      fmt::print("timeline: {}\n", options.svg_path);
    else
      fmt::print(stderr, "{}: {}\n", options.name, error);
  }
  fmt::print("{}\n", format_summary(options.name.c_str(), report));
  std::fflush(stdout);
  return report.ok() ? 0 : 1;
}

}  // namespace resilink::lab
