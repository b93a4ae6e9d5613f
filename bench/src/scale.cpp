// The scale section of `resilink bench`: N idle clients with keepalives
// against one server process. It ramps up in steps (1-2-5 up to N), holds
// each step, and measures at each: the server's user-space memory per
// connection, the kernel's share, the server's CPU at keepalive load, the
// false outages either end declared, and the load generator's own CPU. The
// first step that misses a target is where the server stops holding.
//
// The server is `resilink bench-server` in a child process; the load is a
// LoadGenerator in this process (scale_load_generator.h).
//
// The CPU figure's baseline is measured after the ramp, with the same
// generator and hold, against `resilink bench-server --app bare`: a bare
// epoll loop that only keeps the links alive (bare_keepalive_server.h). On
// loopback most of a server's CPU at this load is the kernel's per-packet
// work, which any server pays; the ratio is what resilink adds to it.
//
// User-space memory is the growth of the server's RssAnon over its value
// before the first client, read after each hold. The bytes malloc handed out
// (mallinfo2 in the child) are reported beside it and are higher: pages of
// the Engine's fixed buffers that an idle link never writes are never made
// resident. So the RSS figure is a lower bound; a link that once filled its
// rx queue or window keeps those pages.
// Kernel memory: both ends of each loopback link live in this kernel and hold
// alike, so half the growth is the server's. On a shared box other processes'
// sockets add noise; the slab objects one socket takes on this kernel are
// given beside it as a floor that no noise moves.
#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "resilink/bench/sections.h"
#include "resilink/server/server.h"
#include "scale_load_generator.h"
#include "scale_proc.h"
#include "scale_server_process.h"

namespace resilink::bench {

namespace {

using namespace scale;
using Clock = std::chrono::steady_clock;

constexpr double kMaxUserBytesPerConnection = 2048;
constexpr double kMaxServerCpuPercent = 10;
// Per socket: tcp_sock (TCP), socket + inode (sock_inode_cache), struct file
// (filp), its dentry, the epoll registration (eventpoll_*), security blobs
// (lsm_*), the bind bucket, and skbs briefly queued.
constexpr const char* kSocketSlabCaches[] = {"TCP",           "sock_inode_cache", "filp",
                                             "dentry",        "eventpoll_epi",    "eventpoll_pwq",
                                             "lsm_file_cache", "lsm_inode_cache", "tcp_bind_bucket",
                                             "tcp_bind2_bucket", "skbuff_head_cache"};
// One of each per socket: tcp_sock, socket and inode, file, dentry, epoll item
// and its wait-queue hook, and the LSM blobs of the file and inode.
constexpr const char* kObjectsPerSocket[] = {"TCP",           "sock_inode_cache", "filp",           "dentry",
                                             "eventpoll_epi", "eventpoll_pwq",    "lsm_file_cache", "lsm_inode_cache"};

struct StepResult {
  uint32_t clients = 0;
  uint64_t generator_up = 0;
  uint64_t server_connections = 0;  // client ids the server knows
  uint64_t server_up = 0;
  double connect_s = 0;  // from adding this step's clients to all of them up
  double connect_rate = 0;
  double hold_s = 0;
  double server_cpu_percent = 0;
  double server_user_cpu_percent = 0;  // of which in user space (the rest: the kernel's TCP work)
  double generator_cpu_percent = 0;
  double generator_busiest_thread_percent = 0;
  double user_bytes_per_connection = 0;  // RssAnon growth
  double rss_bytes_per_connection = 0;   // VmRSS growth (adds code pages first touched)
  double heap_bytes_per_connection = 0;  // malloc'd and not freed
  double kernel_bytes_per_connection = 0;  // server end: half of both ends' growth
  int64_t other_tcp_sockets = 0;  // TCP sockets other processes added meanwhile (noise)
  uint64_t server_outages = 0;
  uint64_t server_link_downs = 0;
  uint64_t generator_outages = 0;
  LoadGeneratorCounts generator;
  KernelMemory kernel;
  std::vector<std::string> missed;

