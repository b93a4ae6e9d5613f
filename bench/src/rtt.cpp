// The rtt section: a qos message's round trip through the resilink server
// (write with qos until its ACK returns), next to the physical floor measured
// in the same run (a raw TCP ping-pong of the same payload on loopback) and a
// peer reference (MQTT qos1 PUBLISH -> PUBACK against mosquitto).
//
// Each repetition times the three systems in turn, so a disturbance from
// another process lands on all of them; the first tenth of every run is
// warm-up and is not timed. Reported: the median over repetitions of each
// run's p50, p99 and max.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

#include "bench_server_thread.h"
#include "bench_util.h"
#include "mosquitto_peer.h"
#include "resilink/bench/sections.h"
#include "resilink/client/client.h"

namespace resilink::bench {

using namespace loopback;

namespace {

// Times `count` calls of round_trip after `warmup` untimed ones; microseconds.
Percentiles time_round_trips(uint32_t warmup, uint32_t count, const std::function<void()>& round_trip) {
  for (uint32_t i = 0; i < warmup; ++i) round_trip();
  std::vector<double> samples;
  samples.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    auto start = std::chrono::steady_clock::now();
    round_trip();
    auto end = std::chrono::steady_clock::now();
    samples.push_back(std::chrono::duration<double, std::micro>(end - start).count());
  }
  return percentiles(samples);
}

// The physical baseline: blocking sockets, TCP_NODELAY on both ends, the echo
// in its own thread returning every byte it reads.
class RawEcho {
 public:
  // The kernel completes the connection from the listen backlog; the echo
  // thread accepts it after.
  RawEcho() : listener_(listen_loopback()), client_(connect_loopback(listener_.port)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~RawEcho() {
    ::shutdown(client_, SHUT_RDWR);
    ::close(client_);
    thread_.join();
    ::close(listener_.fd);
  }
  RawEcho(const RawEcho&) = delete;
  RawEcho& operator=(const RawEcho&) = delete;

  // payload + '\n' one way, the same bytes back.
  void round_trip(const std::string& line) {
    send_all(client_, line.data(), line.size());
    reply_.resize(line.size());
    receive_exactly(client_, reply_.data(), reply_.size());
  }

 private:
  void serve() {
    int fd = ::accept4(listener_.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    set_nodelay(fd);
    char buffer[65536];
    for (;;) {
      ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      try {
        send_all(fd, buffer, static_cast<size_t>(n));
      } catch (const std::system_error&) {
        break;
      }
    }
    ::close(fd);
  }

  Listener listener_;
  int client_ = -1;
  std::thread thread_;
  std::string reply_;
};

// The resilink client with its link up to a BenchServerThread.
std::unique_ptr<Client> connect_client(uint16_t port) {
  ClientOptions options;
  options.id = "rtt-probe";
  options.port = port;
  options.timeout_ms = 2000;
  options.logger = quiet_logger("bench.client");
  auto client = std::make_unique<Client>(options);
  if (client->start() != core::Error::ok) throw std::runtime_error("resilink client: start failed");
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!client->status()) {
    if (std::chrono::steady_clock::now() > give_up)
      throw std::runtime_error("resilink client: link not up within 5 s");
    client->run_once(50);
  }
  return client;
}

struct SizeResults {
  size_t size = 0;
  std::vector<Percentiles> raw, resilink, mqtt;
};

// p50, p99 and max of one system at one size, each against the same
// percentile of raw TCP (like for like) when `raw` is given.
std::array<Figure, 3> percentile_figures(const std::string& system, size_t size, const Percentiles& value,
                                         const Percentiles* raw, const std::string& note) {
  std::array<Figure, 3> figures;
  const char* names[] = {"p50", "p99", "max"};
  const double values[] = {value.p50, value.p99, value.max};
  const double raws[] = {raw ? raw->p50 : 0, raw ? raw->p99 : 0, raw ? raw->max : 0};
  for (size_t i = 0; i < 3; ++i) {
    Figure& f = figures[i];
    f.section = "rtt";
    f.name = system + " " + names[i] + ", " + std::to_string(size) + " B";
    f.value = values[i];
    f.unit = "us";
    if (raw) {
      f.baseline = raws[i];
      f.baseline_name = std::string("raw TCP ") + names[i];
    }
    if (i == 0) f.note = note;
  }
  return figures;
}

void add_all(Report& report, std::array<Figure, 3> figures) {
  for (Figure& f : figures) report.add(std::move(f));
}

}  // namespace

void run_rtt(const RttOptions& options, Report& report) {
  const uint32_t repetitions = std::max<uint32_t>(1, options.common.repetitions);
  const uint32_t round_trips = options.common.quick ? std::min<uint32_t>(options.round_trips, 2000)
                                                    : options.round_trips;
  const uint32_t warmup = std::max<uint32_t>(round_trips / 10, 10);
  for (size_t size : options.payload_sizes)
    if (size == 0 || size > Client::kMaxPayload)
      throw std::invalid_argument("rtt payload size " + std::to_string(size) + " B: must be 1.." +
                                  std::to_string(Client::kMaxPayload) + " (RESILINK_MAX_LINE - 2)");

  BenchServerThread server;
  // A Client runs only inside its calls: left alone through the other
  // systems' runs (longer than the timeout) its link would go down at both
  // ends. So each resilink run gets a fresh connection, made before timing.
  std::unique_ptr<Client> client;
  uint32_t client_retransmits = 0, client_outages = 0;
  RawEcho echo;
  std::optional<MosquittoBroker> broker;
  std::optional<MqttQos1Publisher> publisher;
  std::string mqtt_note;
  if (MosquittoBroker::installed()) {
    // The peer reference is optional: a broker that will not start is noted
    // beside the figures, not a reason to drop resilink's own.
    try {
      broker.emplace();
      publisher.emplace(broker->port());
      mqtt_note = broker->version() + ", raw MQTT 3.1.1 publisher, no subscriber";
    } catch (const std::exception& e) {
      publisher.reset();
      broker.reset();
      mqtt_note = std::string("mosquitto did not start: ") + e.what();
    }
  } else {
    mqtt_note = "mosquitto not installed";
  }

  std::vector<SizeResults> results;
  for (size_t size : options.payload_sizes) {
    SizeResults r;
    r.size = size;
    const std::string payload = make_payload(size);
    const std::string line = payload + '\n';
    for (uint32_t rep = 0; rep < repetitions; ++rep) {
      r.raw.push_back(time_round_trips(warmup, round_trips, [&] { echo.round_trip(line); }));
      client = connect_client(server.port());
      r.resilink.push_back(time_round_trips(warmup, round_trips, [&] {
        std::error_code ec = client->write(payload, {.qos = true, .wait = true}, std::chrono::seconds(5));
        if (ec) throw std::runtime_error("resilink qos write: " + ec.message());
      }));
      client_retransmits += client->stats().retransmits;
      client_outages += client->stats().outages;
      client.reset();
      if (publisher)
        r.mqtt.push_back(time_round_trips(warmup, round_trips, [&] { publisher->publish("bench/rtt", payload); }));
    }
    results.push_back(std::move(r));
  }

  // Anything but a clean run (a retransmission, an outage) makes the figures
  // measure recovery, not the round trip: say so beside them.
  std::string resilink_note;
  if (client_retransmits > 0 || client_outages > 0)
    resilink_note = "disturbed: " + std::to_string(client_retransmits) + " retransmissions, " +
                    std::to_string(client_outages) + " outages";

  for (const SizeResults& r : results) {
    // Notes once, under the first size's rows.
    const bool first = &r == &results.front();
    Percentiles raw = median_of(r.raw);
    Percentiles resilink = median_of(r.resilink);
    add_all(report, percentile_figures("raw TCP ping-pong", r.size, raw, nullptr,
                                       first ? "payload + '\\n' echoed back; blocking sockets, TCP_NODELAY" : ""));
    std::array<Figure, 3> qos = percentile_figures("qos round trip", r.size, resilink, &raw, resilink_note);
    // The target: a qos round trip within 2x the raw ping-pong's.
    qos[0].goal = Goal::at_most;
    qos[0].target = 2.0;
    qos[0].target_on_ratio = true;
    add_all(report, std::move(qos));

    if (!r.mqtt.empty()) {
      Percentiles mqtt = median_of(r.mqtt);
      add_all(report, percentile_figures("mosquitto qos1 round trip", r.size, mqtt, &raw, first ? mqtt_note : ""));
      Figure versus;
      versus.section = "rtt";
      versus.name = "qos round trip p50 vs mosquitto, " + std::to_string(r.size) + " B";
      versus.value = resilink.p50;
      versus.unit = "us";
      versus.baseline = mqtt.p50;
      versus.baseline_name = "mosquitto p50";
      versus.goal = Goal::at_most;
      versus.target = 1.0;
      versus.target_on_ratio = true;
      report.add(std::move(versus));
    } else {
      Figure absent;
      absent.section = "rtt";
      absent.name = "qos round trip p50 vs mosquitto, " + std::to_string(r.size) + " B";
      absent.value = resilink.p50;
      absent.unit = "us";
      absent.note = mqtt_note;
      report.add(std::move(absent));
    }
  }
  // Every repetition's figures, so a reader can see the spread behind a median.
  nlohmann::json runs = nlohmann::json::array();
  for (const SizeResults& r : results) {
    const std::pair<const char*, const std::vector<Percentiles>*> systems[] = {
        {"raw TCP", &r.raw}, {"resilink", &r.resilink}, {"mosquitto", &r.mqtt}};
    for (const auto& [system, reps] : systems) {
      if (reps->empty()) continue;
      nlohmann::json p50 = nlohmann::json::array(), p99 = nlohmann::json::array(), max = nlohmann::json::array();
      for (const Percentiles& p : *reps) {
        p50.push_back(p.p50);
        p99.push_back(p.p99);
        max.push_back(p.max);
      }
      runs.push_back({{"size", r.size}, {"system", system}, {"p50_us", p50}, {"p99_us", p99}, {"max_us", max}});
    }
  }
  report.set("rtt_repetitions", std::move(runs));
  report.set("rtt_round_trips", round_trips);
  report.set("rtt_warmup_round_trips", warmup);
  report.set("rtt_payload_sizes", options.payload_sizes);
}

}  // namespace resilink::bench
