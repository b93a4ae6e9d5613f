// The World class behind run_world(), shared by the files that implement it:
// world.cpp (the run loop and the applications), world_network.cpp (the shells'
// sockets: connect, handshake, pipes) and world_faults.cpp (the fault
// schedule). Internal to sim/src.
#pragma once

#include <array>
#include <cstdio>
#include <optional>
#include <vector>

#include "resilink/core/engine.h"
#include "resilink/sim/event_queue.h"
#include "resilink/sim/network.h"
#include "resilink/sim/prng.h"
#include "resilink/sim/trace.h"
#include "resilink/sim/world.h"

namespace resilink::sim {

namespace detail {

using core::Engine;
using core::LinkState;
using core::OutageReason;

constexpr uint32_t kNone = ~0u;
constexpr size_t kAppQueue = 64;
constexpr uint32_t kBackoffMaxMs = 8000;  // core::EngineConfig default
constexpr uint32_t kMaxDelayMs = 60;      // base + jitter, one way

// close_side() with this signal sends nothing: the socket vanishes.
constexpr SegmentKind kSilent = SegmentKind::data;

inline bool is_open(LinkState s) { return s == LinkState::await_peer || s == LinkState::up; }

struct QueuedMessage {
  uint32_t seq;
  uint16_t pad;
  MsgClass cls;
};

class World;

class EndObserver final : public core::EngineObserver {
 public:
  World* world = nullptr;
  uint32_t end = 0;
  void on_link_up() override;
  void on_link_down(OutageReason why, uint32_t silence_ms) override;
  void on_line_ready() override;
  void on_write_acked(uint32_t ticket) override;
  void on_writable() override;
};

// One end of a link: a client (index < clients) or the server's engine for
// one client id (index clients + id), with its application.
struct End {
  std::optional<Engine> engine;
  EndObserver observer;
  uint32_t conn = kNone;              // the socket this end holds
  uint64_t armed = core::kNoDeadline; // deadline of the pending timer event
  bool kick = false;                  // an event asked the application to run again
  // application: sender
  QueuedMessage queue[kAppQueue];
  size_t queue_head = 0, queue_count = 0;
  uint32_t created_in_epoch = 0;
  uint32_t writes_in_epoch = 0;
  uint32_t wait_ticket = 0;
  // application: reader; the connection each queued line was accepted on
  bool reader_stalled = false;
  uint64_t accept_conn[RESILINK_RX_QUEUE] = {};
  size_t accept_head = 0, accept_count = 0;
  // client shell
  bool attempt_pending = false;
  uint64_t attempt_token = 0;
  bool rebooting = false;
  uint64_t last_heard = 0;
  // detection check
  bool detect_pending = false;
  uint64_t detect_id = 0;
  uint64_t detect_started = 0;
};

class World {
 public:
  World(uint64_t seed, const WorldOptions& o)
      : o_(o), seed_(seed), rng_(seed), trace_(o.clients, o.trace), checker_(o.clients),
        ends_(2 * o.clients), up_blocked_(o.clients, 0), down_blocked_(o.clients, 0), ids_(o.clients) {
    n_ = o.clients;
    t_ = o.timeout_ms;
    // Per-seed parameters: the network, the sockets, the applications.
    base_delay_ = static_cast<uint32_t>(rng_.between(1, 30));
    jitter_ = static_cast<uint32_t>(rng_.between(0, kMaxDelayMs - base_delay_));
    uint64_t r = rng_.below(10);
    chunking_ = r == 0 ? 1 : (r < 6 ? 2 : 0);  // 1: byte by byte, 2: random pieces, 0: whole
    partial_send_ = rng_.chance(300);
    static const uint32_t sndbufs[] = {2920, 8192, 65536};
    sndbuf_ = sndbufs[rng_.below(3)];
    window_ = static_cast<uint8_t>(rng_.between(1, RESILINK_TX_WINDOW));
    message_every_ = o.message_every_ms ? o.message_every_ms : static_cast<uint32_t>(rng_.between(500, 5000));
    nonqos_pm_ = static_cast<uint32_t>(rng_.between(0, 300));
    wait_pm_ = static_cast<uint32_t>(rng_.between(0, 500));
    connect_fail_pm_ = static_cast<uint32_t>(rng_.between(0, 50));
    queue_.reserve(16 * n_ + 64);
    conns_.reserve(4 * n_);
    for (uint32_t e = 0; e < 2 * n_; ++e) {
      ends_[e].observer.world = this;
      ends_[e].observer.end = e;
    }
    result_.seed = seed;
    result_.liveness_bound_ms = liveness_bound_ms(t_);
  }

  WorldResult run();