  uint64_t false_outages() const { return server_outages + generator_outages; }
  bool connected() const { return generator_up == clients && server_up == clients; }
};

// What a hold of the idle load cost, in % of a core.
struct HoldCpu {
  double hold_s = 0;
  double server_percent = 0;
  double server_user_percent = 0;  // of which in user space
  double generator_percent = 0;
  double generator_busiest_thread_percent = 0;
};

// The same load against the bare keepalive loop (bare_keepalive_server.h).
struct FloorResult {
  bool measured = false;
  uint32_t clients = 0;
  double hold_s = 0;
  double cpu_percent = 0;
  double user_cpu_percent = 0;
  uint64_t server_outages = 0;
  uint64_t generator_outages = 0;
};

// 1-2-5 steps from a tenth of the clients, then the clients themselves.
std::vector<uint32_t> ramp_steps(const ScaleOptions& o) {
  std::vector<uint32_t> steps;
  if (!o.steps.empty()) {
    for (uint32_t s : o.steps)
      if (s > 0 && s < o.clients) steps.push_back(s);
  } else {
    for (uint64_t decade = 1; decade < o.clients; decade *= 10)
      for (uint64_t m : {1, 2, 5}) {
        uint64_t s = m * decade;
        if (s * 10 >= o.clients && s < o.clients) steps.push_back(static_cast<uint32_t>(s));
      }
  }
  steps.push_back(o.clients);
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  return steps;
}

// Soft to hard, and as root the hard limit too; a child started later
// inherits it. Returns the soft limit in force.
uint64_t raise_fd_limit(uint64_t wanted) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_max < wanted) {
    uint64_t nr_open = wanted;
    std::ifstream("/proc/sys/fs/nr_open") >> nr_open;
    rlimit raised{std::min<rlim_t>(wanted, nr_open), std::min<rlim_t>(wanted, nr_open)};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;  // fails unless privileged
  }
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

double per_connection(int64_t grown, uint32_t clients) {
  return clients == 0 ? 0 : static_cast<double>(grown) / clients;
}

int64_t growth(uint64_t after, uint64_t before) { return static_cast<int64_t>(after) - static_cast<int64_t>(before); }

std::string held_up_to_text(uint32_t held, uint32_t first_step) {
  return held >= first_step ? "held up to " + std::to_string(held) + " clients"
                            : "missed from the first step (" + std::to_string(first_step) + " clients)";
}

class ScaleRun {
 public:
  ScaleRun(const ScaleOptions& options, Report& report) : o_(options), report_(report) {}

  void run() {
    if (o_.common.self_exe.empty()) throw std::runtime_error("scale: the resilink binary's path is unknown");
    prepare_limits();
    steps_ = ramp_steps(o_);
    step_hold_s_ = o_.common.quick ? 2 : (o_.step_hold_s ? o_.step_hold_s : std::clamp(o_.hold_s / 2, 1u, 10u));
    final_hold_s_ = o_.common.quick ? std::min(o_.hold_s, 4u) : o_.hold_s;

    {
      BenchServerProcess server(o_.common.self_exe, o_.timeout_ms, o_.app);
      auto base_stats = query(server);
      base_memory_ = read_process_memory(server.pid());
      base_heap_ = base_stats["heap_in_use"];
      base_kernel_ = read_kernel_memory();
      LoadGenerator generator(generator_options(server.port(), "scale-"));

      for (uint32_t step : steps_) {
        results_.push_back(run_step(step, step == steps_.back() ? final_hold_s_ : step_hold_s_, server, generator));
        print_progress(results_.back());
        if (!results_.back().connected()) break;  // more clients will not connect either
      }
      // Counted above, before either end closes: from here on, links going
      // down are the teardown, not outages.
      server.stop(std::chrono::seconds(10));
      generator.stop();
    }
    // The floor, once the measured server and its links are gone: the same
    // load against a bare keepalive loop (bare_keepalive_server.h).
    if (results_.back().connected()) floor_ = run_floor(results_.back().clients, final_hold_s_);
    add_figures();
  }

