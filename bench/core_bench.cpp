// Micro-benchmarks of the sans-I/O core: the line decoder against a plain
// memchr splitter, a server engine receiving qos messages, a client engine
// sending them, a whole message -> ACK exchange between two engines in virtual
// time, and what an idle engine costs per keepalive interval.
//
// Honesty rules: inputs are built once and deterministically; one benchmark
// iteration is one identical pass (four laps of mids 1..255, so a pass ends
// where the next begins); warm-up is excluded (--benchmark_min_warmup_time,
// 0.1 s unless given); every benchmark checks that the engine did all the
// work it was timed for (nothing refused, nothing lost) or reports an error.
// `resilink bench --only core` runs this with repetitions and reports medians.
#include <benchmark/benchmark.h>
#include <string.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "resilink/core/engine.h"
#include "resilink/core/line_decoder.h"
#include "resilink/core/message_id.h"

namespace core = resilink::core;

namespace {

constexpr uint32_t kTimeoutMs = 2000;
// A TCP segment on Ethernet or WiFi: what one read typically brings.
constexpr size_t kSegment = 1460;
// The window of a microcontroller client (config.h default): at most this many
// qos messages arrive before the receiver's ACKs go out.
constexpr uint8_t kWindow = 4;
// Four laps of mids 1..255: a pass leaves the mids where the next one starts.
constexpr size_t kLinesPerPass = 4 * 255;
const uint8_t kNewline = '\n';

// A sensor reading as JSON text, cut or padded to len bytes (never a '\n').
std::vector<uint8_t> make_payload(size_t len) {
  static const char reading[] = "{\"seq\":4711,\"temp\":21.50,\"rh\":40.1,\"vbat\":3.71}";
  std::vector<uint8_t> p(len);
  for (size_t i = 0; i < len; ++i) p[i] = static_cast<uint8_t>(reading[i % (sizeof reading - 1)]);
  return p;
}

struct Chunk {
  size_t offset;
  size_t length;
};

// The bytes a sender puts on the wire for kLinesPerPass qos messages of one
// payload size, mids 1..255 repeating, and how reads cut them.
struct Stream {
  std::vector<uint8_t> bytes;
  std::vector<size_t> line_ends;  // offset just past each '\n'
  std::vector<Chunk> chunks;
};

Stream make_stream(size_t payload_len) {
  Stream s;
  std::vector<uint8_t> payload = make_payload(payload_len);
  uint8_t mid = 1;
  for (size_t i = 0; i < kLinesPerPass; ++i) {
    uint8_t hex[2];
    core::format_mid(mid, hex);
    s.bytes.insert(s.bytes.end(), hex, hex + 2);
    s.bytes.insert(s.bytes.end(), payload.begin(), payload.end());
    s.bytes.push_back('\n');
    s.line_ends.push_back(s.bytes.size());
    mid = mid == 255 ? 1 : static_cast<uint8_t>(mid + 1);
  }
  return s;
}

// Reads of at most `segment` bytes that never span more than `lines_per_read`
// lines: a sender's window's worth arrives, then it waits for ACKs.
void cut(Stream& s, size_t lines_per_read, size_t segment) {
  s.chunks.clear();
  size_t start = 0;
  for (size_t i = lines_per_read - 1; start < s.bytes.size(); i += lines_per_read) {
    size_t end = i < s.line_ends.size() ? s.line_ends[i] : s.bytes.size();
    for (size_t at = start; at < end; at += segment) {
      size_t len = end - at < segment ? end - at : segment;
      s.chunks.push_back({at, len});
    }
    start = end;
  }
}

// Counts events the way a shell's observer records them, and no more.
struct CountingObserver : core::EngineObserver {
  uint64_t ups = 0, downs = 0, lines = 0, acked = 0, writable = 0;
  void on_link_up() override { ++ups; }
  void on_link_down(core::OutageReason, uint32_t) override { ++downs; }
  void on_line_ready() override { ++lines; }
  void on_write_acked(uint32_t) override { ++acked; }
  void on_writable() override { ++writable; }
};

// Hands everything the engine queued to the "socket".
size_t flush(core::Engine& e, uint64_t now) {
  const uint8_t* data;
  size_t n = e.tx_pending(&data);
  if (n) e.handle_tx_sent(n, now);
  return n;
}

std::unique_ptr<core::Engine> make_server(core::EngineObserver* observer) {
  core::EngineConfig config;
  config.role = core::Role::server;
  config.timeout_ms = kTimeoutMs;
  return std::make_unique<core::Engine>(config, observer);
}

// A server engine whose link is up at `now` (the client's keepalive arrived).
std::unique_ptr<core::Engine> make_up_server(core::EngineObserver* observer, uint64_t now) {
  auto e = make_server(observer);
  e->handle_connected(now);
  flush(*e, now);
  e->handle_rx(&kNewline, 1, now);
  flush(*e, now);
  return e;
}

std::unique_ptr<core::Engine> make_client(core::EngineObserver* observer, uint8_t window) {
  core::EngineConfig config;
  config.role = core::Role::client;
  config.timeout_ms = kTimeoutMs;
  config.client_id = "bench-device-0001";
  config.window = window;
  return std::make_unique<core::Engine>(config, observer);
}

// Set when a benchmark's engine did not do the work it was timed for; the
// exit status says so, so a smoke run catches it.
bool g_check_failed = false;

bool check(benchmark::State& state, bool ok, const char* what) {
  if (!ok) {
    state.SkipWithError(what);
    g_check_failed = true;
  }
  return ok;
}

// ------------------------------------------------------------ line decoder

// The core's decoder over the same bytes as BM_MemchrSplit, one TCP segment
// per feed; it copies every line into its buffer.
void BM_LineDecoder(benchmark::State& state) {
  Stream s = make_stream(static_cast<size_t>(state.range(0)));
  cut(s, kLinesPerPass, kSegment);
  uint8_t buffer[RESILINK_MAX_LINE];
  core::LineDecoder decoder(buffer, sizeof buffer);
  uint64_t lines = 0, line_bytes = 0;
  for (auto _ : state) {
    for (const Chunk& c : s.chunks) {
      const uint8_t* p = s.bytes.data() + c.offset;
      size_t len = c.length;
      while (len > 0) {
        core::LineDecoder::Result r = decoder.feed(p, len);
        p += r.consumed;
        len -= r.consumed;
        if (r.status == core::LineDecoder::Status::line) {
          ++lines;
          line_bytes += decoder.length();
          benchmark::DoNotOptimize(decoder.line()[0]);
        }
      }
    }
  }
  benchmark::DoNotOptimize(line_bytes);
  check(state, lines == state.iterations() * kLinesPerPass, "decoder lost lines");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kLinesPerPass));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * s.bytes.size()));
}