  // observer callbacks (no engine calls from here)
  void link_up(uint32_t end) {
    trace_.add(now_, end, TraceKind::link_up);
    ends_[end].kick = true;
  }
  void link_down(uint32_t end, OutageReason why, uint32_t silence) {
    trace_.add(now_, end, TraceKind::link_down, static_cast<uint64_t>(why), silence);
    if (why != OutageReason::closed_by_app) ++result_.engine_outages;
    End& x = ends_[end];
    if (x.detect_pending) {
      x.detect_pending = false;
      auto& d = end < n_ ? result_.detect_client_ms : result_.detect_server_ms;
      d.push_back(static_cast<uint32_t>(now_ - x.detect_started));
    }
    x.kick = true;
  }
  void line_ready(uint32_t end) {
    End& x = ends_[end];
    uint64_t gen = x.conn == kNone ? 0 : conns_[x.conn].gen;
    x.accept_conn[(x.accept_head + x.accept_count) % RESILINK_RX_QUEUE] = gen;
    ++x.accept_count;
    x.kick = true;
  }
  void write_acked(uint32_t end, uint32_t ticket) {
    trace_.add(now_, end, TraceKind::ack, ticket);
    checker_.acked(end, ticket);
    ends_[end].kick = true;
  }
  void writable(uint32_t end) { ends_[end].kick = true; }

 private:
  // ---- scheduling
  void schedule(uint64_t at, EventKind kind, uint32_t index, uint64_t token = 0, uint8_t side = 0) {
    queue_.push(Event{at, (rng_.next() & 0xffffff0000000000ull) | ++order_, token, index, kind, side});
  }
  uint64_t delay() { return base_delay_ + rng_.below(jitter_ + 1); }
  uint32_t stream_received_by(uint32_t end) const { return end < n_ ? end + n_ : end - n_; }
  uint32_t server_end(uint32_t client) const { return n_ + client; }
  bool blocked(uint32_t client, uint8_t dir) const {
    return dir == kUp ? up_blocked_[client] > 0 : down_blocked_[client] > 0;
  }

  // ---- ends and their drivers
  core::EngineConfig config_for(uint32_t end) {
    core::EngineConfig c;
    c.timeout_ms = t_;
    c.window = window_;
    if (end < n_) {
      c.role = core::Role::client;
      std::snprintf(ids_[end].data(), ids_[end].size(), "dev%u", end);
      c.client_id = ids_[end].data();
      c.random_seed = static_cast<uint32_t>(rng_.next()) | 1u;
    } else {
      c.role = core::Role::server;
    }
    return c;
  }
  void create_engine(uint32_t end) {
    End& x = ends_[end];
    x.engine.emplace(config_for(end), &x.observer);
    x.queue_head = x.queue_count = 0;
    x.created_in_epoch = x.writes_in_epoch = 0;
    x.wait_ticket = 0;
    x.accept_head = x.accept_count = 0;
    x.armed = core::kNoDeadline;
    if (end < n_) x.engine->start(now_);
  }
  void destroy_engine(uint32_t end);
  void settle(uint32_t end);
  void act_on_state(uint32_t end);
  void flush(uint32_t end);
  void rearm(uint32_t end);
  void app_read(uint32_t end);
  void app_write(uint32_t end);
  void app_generate(uint32_t end);

  // ---- network
  uint32_t open_conn(uint32_t client);
  void close_side(uint32_t conn, bool server_side, SegmentKind signal);
  void maybe_free(uint32_t conn);
  void send(uint32_t conn, uint8_t dir, SegmentKind kind, const uint8_t* data, size_t len);
  void deliver(uint32_t conn, uint8_t dir);
  void receive(uint32_t conn, uint8_t dir, const uint8_t* data, size_t len);
  void receive_close(uint32_t conn, uint8_t dir, SegmentKind kind);
  void handshake(uint32_t conn, const uint8_t* data, size_t len);
  void kick_pipes(uint32_t client);
  void start_connect(uint32_t client);
  void connect_done(uint32_t client, uint64_t token, bool refused);

  // ---- faults
  void fault_next(uint32_t client);
  void fault_end(uint32_t client, uint8_t kind, uint64_t token);
  void start_block(uint32_t client, bool up, bool down, uint64_t until, uint8_t kind, bool check);
  void reboot(uint32_t client);
  void server_restart();
  void server_up();
  void faults_stop();

  bool quiescent() const;

  const WorldOptions& o_;
  uint64_t seed_;
  Prng rng_;
  Trace trace_;
  Checker checker_;
  EventQueue queue_;
  std::vector<End> ends_;
  std::vector<Conn> conns_;
  std::vector<uint32_t> free_conns_;
  std::vector<uint32_t> up_blocked_, down_blocked_;
  std::vector<std::array<char, 16>> ids_;
  WorldResult result_;
  uint64_t now_ = 0;
  uint64_t order_ = 0;
  uint64_t conn_gen_ = 0;
  uint64_t outage_id_ = 0;
  uint32_t n_ = 0, t_ = 0;
  uint32_t base_delay_ = 0, jitter_ = 0, sndbuf_ = 0, message_every_ = 0;
  uint32_t nonqos_pm_ = 0, wait_pm_ = 0, connect_fail_pm_ = 0;
  uint8_t window_ = 1;
  uint8_t chunking_ = 0;
  bool partial_send_ = false;
  bool server_down_ = false;
  bool stopped_ = false;
  bool done_ = false;
  uint64_t stopped_at_ = 0;
  uint64_t sabotage_count_ = 0;
  size_t violations_reported_ = 0;
  uint8_t scratch_[RESILINK_TX_BUFFER + RESILINK_MAX_LINE + 8];
  uint8_t rx_scratch_[RESILINK_TX_BUFFER + RESILINK_MAX_LINE + 8];
};

}  // namespace detail
}  // namespace resilink::sim