 private:
  LoadGeneratorOptions generator_options(uint16_t port, const std::string& id_prefix) const {
    LoadGeneratorOptions g;
    g.port = port;
    g.timeout_ms = o_.timeout_ms;
    g.threads = o_.generator_threads;
    g.connects_in_flight = o_.connects_in_flight;
    g.clients_per_source_address = clients_per_source_address_;
    g.id_prefix = id_prefix;
    return g;
  }

  // Waits until `clients` links are up at the generator; false if they do not
  // all come up in a generous time.
  bool wait_connected(BenchServerProcess& server, LoadGenerator& generator, uint32_t clients, uint32_t added) {
    // Generous: a healthy loopback run connects thousands per second.
    auto give_up = Clock::now() + std::chrono::seconds(20) + std::chrono::milliseconds(10) * added;
    while (generator.counts().up < clients && Clock::now() < give_up) {
      if (!server.running()) throw std::runtime_error("scale: bench-server exited during the ramp");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return generator.counts().up >= clients;
  }

  // The CPU a server needs for these links when it does nothing but keep them
  // alive: one recv per keepalive heard, one send per keepalive due, on this
  // kernel, measured like the resilink server's over the same hold.
  FloorResult run_floor(uint32_t clients, uint32_t hold_s) {
    FloorResult f;
    f.clients = clients;
    BenchServerProcess server(o_.common.self_exe, o_.timeout_ms, "bare");
    LoadGenerator generator(generator_options(server.port(), "floor-"));
    generator.add_clients(clients);
    if (!wait_connected(server, generator, clients, clients)) {
      std::fprintf(stderr, "bench: scale: floor: only %llu of %u links came up; not measured\n",
                   static_cast<unsigned long long>(generator.counts().up), clients);
      return f;
    }
    HoldCpu cpu = measure_hold(server, generator, hold_s);
    f.hold_s = cpu.hold_s;
    f.cpu_percent = cpu.server_percent;
    f.user_cpu_percent = cpu.server_user_percent;
    f.generator_outages = generator.counts().outages;
    f.server_outages = query(server)["outages"];
    f.measured = true;
    server.stop(std::chrono::seconds(10));
    generator.stop();
    std::fprintf(stderr,
                 "bench: scale: floor (bare keepalive loop): %u clients: server CPU %.1f%% (user %.2f%%); "
                 "outages %llu server, %llu clients\n",
                 clients, f.cpu_percent, f.user_cpu_percent, static_cast<unsigned long long>(f.server_outages),
                 static_cast<unsigned long long>(f.generator_outages));
    return f;
  }

  void prepare_limits() {
    // Each process holds a socket per client, plus its own few.
    fd_limit_ = raise_fd_limit(static_cast<uint64_t>(o_.clients) + 1024);
    PortRange range = read_local_port_range();
    // One source address gives at most the port range's worth of links to one
    // server port; leave room for TIME_WAIT leftovers and other users.
    uint32_t per_address = range.size() * 3 / 4;
    if (o_.clients > per_address) clients_per_source_address_ = std::max<uint32_t>(per_address, 1);
    port_range_ = std::to_string(range.low) + "-" + std::to_string(range.high);
    if (fd_limit_ < static_cast<uint64_t>(o_.clients) + 64)
      std::fprintf(stderr, "bench: scale: file descriptor limit %llu is below %u clients; later steps will fail\n",
                   static_cast<unsigned long long>(fd_limit_), o_.clients);
  }

  std::map<std::string, uint64_t> query(BenchServerProcess& server) {
    auto stats = server.stats(std::chrono::seconds(10));
    if (!stats) throw std::runtime_error("scale: bench-server did not answer 'stats' (exited?)");
    return *stats;
  }

  // Sleeps, checking that the server is still there.
  void hold(BenchServerProcess& server, double seconds) {
    auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (Clock::now() < end) {
      if (!server.running()) throw std::runtime_error("scale: bench-server exited during the run");
      std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(200), end - Clock::now()));
    }
  }