// The physical baseline: memchr finds each '\n'; a line inside a segment is
// used in place and only a line cut by a segment end is copied (the least any
// splitter over reads must do).
void BM_MemchrSplit(benchmark::State& state) {
  Stream s = make_stream(static_cast<size_t>(state.range(0)));
  cut(s, kLinesPerPass, kSegment);
  uint8_t carry[RESILINK_MAX_LINE];
  size_t carried = 0;
  uint64_t lines = 0, line_bytes = 0;
  for (auto _ : state) {
    for (const Chunk& c : s.chunks) {
      const uint8_t* p = s.bytes.data() + c.offset;
      const uint8_t* end = p + c.length;
      while (p < end) {
        const auto* nl = static_cast<const uint8_t*>(memchr(p, '\n', static_cast<size_t>(end - p)));
        if (!nl) {
          memcpy(carry + carried, p, static_cast<size_t>(end - p));
          carried += static_cast<size_t>(end - p);
          break;
        }
        const uint8_t* line = p;
        size_t len = static_cast<size_t>(nl - p);
        if (carried) {
          memcpy(carry + carried, p, len);
          line = carry;
          len += carried;
          carried = 0;
        }
        ++lines;
        line_bytes += len;
        benchmark::DoNotOptimize(line[0]);
        p = nl + 1;
      }
    }
  }
  benchmark::DoNotOptimize(line_bytes);
  check(state, lines == state.iterations() * kLinesPerPass, "splitter lost lines");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kLinesPerPass));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * s.bytes.size()));
}

// ------------------------------------------------------------ engine roles

// A server engine receives qos messages a window at a time (reads cut at a
// segment), the application takes every line after each read, and the driver
// sends the ACKs the engine queued: what the Asio shell does per read.
void BM_ServerRx(benchmark::State& state) {
  Stream s = make_stream(static_cast<size_t>(state.range(0)));
  cut(s, kWindow, kSegment);
  CountingObserver events;
  uint64_t now = 1000;
  auto e = make_up_server(&events, now);
  uint64_t taken = 0, ack_bytes = 0;
  for (auto _ : state) {
    for (const Chunk& c : s.chunks) {
      e->handle_rx(s.bytes.data() + c.offset, c.length, now);
      const uint8_t* line;
      size_t len;
      while (e->peek_line(&line, &len)) {
        taken += len;
        benchmark::DoNotOptimize(line[0]);
        e->pop_line();
      }
      ack_bytes += flush(*e, now);
      ++now;  // a millisecond per read
    }
  }
  benchmark::DoNotOptimize(taken);
  uint64_t expected = state.iterations() * kLinesPerPass;
  const core::EngineStats& st = e->stats();
  check(state, e->is_up() && st.messages_received == expected && st.acks_sent == expected &&
                   st.deferred == 0 && ack_bytes >= 3 * expected,
        "server engine refused, lost or did not ACK messages");
  state.SetItemsProcessed(static_cast<int64_t>(expected));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * s.bytes.size()));
  state.counters["reads_per_pass"] = static_cast<double>(s.chunks.size());
}

