// The fault schedule of a world: per-client faults drawn from FaultMix at
// exponential intervals, server restarts, and the end of the fault phase.
#include "world_impl.h"

namespace resilink::sim {
namespace detail {

namespace {
enum FaultKind : uint8_t { kOutage, kHalfUp, kHalfDown, kEdge };
}  // namespace

// How long a link outage lasts: short ones the engines must ride out, ones
// around the timeout, and long ones spanning reconnect attempts.
static uint64_t outage_length(Prng& rng, uint32_t t) {
  switch (rng.below(4)) {
    case 0: return rng.between(50, t - 1);
    case 1: return rng.between(t, 2 * t);
    case 2: return rng.between(2 * t, 10 * t);
    default: return rng.between(10 * t, 40 * t);
  }
}

void World::start_block(uint32_t client, bool up, bool down, uint64_t until, uint8_t kind,
                        bool check) {
  bool was_clear = up_blocked_[client] == 0 && down_blocked_[client] == 0;
  if (up) ++up_blocked_[client];
  if (down) ++down_blocked_[client];
  ++result_.outages_injected;
  uint64_t id = ++outage_id_;
  trace_.add(now_, client, kind == kOutage || kind == kEdge ? TraceKind::outage_start : TraceKind::half_open_start,
             until - now_, kind);
  schedule(until, EventKind::fault_end, client, id, kind);
  // Detection is promised when the link was up at both ends as it began and
  // the outage outlasts T + T/4.
  End& c = ends_[client];
  End& s = ends_[server_end(client)];
  if (!was_clear) {
    // Overlapping faults: the end that would learn of the first one from its
    // peer's FIN may now have that FIN held too. No promise to check.
    c.detect_pending = s.detect_pending = false;
  }
  if (check && was_clear && until - now_ > t_ + t_ / 4 && c.engine && s.engine && c.engine->is_up() &&
      s.engine->is_up()) {
    ++result_.outages_long;
    for (End* x : {&c, &s}) {
      x->detect_pending = true;
      x->detect_id = id;
      x->detect_started = now_;
    }
    schedule(now_ + t_ + t_ / 4 + 1, EventKind::detect_check, client, id);
    schedule(now_ + t_ + t_ / 4 + 1, EventKind::detect_check, server_end(client), id);
  }
}

void World::fault_end(uint32_t client, uint8_t kind, uint64_t token) {
  (void)token;
  if (stopped_) return;  // faults_stop() cleared every block
  bool up = kind != kHalfDown, down = kind != kHalfUp;
  if (up && up_blocked_[client]) --up_blocked_[client];
  if (down && down_blocked_[client]) --down_blocked_[client];
  trace_.add(now_, client, TraceKind::outage_end, kind);
  kick_pipes(client);
}

void World::fault_next(uint32_t client) {
  if (stopped_) return;
  schedule(now_ + 1 + rng_.exponential(o_.fault_every_ms), EventKind::fault_next, client);
  const FaultMix& m = o_.mix;
  uint64_t r = rng_.below(m.total() ? m.total() : 1);
  End& x = ends_[client];
  if (r < m.outage) {
    start_block(client, true, true, now_ + outage_length(rng_, t_), kOutage, true);
    return;
  }
  r -= m.outage;
  if (r < m.half_open) {
    bool upstream = rng_.chance(500);
    start_block(client, upstream, !upstream, now_ + outage_length(rng_, t_),
                upstream ? kHalfUp : kHalfDown, true);
    return;
  }
  r -= m.half_open;
  if (r < m.reset) {
    if (x.conn == kNone) return;
    Conn& c = conns_[x.conn];
    ++result_.resets;
    trace_.add(now_, client, TraceKind::reset, c.gen);
    // A middlebox reset: both ends get an RST; what was in flight is gone.
    for (uint8_t dir = 0; dir < 2; ++dir) {
      c.pipe[dir].clear();
      send(x.conn, dir, SegmentKind::rst, nullptr, 0);
    }
    return;
  }
  r -= m.reset;
  if (r < m.reboot) {
    reboot(client);
    return;
  }
  r -= m.reboot;
  if (r < m.edge_probe) {
    // An outage whose end lands exactly T-1, T or T+1 ms after the client
    // last heard a byte: held bytes arrive on the very edge of its timeout.
    if (!x.engine || !x.engine->is_up() || up_blocked_[client] || down_blocked_[client]) return;
    uint64_t until = x.last_heard + t_ + rng_.between(0, 2) - 1;
    if (until <= now_) return;
    ++result_.edge_probes;
    trace_.add(now_, client, TraceKind::edge_probe, until);
    start_block(client, true, true, until, kEdge, false);
    return;
  }
  // A reader stall at either end of this client's link.
  uint32_t end = rng_.chance(500) ? client : server_end(client);
  End& y = ends_[end];
  if (!y.engine || y.reader_stalled) return;
  ++result_.reader_stalls;
  y.reader_stalled = true;
  uint64_t until = now_ + rng_.between(t_ / 2, 4 * t_);
  trace_.add(now_, end, TraceKind::reader_stall, until - now_);
  schedule(until, EventKind::reader_resume, end);
}

void World::reboot(uint32_t client) {
  End& x = ends_[client];
  if (!x.engine) return;
  ++result_.reboots;
  trace_.add(now_, client, TraceKind::reboot);
  // The server end may have been timing an outage that its peer's FIN would
  // have ended; a rebooting device sends none. No promise left to check.
  ends_[server_end(client)].detect_pending = false;
  destroy_engine(client);
  x.rebooting = true;
  schedule(now_ + rng_.between(100, 5000), EventKind::client_boot, client);
}

void World::server_restart() {
  if (stopped_) return;
  schedule(now_ + 1 + rng_.exponential(o_.server_restart_every_ms), EventKind::server_restart, 0);
  if (server_down_) return;
  ++result_.server_restarts;
  trace_.add(now_, ~0u, TraceKind::server_restart);
  for (uint32_t c = 0; c < n_; ++c) destroy_engine(server_end(c));
  // Connections still in their handshake die with the process too.
  for (uint32_t i = 0; i < conns_.size(); ++i)
    if (conns_[i].in_use && conns_[i].server_open) close_side(i, true, SegmentKind::fin);
  server_down_ = true;
  schedule(now_ + rng_.between(200, 4000), EventKind::server_up, 0);
}

void World::server_up() {
  if (!server_down_) return;
  server_down_ = false;
  trace_.add(now_, ~0u, TraceKind::server_up);
  for (uint32_t c = 0; c < n_; ++c) {
    create_engine(server_end(c));
    settle(server_end(c));
  }
}

void World::faults_stop() {
  stopped_ = true;
  stopped_at_ = now_;
  trace_.add(now_, ~0u, TraceKind::quiet);
  for (uint32_t c = 0; c < n_; ++c) {
    up_blocked_[c] = down_blocked_[c] = 0;
    kick_pipes(c);
  }
  server_up();
  for (uint32_t e = 0; e < 2 * n_; ++e) {
    End& x = ends_[e];
    x.reader_stalled = false;
    x.detect_pending = false;  // the outage it was timing has just been ended early
    if (x.rebooting) {
      x.rebooting = false;
      create_engine(e);
    }
    if (x.engine) settle(e);
  }
  schedule(now_ + result_.liveness_bound_ms, EventKind::liveness_check, 0);
}

}  // namespace detail
}  // namespace resilink::sim