  // Lets the connect burst's work drain, then holds the idle load for
  // hold_s and measures the CPU each side used meanwhile.
  HoldCpu measure_hold(BenchServerProcess& server, LoadGenerator& generator, uint32_t hold_s) {
    hold(server, o_.common.quick ? 0.5 : 1.0);
    double server_cpu_0 = process_cpu_seconds(server.pid());
    double server_user_0 = process_cpu_seconds(server.pid(), true);
    double generator_cpu_0 = self_cpu_seconds();
    std::vector<double> threads_0 = generator.thread_cpu_seconds();
    auto hold_start = Clock::now();
    hold(server, hold_s);
    HoldCpu c;
    c.hold_s = std::chrono::duration<double>(Clock::now() - hold_start).count();
    double server_cpu_1 = process_cpu_seconds(server.pid());
    double server_user_1 = process_cpu_seconds(server.pid(), true);
    double generator_cpu_1 = self_cpu_seconds();
    std::vector<double> threads_1 = generator.thread_cpu_seconds();
    c.server_percent = 100 * (server_cpu_1 - server_cpu_0) / c.hold_s;
    c.server_user_percent = 100 * (server_user_1 - server_user_0) / c.hold_s;
    c.generator_percent = 100 * (generator_cpu_1 - generator_cpu_0) / c.hold_s;
    for (size_t i = 0; i < threads_1.size() && i < threads_0.size(); ++i)
      c.generator_busiest_thread_percent =
          std::max(c.generator_busiest_thread_percent, 100 * (threads_1[i] - threads_0[i]) / c.hold_s);
    return c;
  }

  StepResult run_step(uint32_t clients, uint32_t hold_s, BenchServerProcess& server, LoadGenerator& generator) {
    StepResult r;
    r.clients = clients;
    uint32_t added = clients - generator.clients();
    auto start = Clock::now();
    generator.add_clients(added);
    wait_connected(server, generator, clients, added);
    r.connect_s = std::chrono::duration<double>(Clock::now() - start).count();
    r.connect_rate = r.connect_s > 0 ? added / r.connect_s : 0;

    HoldCpu cpu = measure_hold(server, generator, hold_s);
    r.hold_s = cpu.hold_s;
    r.server_cpu_percent = cpu.server_percent;
    r.server_user_cpu_percent = cpu.server_user_percent;
    r.generator_cpu_percent = cpu.generator_percent;
    r.generator_busiest_thread_percent = cpu.generator_busiest_thread_percent;

    // Memory after the hold, so that it has settled into its idle pattern.
    ProcessMemory memory = read_process_memory(server.pid());
    r.kernel = read_kernel_memory();
    auto stats = query(server);
    r.generator = generator.counts();
    r.generator_up = r.generator.up;
    r.generator_outages = r.generator.outages;
    r.server_connections = stats["connections"];
    r.server_up = stats["up"];
    r.server_outages = stats["outages"];
    r.server_link_downs = stats["link_downs"];
    r.user_bytes_per_connection = per_connection(growth(memory.rss_anon, base_memory_.rss_anon), clients);
    r.rss_bytes_per_connection = per_connection(growth(memory.vm_rss, base_memory_.vm_rss), clients);
    r.heap_bytes_per_connection = per_connection(growth(stats["heap_in_use"], base_heap_), clients);
    // Both ends of every loopback link live in this kernel; they hold alike
    // (a socket, its file, inode, dentry and epoll item each), so half is the
    // server's.
    // Other processes' sockets opened or closed meanwhile count too: the
    // difference in sockstat's socket count says how many (see the note).
    r.other_tcp_sockets = growth(r.kernel.tcp_sockets, base_kernel_.tcp_sockets) - 2 * static_cast<int64_t>(clients);
    r.kernel_bytes_per_connection = per_connection(kernel_growth(r.kernel), clients) / 2;

    if (!r.connected()) r.missed.push_back("connected");
    if (r.false_outages() > 0) r.missed.push_back("false outages");
    if (r.user_bytes_per_connection > kMaxUserBytesPerConnection) r.missed.push_back("user memory");
    if (r.server_cpu_percent > kMaxServerCpuPercent) r.missed.push_back("server cpu");
    return r;
  }