// A client engine with a window of 4: four qos writes, the driver sends what
// was queued in one go, and the four ACKs come back in one read.
void BM_ClientSend(benchmark::State& state) {
  std::vector<uint8_t> payload = make_payload(static_cast<size_t>(state.range(0)));
  CountingObserver events;
  uint64_t now = 1000;
  auto e = make_client(&events, kWindow);
  e->start(now);
  e->handle_link_ready(now);
  e->handle_connected(now);
  flush(*e, now);
  e->handle_rx(&kNewline, 1, now);  // the server's keepalive: up
  core::MidSequence mids;           // mirrors the engine's, to write the ACKs
  uint8_t acks[3 * kWindow];
  uint64_t sent_bytes = 0;
  bool writes_ok = true;
  for (auto _ : state) {
    for (size_t batch = 0; batch < kLinesPerPass / kWindow; ++batch) {
      for (size_t i = 0; i < kWindow; ++i) {
        writes_ok &= e->write(payload.data(), payload.size(), true, now) == core::Error::ok;
        core::format_mid(mids.take(), acks + 3 * i);
        acks[3 * i + 2] = '\n';
      }
      sent_bytes += flush(*e, now);
      e->handle_rx(acks, sizeof acks, now);
      ++now;
    }
  }
  uint64_t expected = state.iterations() * kLinesPerPass;
  const core::EngineStats& st = e->stats();
  check(state, writes_ok && e->is_up() && st.messages_sent == expected && st.messages_acked == expected &&
                   st.retransmits == 0 && sent_bytes >= expected * (payload.size() + 3),
        "client engine refused a write, or messages were not sent or acknowledged");
  state.SetItemsProcessed(static_cast<int64_t>(expected));
  state.SetBytesProcessed(static_cast<int64_t>(sent_bytes));
}

// ------------------------------------------------------------ two engines

// Driver calls into the engines per exchange in BM_Exchange: handle_timeout x2,
// write, handle_rx x2, handle_tx_sent x2, pop_line.
constexpr int kEventsPerExchange = 8;

// A client and a server engine back to back in virtual time, one qos message
// and its ACK per exchange, each side driven as engine.h's loop says.
void BM_Exchange(benchmark::State& state) {
  std::vector<uint8_t> payload = make_payload(static_cast<size_t>(state.range(0)));
  CountingObserver client_events, server_events;
  uint64_t now = 1000;
  auto client = make_client(&client_events, kWindow);
  auto server = make_server(&server_events);
  client->start(now);
  client->handle_link_ready(now);
  client->handle_connected(now);
  // The id line belongs to the server shell's handshake; the engine gets the rest.
  const uint8_t* data;
  size_t n = client->tx_pending(&data);
  const auto* id_end = static_cast<const uint8_t*>(memchr(data, '\n', n));
  size_t id_len = static_cast<size_t>(id_end - data) + 1;
  server->handle_connected(now);
  server->handle_rx(data + id_len, n - id_len, now);
  client->handle_tx_sent(n, now);
  n = server->tx_pending(&data);
  client->handle_rx(data, n, now);
  server->handle_tx_sent(n, now);
  uint64_t taken = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < kLinesPerPass; ++i) {
      client->handle_timeout(now);
      server->handle_timeout(now);
      client->write(payload.data(), payload.size(), true, now);
      n = client->tx_pending(&data);
      server->handle_rx(data, n, now);
      client->handle_tx_sent(n, now);
      size_t len;
      if (server->peek_line(&data, &len)) {
        taken += len;
        server->pop_line();
      }
      n = server->tx_pending(&data);
      client->handle_rx(data, n, now);
      server->handle_tx_sent(n, now);
      benchmark::DoNotOptimize(client->next_deadline());
      benchmark::DoNotOptimize(server->next_deadline());
      ++now;
    }
  }
  uint64_t expected = state.iterations() * kLinesPerPass;
  check(state, client->is_up() && server->is_up() && client->stats().messages_acked == expected &&
                   server->stats().messages_received == expected && taken == expected * payload.size(),
        "an exchange did not complete");
  state.SetItemsProcessed(static_cast<int64_t>(expected));
  state.counters["events"] = benchmark::Counter(static_cast<double>(expected * kEventsPerExchange),
                                                benchmark::Counter::kIsRate);
}

