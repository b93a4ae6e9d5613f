// One seeded world: the run loop, the engine driver and the applications.
// The driver steps mirror client/src/client.cpp (service: handle_timeout, act
// on state, flush) and server/src/connection.cpp (after_engine_call).
#include "world_impl.h"

#include <memory>

namespace resilink::sim {
namespace detail {

void EndObserver::on_link_up() { world->link_up(end); }
void EndObserver::on_link_down(OutageReason why, uint32_t silence_ms) {
  world->link_down(end, why, silence_ms);
}
void EndObserver::on_line_ready() { world->line_ready(end); }
void EndObserver::on_write_acked(uint32_t ticket) { world->write_acked(end, ticket); }
void EndObserver::on_writable() { world->writable(end); }

WorldResult World::run() {
  for (uint32_t e = 0; e < 2 * n_; ++e) create_engine(e);
  for (uint32_t e = 0; e < 2 * n_; ++e) {
    schedule(rng_.below(message_every_ + 1), EventKind::app_generate, e);
    settle(e);
  }
  for (uint32_t c = 0; c < n_; ++c)
    if (o_.fault_every_ms) schedule(rng_.exponential(o_.fault_every_ms), EventKind::fault_next, c);
  if (o_.server_restart_every_ms)
    schedule(rng_.exponential(o_.server_restart_every_ms), EventKind::server_restart, 0);
  schedule(o_.fault_ms, EventKind::faults_stop, 0);

  while (!queue_.empty() && !done_) {
    Event e = queue_.pop();
    now_ = e.at;
    ++result_.events;
    switch (e.kind) {
      case EventKind::engine_timer: {
        End& x = ends_[e.index];
        if (!x.engine || x.armed != e.token) break;
        x.armed = core::kNoDeadline;
        trace_.add(now_, e.index, TraceKind::timer, static_cast<uint64_t>(x.engine->state()));
        x.engine->handle_timeout(now_);
        settle(e.index);
        break;
      }
      case EventKind::pipe_deliver:
        if (e.index < conns_.size() && conns_[e.index].in_use && conns_[e.index].gen == e.token)
          deliver(e.index, e.side);
        break;
      case EventKind::connect_done: connect_done(e.index, e.token, false); break;
      case EventKind::connect_refused: connect_done(e.index, e.token, true); break;
      case EventKind::handshake_deadline: {
        Conn& c = conns_[e.index];
        if (c.in_use && c.gen == e.token && c.server_open && !c.attached) {
          trace_.add(now_, server_end(c.client), TraceKind::handshake_timeout, c.gen);
          ++result_.handshake_timeouts;
          close_side(e.index, true, SegmentKind::fin);
        }
        break;
      }
      case EventKind::app_generate: app_generate(e.index); break;
      case EventKind::fault_next: fault_next(e.index); break;
      case EventKind::fault_end: fault_end(e.index, e.side, e.token); break;
      case EventKind::client_boot:
        if (ends_[e.index].rebooting) {
          ends_[e.index].rebooting = false;
          trace_.add(now_, e.index, TraceKind::boot);
          create_engine(e.index);
          settle(e.index);
        }
        break;
      case EventKind::server_restart: server_restart(); break;
      case EventKind::server_up: server_up(); break;
      case EventKind::detect_check: {
        End& x = ends_[e.index];
        if (x.detect_pending && x.detect_id == e.token) {
          x.detect_pending = false;
          char detail[128];
          std::snprintf(detail, sizeof detail,
                        "outage began at %llu ms; not declared within T + T/4 = %u ms (state %s)",
                        static_cast<unsigned long long>(x.detect_started), t_ + t_ / 4,
                        x.engine ? core::link_state_name(x.engine->state()) : "none");
          checker_.report(Violation::late_detection, e.index, now_, detail);
        }
        break;
      }
      case EventKind::reader_resume:
        if (ends_[e.index].reader_stalled) {
          ends_[e.index].reader_stalled = false;
          settle(e.index);
        }
        break;
      case EventKind::faults_stop: faults_stop(); break;
      case EventKind::liveness_check:
        checker_.finish(now_, true);
        done_ = true;
        break;
    }
    if (checker_.violations().size() > violations_reported_) {
      for (size_t i = violations_reported_; i < checker_.violations().size(); ++i) {
        const ViolationReport& v = checker_.violations()[i];
        trace_.add(now_, v.stream, TraceKind::violation, static_cast<uint64_t>(v.kind));
        bool server = v.stream >= n_;
        char line[512];
        std::snprintf(line, sizeof line,
                      "FAIL seed=%llu kind=%s %s=%u t=%llu.%03llus %s\n  replay: %s --seed %llu --trace\n",
                      static_cast<unsigned long long>(seed_), violation_name(v.kind),
                      server ? "server_end_of_client" : "client", server ? v.stream - n_ : v.stream,
                      static_cast<unsigned long long>(v.at / 1000),
                      static_cast<unsigned long long>(v.at % 1000), v.detail.c_str(),
                      o_.replay.c_str(), static_cast<unsigned long long>(seed_));
        uint32_t client = v.stream < n_ ? v.stream : v.stream - n_;
        result_.failures.push_back(std::string(line) + "  last events of this link:\n" +
                                   trace_.tail(30, client, server_end(client)));
      }
      violations_reported_ = checker_.violations().size();
    }
    if (stopped_ && !done_ && quiescent()) {
      result_.quiesce_ms = now_ - stopped_at_;
      trace_.add(now_, ~0u, TraceKind::quiet, result_.quiesce_ms);
      checker_.finish(now_, false);
      done_ = true;
    }
  }
  // finish() may report after the loop's last look: format those too.
  for (size_t i = violations_reported_; i < checker_.violations().size(); ++i) {
    const ViolationReport& v = checker_.violations()[i];
    char line[512];
    std::snprintf(line, sizeof line, "FAIL seed=%llu kind=%s stream=%u t=%llu ms %s\n  replay: %s --seed %llu --trace\n",
                  static_cast<unsigned long long>(seed_), violation_name(v.kind), v.stream,
                  static_cast<unsigned long long>(v.at), v.detail.c_str(), o_.replay.c_str(),
                  static_cast<unsigned long long>(seed_));
    uint32_t client = v.stream < n_ ? v.stream : v.stream - n_;
        result_.failures.push_back(std::string(line) + "  last events of this link:\n" +
                                   trace_.tail(30, client, server_end(client)));
  }
  result_.sim_ms = now_;
  result_.client_hours = static_cast<double>(n_) * static_cast<double>(o_.fault_ms) / 3600000.0;
  result_.counts = checker_.counts();
  result_.trace_hash = trace_.hash();
  return std::move(result_);
}

bool World::quiescent() const {
  if (checker_.outstanding() != 0) return false;
  for (const End& x : ends_)
    for (size_t i = 0; i < x.queue_count; ++i)
      if (x.queue[(x.queue_head + i) % kAppQueue].cls != MsgClass::nonqos) return false;
  return true;
}

// ---------------------------------------------------------------- driver

void World::settle(uint32_t end) {
  End& x = ends_[end];
  if (!x.engine) return;
  for (int pass = 0; pass < 64; ++pass) {
    x.kick = false;
    app_read(end);
    app_write(end);
    act_on_state(end);
    flush(end);
    act_on_state(end);  // a failed send may have ended the connection
    if (!x.kick) break;
  }
  rearm(end);
}

void World::act_on_state(uint32_t end) {
  End& x = ends_[end];
  Engine& engine = *x.engine;
  if (end < n_) {
    if (engine.state() == LinkState::link_check) engine.handle_link_ready(now_);
    if (x.attempt_pending && engine.state() != LinkState::connecting) {
      x.attempt_pending = false;  // the engine gave up on it (connect timeout)
      ++x.attempt_token;
    }
    if (engine.state() == LinkState::connecting && !x.attempt_pending && x.conn == kNone)
      start_connect(end);
  }
  if (x.conn != kNone && !is_open(engine.state())) close_side(x.conn, end >= n_, SegmentKind::fin);
}

void World::flush(uint32_t end) {
  End& x = ends_[end];
  while (x.conn != kNone && is_open(x.engine->state())) {
    Conn& c = conns_[x.conn];
    uint8_t dir = end < n_ ? kUp : kDown;
    const uint8_t* data;
    size_t n = x.engine->tx_pending(&data);
    if (n == 0) return;
    size_t room = sndbuf_ > c.pipe[dir].in_flight() ? sndbuf_ - c.pipe[dir].in_flight() : 0;
    if (room == 0) return;  // the socket takes nothing until the peer reads
    size_t take = n < room ? n : room;
    if (partial_send_ && take > 1 && rng_.chance(200)) take = rng_.between(1, take);
    if (o_.sabotage == Sabotage::duplicate_line && dir == kUp && take <= RESILINK_TX_BUFFER) {
      // The planted bug: a message line sent again right behind itself as mid 00.
      memcpy(scratch_, data, take);
      size_t out = take;
      size_t start = 0;
      for (size_t i = 0; i < take; ++i) {
        if (data[i] != '\n') continue;
        size_t len = i - start;
        if (len >= 3 && ++sabotage_count_ % 200 == 0) {
          scratch_[out++] = '0';
          scratch_[out++] = '0';
          memcpy(scratch_ + out, data + start + 2, len - 2 + 1);
          out += len - 1;
          break;
        }
        start = i + 1;
      }
      send(x.conn, dir, SegmentKind::data, scratch_, out);
    } else {
      send(x.conn, dir, SegmentKind::data, data, take);
    }
    x.engine->handle_tx_sent(take, now_);
  }
}

void World::rearm(uint32_t end) {
  End& x = ends_[end];
  uint64_t deadline = x.engine ? x.engine->next_deadline() : core::kNoDeadline;
  if (deadline == x.armed) return;
  x.armed = deadline;
  if (deadline != core::kNoDeadline) schedule(deadline < now_ ? now_ : deadline, EventKind::engine_timer, end, deadline);
}

void World::destroy_engine(uint32_t end) {
  End& x = ends_[end];
  if (!x.engine) return;
  // What the application had not read is lost with it.
  uint32_t in = stream_received_by(end);
  const uint8_t* data;
  size_t len;
  while (x.engine->peek_line(&data, &len)) {
    checker_.lost_unread(in, data, len);
    x.engine->pop_line();
  }
  checker_.sender_restarted(end);
  checker_.receiver_restarted(in);
  // A rebooting device sends nothing (its socket just vanishes); a dying server
  // process's sockets are closed by its kernel.
  if (x.conn != kNone) close_side(x.conn, end >= n_, end < n_ ? kSilent : SegmentKind::fin);
  x.engine.reset();
  x.armed = core::kNoDeadline;
  x.attempt_pending = false;
  ++x.attempt_token;
  x.detect_pending = false;
  x.reader_stalled = false;
  x.queue_head = x.queue_count = 0;
}

// ---------------------------------------------------------------- applications

void World::app_read(uint32_t end) {
  End& x = ends_[end];
  if (x.reader_stalled) return;
  const uint8_t* data;
  size_t len;
  uint32_t in = stream_received_by(end);
  while (x.engine->peek_line(&data, &len)) {
    uint64_t conn = x.accept_count ? x.accept_conn[x.accept_head] : 0;
    if (x.accept_count) {
      x.accept_head = (x.accept_head + 1) % RESILINK_RX_QUEUE;
      --x.accept_count;
    }
    trace_.add(now_, end, TraceKind::read, len, conn);
    checker_.delivered(in, data, len, conn, now_);
    x.engine->pop_line();
  }
}

void World::app_write(uint32_t end) {
  End& x = ends_[end];
  Engine& engine = *x.engine;
  while (x.queue_count > 0) {
    if (x.wait_ticket && engine.is_pending(x.wait_ticket)) return;  // write(wait) not returned yet
    x.wait_ticket = 0;
    const QueuedMessage& m = x.queue[x.queue_head];
    bool qos = m.cls != MsgClass::nonqos;
    size_t len = Checker::format_payload(end, m.seq, m.cls, m.pad, scratch_);
    if (m.cls == MsgClass::qos_wait && engine.inflight() > 0) return;
    if (!qos && !engine.is_up()) return;
    if (!engine.can_write(qos, len)) return;
    uint32_t ticket = 0;
    uint32_t n = x.writes_in_epoch;
    uint8_t mid = n == 0 ? 0 : static_cast<uint8_t>((n - 1) % 255 + 1);
    core::Error err = engine.write(scratch_, len, qos, now_, &ticket);
    if (err == core::Error::would_block || err == core::Error::link_down) return;
    if (err != core::Error::ok) {
      checker_.report(Violation::corrupt, end, now_,
                      std::string("engine refused a valid payload: ") + core::error_name(err));
      return;
    }
    ++x.writes_in_epoch;
    trace_.add(now_, end, TraceKind::write, m.seq, mid);
    checker_.written(end, m.seq, mid, ticket);
    if (m.cls == MsgClass::qos_wait) x.wait_ticket = ticket;
    x.queue_head = (x.queue_head + 1) % kAppQueue;
    --x.queue_count;
  }
}

void World::app_generate(uint32_t end) {
  if (stopped_) return;
  schedule(now_ + 1 + rng_.exponential(message_every_), EventKind::app_generate, end);
  End& x = ends_[end];
  if (!x.engine) return;
  size_t burst = rng_.chance(20) ? rng_.between(16, 48) : 1;
  for (size_t i = 0; i < burst && x.queue_count < kAppQueue; ++i) {
    MsgClass cls = MsgClass::qos_window;
    uint64_t r = rng_.below(1000);
    if (r < nonqos_pm_) cls = MsgClass::nonqos;
    else if (r < nonqos_pm_ + wait_pm_) cls = MsgClass::qos_wait;
    // PROTOCOL.md §6a: make the first message after start a qos message.
    if (x.created_in_epoch == 0 && !o_.nonqos_first && cls == MsgClass::nonqos) cls = MsgClass::qos_window;
    if (x.created_in_epoch == 0 && o_.nonqos_first) cls = MsgClass::nonqos;
    ++x.created_in_epoch;
    uint16_t pad = static_cast<uint16_t>(rng_.chance(20) ? rng_.between(100, 900) : rng_.below(40));
    uint32_t seq = checker_.created(end, cls);
    x.queue[(x.queue_head + x.queue_count) % kAppQueue] = QueuedMessage{seq, pad, cls};
    ++x.queue_count;
  }
  settle(end);
}

}  // namespace detail

uint64_t liveness_bound_ms(uint32_t timeout_ms) {
  uint64_t t = timeout_ms;
  return 2 * t + 2 * t + 2 * t + detail::kBackoffMaxMs + 2 * t +
         detail::kAppQueue * 2 * detail::kMaxDelayMs;
}

WorldResult run_world(uint64_t seed, const WorldOptions& options) {
  auto world = std::make_unique<detail::World>(seed, options);
  return world->run();
}

}  // namespace resilink::sim