  // The slab caches a TCP socket and its file and epoll registration live in,
  // plus TCP buffer pages. Counting only these (rather than all of Slab)
  // keeps out what other processes on the box allocate meanwhile; without
  // /proc/slabinfo (not root) all of Slab is counted.
  int64_t kernel_growth(const KernelMemory& now) const {
    int64_t grown = growth(now.tcp_buffers, base_kernel_.tcp_buffers);
    if (now.slab_caches.empty()) return grown + growth(now.slab, base_kernel_.slab);
    for (const char* cache : kSocketSlabCaches) {
      auto after = now.slab_caches.find(cache);
      auto before = base_kernel_.slab_caches.find(cache);
      grown += growth(after == now.slab_caches.end() ? 0 : after->second,
                      before == base_kernel_.slab_caches.end() ? 0 : before->second);
    }
    return grown;
  }

  // The slab objects one TCP socket with a file and an epoll registration
  // takes on this kernel: a floor for the measured growth, free of noise.
  static uint64_t socket_object_bytes(const KernelMemory& k) {
    uint64_t bytes = 0;
    for (const char* cache : kObjectsPerSocket) {
      auto size = k.slab_object_sizes.find(cache);
      if (size != k.slab_object_sizes.end()) bytes += size->second;
    }
    return bytes;
  }

  // Each counted slab cache's growth per connection, to see which is noisy.
  nlohmann::json socket_cache_growth(const StepResult& r) const {
    nlohmann::json caches = nlohmann::json::object();
    for (const char* cache : kSocketSlabCaches) {
      auto after = r.kernel.slab_caches.find(cache);
      auto before = base_kernel_.slab_caches.find(cache);
      if (after == r.kernel.slab_caches.end()) continue;
      caches[cache] = per_connection(
          growth(after->second, before == base_kernel_.slab_caches.end() ? 0 : before->second), r.clients);
    }
    caches["tcp_buffers"] = per_connection(growth(r.kernel.tcp_buffers, base_kernel_.tcp_buffers), r.clients);
    return caches;
  }

  void print_progress(const StepResult& r) {
    std::string missed;
    for (const auto& m : r.missed) missed += (missed.empty() ? "" : ", ") + m;
    std::fprintf(stderr,
                 "bench: scale: %u clients: %llu/%llu up (generator/server), connected in %.1f s (%.0f/s); "
                 "server CPU %.1f%%, user %.0f B/conn (heap %.0f), kernel %.0f B/conn; false outages "
                 "%llu server, %llu clients; generator CPU %.1f%%; %s\n",
                 r.clients, static_cast<unsigned long long>(r.generator_up),
                 static_cast<unsigned long long>(r.server_up), r.connect_s, r.connect_rate, r.server_cpu_percent,
                 r.user_bytes_per_connection, r.heap_bytes_per_connection, r.kernel_bytes_per_connection,
                 static_cast<unsigned long long>(r.server_outages),
                 static_cast<unsigned long long>(r.generator_outages), r.generator_cpu_percent,
                 missed.empty() ? "held" : ("missed: " + missed).c_str());
  }

  // The largest step up to which every step met `ok` (0 if the first missed).
  template <typename Ok>
  uint32_t held_up_to(Ok ok) const {
    uint32_t held = 0;
    for (const auto& r : results_) {
      if (!ok(r)) break;
      held = r.clients;
    }
    return held;
  }