// ------------------------------------------------------------ idle engines

// Many idle server engines, one keepalive interval per iteration: each one's
// timer fires, it sends its keepalive, the client's keepalive arrives, and the
// driver re-arms the timer after both calls (server/src/connection.cpp does
// the same). One item is one engine's interval.
void BM_IdleTick(benchmark::State& state) {
  size_t count = static_cast<size_t>(state.range(0));
  CountingObserver events;
  uint64_t now = 1000;
  std::vector<std::unique_ptr<core::Engine>> engines;
  engines.reserve(count);
  for (size_t i = 0; i < count; ++i) engines.push_back(make_up_server(&events, now));
  uint64_t timeouts = 0;
  for (auto _ : state) {
    now += kTimeoutMs / 4;
    for (auto& e : engines) {
      if (now >= e->next_deadline()) {
        e->handle_timeout(now);
        ++timeouts;
      }
      flush(*e, now);
      benchmark::DoNotOptimize(e->next_deadline());
      e->handle_rx(&kNewline, 1, now);
      flush(*e, now);
      benchmark::DoNotOptimize(e->next_deadline());
    }
  }
  uint64_t expected = state.iterations() * count;
  uint64_t keepalives = 0;
  bool all_up = true;
  for (auto& e : engines) {
    keepalives += e->stats().keepalives_sent;
    all_up &= e->is_up();
  }
  // Every engine sent its connect keepalive, then one per interval.
  check(state, all_up && events.downs == 0 && timeouts == expected && keepalives == count + expected,
        "an idle engine missed a keepalive or went down");
  state.SetItemsProcessed(static_cast<int64_t>(expected));
  state.counters["engines"] = static_cast<double>(count);
}

// The call a driver makes after every engine call to re-arm its timer.
void BM_NextDeadline(benchmark::State& state) {
  CountingObserver events;
  auto e = make_up_server(&events, 1000);
  for (auto _ : state) benchmark::DoNotOptimize(e->next_deadline());
  state.SetItemsProcessed(state.iterations());
}

// A timer wake-up that finds nothing due (a late or spurious one).
void BM_HandleTimeoutNothingDue(benchmark::State& state) {
  CountingObserver events;
  auto e = make_up_server(&events, 1000);
  for (auto _ : state) e->handle_timeout(1001);
  check(state, e->is_up() && e->stats().keepalives_sent == 1, "the engine did work on an idle wake-up");
  state.SetItemsProcessed(state.iterations());
}

// 32 B: a sensor reading; 1000 B: a kilobyte message (Linux lines hold 1022).
BENCHMARK(BM_LineDecoder)->Arg(32)->Arg(1000);
BENCHMARK(BM_MemchrSplit)->Arg(32)->Arg(1000);
BENCHMARK(BM_ServerRx)->Arg(32)->Arg(1000);
BENCHMARK(BM_ClientSend)->Arg(32)->Arg(1000);
BENCHMARK(BM_Exchange)->Arg(32)->Arg(1000);
BENCHMARK(BM_IdleTick)->Arg(1000)->Arg(10000);
BENCHMARK(BM_NextDeadline);
BENCHMARK(BM_HandleTimeoutNothingDue);

}  // namespace

int main(int argc, char** argv) {
  // Warm-up is excluded by default; an explicit flag wins.
  static char default_warmup[] = "--benchmark_min_warmup_time=0.1";
  std::vector<char*> args(argv, argv + argc);
  bool warmup_given = false;
  for (int i = 1; i < argc; ++i)
    warmup_given |= strncmp(argv[i], "--benchmark_min_warmup_time", 27) == 0;
  if (!warmup_given) args.insert(args.begin() + 1, default_warmup);
  int count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  // What the figures were measured with, for the report.
  benchmark::AddCustomContext("sizeof_engine", std::to_string(sizeof(core::Engine)));
  benchmark::AddCustomContext(
      "core_capacities", "RESILINK_MAX_LINE=" + std::to_string(RESILINK_MAX_LINE) +
                             " RESILINK_RX_QUEUE=" + std::to_string(RESILINK_RX_QUEUE) +
                             " RESILINK_TX_WINDOW=" + std::to_string(RESILINK_TX_WINDOW) +
                             " RESILINK_TX_BUFFER=" + std::to_string(RESILINK_TX_BUFFER));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (g_check_failed) std::fprintf(stderr, "resilink_core_bench: a benchmark failed its check (see above)\n");
  return g_check_failed ? 1 : 0;
}