  void add_figures() {
    const StepResult& last = results_.back();
    std::string at = std::to_string(last.clients) + " clients";
    uint32_t first = results_.front().clients;
    uint32_t held_outages = held_up_to([](const StepResult& r) { return r.connected() && r.false_outages() == 0; });
    uint32_t held_memory =
        held_up_to([](const StepResult& r) { return r.user_bytes_per_connection <= kMaxUserBytesPerConnection; });
    uint32_t held_cpu = held_up_to([](const StepResult& r) { return r.server_cpu_percent <= kMaxServerCpuPercent; });
    uint32_t held_all = held_up_to([](const StepResult& r) { return r.missed.empty(); });

    std::string reasons;
    for (size_t i = 0; i < kOutageReasonCount; ++i)
      if (last.generator.outages_by_reason[i] > 0)
        reasons += std::string(reasons.empty() ? "" : ", ") + outage_reason_label(i) + " " +
                   std::to_string(last.generator.outages_by_reason[i]);

    Figure f;
    f.section = "scale";

    f.name = "false outages, " + at;
    f.value = static_cast<double>(last.false_outages());
    f.unit = "outages";
    f.goal = Goal::at_most;
    f.target = 0;
    f.note = "server " + std::to_string(last.server_outages) + ", clients " + std::to_string(last.generator_outages) +
             (reasons.empty() ? "" : " (" + reasons + ")") + "; " + held_up_to_text(held_outages, first);
    report_.add(f);

    f.name = "links up at the server, " + at;
    f.value = static_cast<double>(last.server_up);
    f.unit = "links";
    f.goal = Goal::at_least;
    f.target = last.clients;
    f.note = std::to_string(last.server_connections) + " client ids known; the generator saw " +
             std::to_string(last.generator_up) + " up";
    report_.add(f);

    f.name = "server user-space memory per connection";
    f.value = last.user_bytes_per_connection;
    f.unit = "B/conn";
    f.goal = Goal::at_most;
    f.target = kMaxUserBytesPerConnection;
    f.note = "application: " + o_.app + "; RssAnon growth / " + std::to_string(last.clients) + " after the hold; malloc'd " +
             std::to_string(static_cast<long long>(last.heap_bytes_per_connection)) + " B/conn; " +
             held_up_to_text(held_memory, first);
    report_.add(f);

    f.name = "server kernel memory per connection";
    f.value = last.kernel_bytes_per_connection;
    f.unit = "B/conn";
    f.goal = Goal::none;
    f.target = 0;
    f.note = std::string("half the growth of ") +
             (last.kernel.slab_caches.empty() ? "Slab" : "the socket slab caches (tcp_sock, inode, file, dentry, epoll)") +
             " and TCP buffer pages (both ends share this kernel); one socket's slab objects: " +
             std::to_string(socket_object_bytes(last.kernel)) + " B";
    if (std::abs(last.other_tcp_sockets) * 20 > 2 * static_cast<int64_t>(last.clients))
      f.note += "; noisy: other processes' TCP sockets changed by " + std::to_string(last.other_tcp_sockets);
    report_.add(f);

    f.name = "server CPU at keepalive load, " + at;
    f.value = last.server_cpu_percent;
    f.unit = "% core";
    f.goal = Goal::at_most;
    f.target = kMaxServerCpuPercent;
    f.note = "keepalive every " + std::to_string(o_.timeout_ms / 4) + " ms each way, over " +
             std::to_string(static_cast<int>(last.hold_s)) + " s; " + held_up_to_text(held_cpu, first);
    if (floor_.measured && floor_.clients == last.clients) {
      f.baseline = floor_.cpu_percent;
      f.baseline_name = "bare loop";
      f.note += "; baseline: the same links kept alive by a bare epoll loop (one recv and one send per "
                "keepalive, no protocol), measured after it";
      if (floor_.cpu_percent > kMaxServerCpuPercent) f.note += ": the floor alone misses the target on this machine";
    }
    report_.add(f);
    f.baseline.reset();
    f.baseline_name.clear();

    if (floor_.measured) {
      f.name = "bare keepalive loop CPU, " + std::to_string(floor_.clients) + " clients";
      f.value = floor_.cpu_percent;
      f.goal = Goal::none;
      f.target = 0;
      char floor_note[200];
      std::snprintf(floor_note, sizeof floor_note,
                    "the floor: any server that recvs and sends each keepalive on this kernel; user space %.2f%%; "
                    "outages %llu server, %llu clients",
                    floor_.user_cpu_percent, static_cast<unsigned long long>(floor_.server_outages),
                    static_cast<unsigned long long>(floor_.generator_outages));
      f.note = floor_note;
      report_.add(f);
    }

    f.name = "server CPU in user space, " + at;
    f.value = last.server_user_cpu_percent;
    f.goal = Goal::none;
    f.target = 0;
    f.note = "utime only; the rest is the kernel's TCP work (on loopback a send also runs the receiver's side)";
    report_.add(f);

    // The ramp's CPU, to see where the target stops holding (informative).
    f.goal = Goal::none;
    f.target = 0;
    for (size_t i = 0; i + 1 < results_.size(); ++i) {
      f.name = "server CPU at keepalive load, " + std::to_string(results_[i].clients) + " clients";
      f.value = results_[i].server_cpu_percent;
      f.unit = "% core";
      f.note = "ramp step";
      report_.add(f);
    }

    f.name = "load generator CPU, " + at;
    f.value = last.generator_cpu_percent;
    f.unit = "% core";
    f.goal = Goal::none;
    f.target = 0;
    char busiest[96];
    std::snprintf(busiest, sizeof busiest, "%u threads, busiest %.1f%% of a core", o_.generator_threads,
                  last.generator_busiest_thread_percent);
    f.note = busiest;
    // A saturated generator delays keepalives and would make outages that are its own.
    if (last.generator_busiest_thread_percent > 50) f.note += "; near saturation: raise generator_threads";
    report_.add(f);

    f.name = "connect rate";
    f.value = last.connect_rate;
    f.unit = "conn/s";
    f.note = "last step: " + std::to_string(last.clients - (results_.size() > 1 ? results_[results_.size() - 2].clients : 0)) +
             " clients added, " + std::to_string(o_.connects_in_flight) + " connecting at once";
    report_.add(f);

    // Where the user-space bytes come from (informative).
    f.name = "server heap in use per connection";
    f.value = last.heap_bytes_per_connection;
    f.unit = "B/conn";
    f.note = "malloc'd and not freed (mallinfo2); RSS is lower while pages handed out stay untouched";
    report_.add(f);
    f.name = "sizeof(core::Engine)";
    f.value = sizeof(core::Engine);
    f.unit = "B";
    f.note = "with its own buffers at the Linux capacities (core/CMakeLists.txt)";
    report_.add(f);
    f.name = "sizeof(resilink::Connection)";
    f.value = sizeof(Connection);
    f.note = "one per client id the server has seen";
    report_.add(f);

    add_context(held_outages, held_memory, held_cpu, held_all);
  }

  void add_context(uint32_t held_outages, uint32_t held_memory, uint32_t held_cpu, uint32_t held_all) {
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& r : results_) {
      steps.push_back({{"clients", r.clients},
                       {"generator_up", r.generator_up},
                       {"server_connections", r.server_connections},
                       {"server_up", r.server_up},
                       {"connect_s", r.connect_s},
                       {"connect_rate", r.connect_rate},
                       {"hold_s", r.hold_s},
                       {"server_cpu_percent", r.server_cpu_percent},
                       {"server_user_cpu_percent", r.server_user_cpu_percent},
                       {"generator_cpu_percent", r.generator_cpu_percent},
                       {"generator_busiest_thread_percent", r.generator_busiest_thread_percent},
                       {"user_bytes_per_connection", r.user_bytes_per_connection},
                       {"rss_bytes_per_connection", r.rss_bytes_per_connection},
                       {"heap_bytes_per_connection", r.heap_bytes_per_connection},
                       {"kernel_bytes_per_connection", r.kernel_bytes_per_connection},
                       {"kernel_socket_caches_per_connection_both_ends", socket_cache_growth(r)},
                       {"other_tcp_sockets", r.other_tcp_sockets},
                       {"server_outages", r.server_outages},
                       {"server_link_downs", r.server_link_downs},
                       {"generator_outages", r.generator_outages},
                       {"generator_connect_failures", r.generator.connect_failures},
                       {"missed", r.missed}});
    }
    // The slab caches that grew most, per connection (both ends together).
    const StepResult& last = results_.back();
    std::vector<std::pair<int64_t, std::string>> grown;
    for (const auto& [name, bytes] : last.kernel.slab_caches) {
      auto before = base_kernel_.slab_caches.find(name);
      int64_t g = growth(bytes, before == base_kernel_.slab_caches.end() ? 0 : before->second);
      if (g > 0) grown.emplace_back(g, name);
    }
    std::sort(grown.rbegin(), grown.rend());
    nlohmann::json caches = nlohmann::json::object();
    for (size_t i = 0; i < grown.size() && i < 10; ++i)
      caches[grown[i].second] = static_cast<double>(grown[i].first) / last.clients;

    std::string where = held_all == last.clients && results_.size() == steps_.size()
                            ? "held up to " + std::to_string(last.clients) + " clients"
                            : "stops holding at " + std::to_string(first_missing_step()) + " clients";
    report_.set("scale", {{"clients", o_.clients},
                          {"timeout_ms", o_.timeout_ms},
                          {"steps", steps},
                          {"step_hold_s", step_hold_s_},
                          {"final_hold_s", final_hold_s_},
                          {"where_it_stops_holding", where},
                          {"held_up_to",
                           {{"all_targets", held_all},
                            {"zero_false_outages", held_outages},
                            {"user_memory", held_memory},
                            {"server_cpu", held_cpu}}},
                          {"fd_limit", fd_limit_},
                          {"ip_local_port_range", port_range_},
                          {"clients_per_source_address", clients_per_source_address_},
                          {"generator_threads", o_.generator_threads},
                          {"server_baseline_rss_anon", base_memory_.rss_anon},
                          {"server_baseline_vm_rss", base_memory_.vm_rss},
                          {"kernel_slab_total_growth_per_connection_both_ends",
                           per_connection(growth(last.kernel.slab, base_kernel_.slab), last.clients)},
                          {"kernel_slab_growth_per_connection_both_ends", caches},
                          {"kernel_slab_objects_per_socket", socket_object_bytes(last.kernel)},
                          {"floor",
                           {{"measured", floor_.measured},
                            {"clients", floor_.clients},
                            {"hold_s", floor_.hold_s},
                            {"server_cpu_percent", floor_.cpu_percent},
                            {"server_user_cpu_percent", floor_.user_cpu_percent},
                            {"server_outages", floor_.server_outages},
                            {"generator_outages", floor_.generator_outages}}}});
    std::fprintf(stderr, "bench: scale: %s\n", where.c_str());
  }

  uint32_t first_missing_step() const {
    for (const auto& r : results_)
      if (!r.missed.empty()) return r.clients;
    // All measured steps held but the ramp stopped early: the next one.
    return results_.size() < steps_.size() ? steps_[results_.size()] : results_.back().clients;
  }

  const ScaleOptions& o_;
  Report& report_;
  std::vector<uint32_t> steps_;
  uint32_t step_hold_s_ = 0;
  uint32_t final_hold_s_ = 0;
  uint64_t fd_limit_ = 0;
  uint32_t clients_per_source_address_ = 0;
  std::string port_range_;
  ProcessMemory base_memory_;
  uint64_t base_heap_ = 0;
  KernelMemory base_kernel_;
  std::vector<StepResult> results_;
  FloorResult floor_;
};

}  // namespace

void run_scale(const ScaleOptions& options, Report& report) { ScaleRun(options, report).run(); }

}  // namespace resilink::bench
