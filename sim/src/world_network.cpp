// The shells' sockets in the simulated network: the client's connect, the
// server's id-line handshake and replace_old routing (server/src/server.cpp),
// and the pipes that carry bytes, FINs and RSTs between them.
#include "resilink/core/client_id.h"
#include "world_impl.h"

namespace resilink::sim {
namespace detail {

uint32_t World::open_conn(uint32_t client) {
  uint32_t index;
  if (!free_conns_.empty()) {
    index = free_conns_.back();
    free_conns_.pop_back();
  } else {
    index = static_cast<uint32_t>(conns_.size());
    conns_.emplace_back();
  }
  Conn& c = conns_[index];
  c.gen = ++conn_gen_;
  c.client = client;
  c.in_use = true;
  c.client_open = c.server_open = true;
  c.attached = false;
  c.rst_sent[0] = c.rst_sent[1] = false;
  c.id_len = 0;
  c.pipe[0].clear();
  c.pipe[1].clear();
  return index;
}

void World::maybe_free(uint32_t index) {
  Conn& c = conns_[index];
  if (!c.in_use || c.client_open || c.server_open) return;
  c.in_use = false;  // nobody left to read anything still in flight
  c.pipe[0].clear();
  c.pipe[1].clear();
  free_conns_.push_back(index);
}

// One side closes its socket; `signal` (FIN or RST) follows its unsent data
// to the peer, or nothing at all (kSilent: a rebooted device).
void World::close_side(uint32_t index, bool server_side, SegmentKind signal) {
  Conn& c = conns_[index];
  bool& open = server_side ? c.server_open : c.client_open;
  if (!open) return;
  open = false;
  uint32_t end = server_side ? server_end(c.client) : c.client;
  if (ends_[end].conn == index) ends_[end].conn = kNone;
  if (signal != kSilent) {
    trace_.add(now_, end, signal == SegmentKind::fin ? TraceKind::fin : TraceKind::rst, c.gen);
    send(index, server_side ? kDown : kUp, signal, nullptr, 0);
  }
  maybe_free(index);
}

void World::send(uint32_t index, uint8_t dir, SegmentKind kind, const uint8_t* data, size_t len) {
  Conn& c = conns_[index];
  Pipe& p = c.pipe[dir];
  uint64_t at = p.push(now_ + delay(), kind, data, len);
  if (kind == SegmentKind::data) trace_.add(now_, dir == kUp ? c.client : server_end(c.client), TraceKind::send, len, at);
  if (p.scheduled_at == Pipe::kNotScheduled && !blocked(c.client, dir)) {
    p.scheduled_at = p.head().deliver_at;
    schedule(p.scheduled_at, EventKind::pipe_deliver, index, c.gen, dir);
  }
}

void World::kick_pipes(uint32_t client) {
  for (uint32_t i = 0; i < conns_.size(); ++i) {
    Conn& c = conns_[i];
    if (!c.in_use || c.client != client) continue;
    for (uint8_t dir = 0; dir < 2; ++dir) {
      Pipe& p = c.pipe[dir];
      if (p.empty() || blocked(client, dir) || p.scheduled_at != Pipe::kNotScheduled) continue;
      p.scheduled_at = p.head().deliver_at < now_ ? now_ : p.head().deliver_at;
      schedule(p.scheduled_at, EventKind::pipe_deliver, i, c.gen, dir);
    }
  }
}

void World::deliver(uint32_t index, uint8_t dir) {
  Conn& c = conns_[index];
  Pipe& p = c.pipe[dir];
  if (p.scheduled_at != now_) return;  // stale: the pipe was cleared or rescheduled
  p.scheduled_at = Pipe::kNotScheduled;
  if (blocked(c.client, dir)) return;  // held in flight; kick_pipes() resumes it
  uint64_t gen = c.gen;
  uint32_t sender = dir == kUp ? c.client : server_end(c.client);
  while (c.in_use && c.gen == gen && !p.empty() && p.head().deliver_at <= now_) {
    Segment s = p.head();
    if (s.kind == SegmentKind::data) {
      // What one read() returns: the whole segment, random pieces, or bytes.
      const uint8_t* data = p.head_bytes();
      size_t left = s.len;
      while (left > 0 && c.in_use && c.gen == gen) {
        size_t piece = chunking_ == 0 ? left : chunking_ == 1 ? 1 : rng_.between(1, left);
        // Copy: the receiver's reaction may append to pipes (not this one, but
        // keep the engine's input independent of pipe storage anyway).
        memcpy(rx_scratch_, data, piece);
        data += piece;
        left -= piece;
        receive(index, dir, rx_scratch_, piece);
      }
    } else {
      receive_close(index, dir, s.kind);
    }
    if (!c.in_use || c.gen != gen) return;
    p.pop();
  }
  if (!p.empty() && p.scheduled_at == Pipe::kNotScheduled && !blocked(c.client, dir)) {
    p.scheduled_at = p.head().deliver_at;
    schedule(p.scheduled_at, EventKind::pipe_deliver, index, c.gen, dir);
  }
  // Delivered bytes free the sender's socket buffer.
  End& x = ends_[sender];
  if (c.in_use && c.gen == gen && x.conn == index && x.engine) settle(sender);
}

void World::receive(uint32_t index, uint8_t dir, const uint8_t* data, size_t len) {
  Conn& c = conns_[index];
  bool to_server = dir == kUp;
  bool open = to_server ? c.server_open : c.client_open;
  if (!open) {
    // Data for a socket that no longer exists: the host answers with a reset.
    uint8_t back = to_server ? kDown : kUp;
    bool sender_open = to_server ? c.client_open : c.server_open;
    if (sender_open && !c.rst_sent[back]) {
      c.rst_sent[back] = true;
      send(index, back, SegmentKind::rst, nullptr, 0);
    }
    return;
  }
  if (to_server && !c.attached) {
    handshake(index, data, len);
    return;
  }
  uint32_t end = to_server ? server_end(c.client) : c.client;
  End& x = ends_[end];
  x.last_heard = now_;
  trace_.add(now_, end, TraceKind::deliver, len, c.gen);
  x.engine->handle_rx(data, len, now_);
  settle(end);
}

void World::receive_close(uint32_t index, uint8_t dir, SegmentKind kind) {
  Conn& c = conns_[index];
  if (dir == kUp) {
    if (!c.server_open) return;
    if (!c.attached) {
      close_side(index, true, SegmentKind::fin);  // closed before sending its id
      return;
    }
    uint32_t end = server_end(c.client);
    trace_.add(now_, end, kind == SegmentKind::fin ? TraceKind::fin : TraceKind::rst, c.gen);
    ends_[end].engine->handle_link_lost(OutageReason::peer_closed, now_);
    settle(end);
    close_side(index, true, SegmentKind::fin);  // engine not open: the shell closes anyway
  } else {
    if (!c.client_open) return;
    trace_.add(now_, c.client, kind == SegmentKind::fin ? TraceKind::fin : TraceKind::rst, c.gen);
    ends_[c.client].engine->handle_link_lost(OutageReason::peer_closed, now_);
    settle(c.client);
    close_side(index, false, SegmentKind::fin);
  }
}

// The server shell's handshake: the first line is the id; then the socket is
// routed to that id's engine, replacing any connection it still holds.
void World::handshake(uint32_t index, const uint8_t* data, size_t len) {
  Conn& c = conns_[index];
  size_t i = 0;
  while (i < len && data[i] != '\n') {
    if (c.id_len == RESILINK_MAX_ID) {
      close_side(index, true, SegmentKind::fin);  // id line too long
      return;
    }
    c.id[c.id_len++] = data[i++];
  }
  if (i == len) return;  // need more
  ++i;                   // the '\n'
  if (core::validate_client_id(c.id, c.id_len) != core::Error::ok) {
    close_side(index, true, SegmentKind::fin);
    return;
  }
  // ids are "dev<client>"
  uint32_t id = 0;
  bool ok = c.id_len > 3 && c.id[0] == 'd' && c.id[1] == 'e' && c.id[2] == 'v';
  for (size_t k = 3; ok && k < c.id_len; ++k) {
    ok = c.id[k] >= '0' && c.id[k] <= '9';
    id = id * 10 + (c.id[k] - '0');
  }
  if (!ok || id != c.client) {
    checker_.report(Violation::corrupt, c.client, now_, "id line does not name its client");
    close_side(index, true, SegmentKind::fin);
    return;
  }
  uint32_t end = server_end(id);
  End& x = ends_[end];
  trace_.add(now_, end, TraceKind::id_line, c.gen);
  if (x.conn != kNone) {
    // replace_old: the old socket is closed before the new one is attached.
    trace_.add(now_, end, TraceKind::replace, conns_[x.conn].gen, c.gen);
    ++result_.replacements;
    close_side(x.conn, true, SegmentKind::fin);
  }
  c.attached = true;
  x.conn = index;
  ++result_.connects;
  x.engine->handle_connected(now_);
  if (i < len) {
    x.last_heard = now_;
    x.engine->handle_rx(data + i, len - i, now_);
  }
  settle(end);
}

void World::start_connect(uint32_t client) {
  End& x = ends_[client];
  x.attempt_pending = true;
  uint64_t token = ++x.attempt_token;
  uint64_t rtt = delay() + delay();
  if (rng_.chance(connect_fail_pm_)) {
    schedule(now_ + rtt, EventKind::connect_refused, client, token);
  } else if (blocked(client, kUp) || blocked(client, kDown)) {
    // No answer: the attempt hangs until the engine's connect timeout.
  } else if (server_down_) {
    schedule(now_ + rtt, EventKind::connect_refused, client, token);
  } else {
    schedule(now_ + rtt, EventKind::connect_done, client, token);
  }
  trace_.add(now_, client, TraceKind::connect, token);
}

void World::connect_done(uint32_t client, uint64_t token, bool refused) {
  End& x = ends_[client];
  if (!x.engine || !x.attempt_pending || x.attempt_token != token) return;
  x.attempt_pending = false;
  if (refused || server_down_) {
    trace_.add(now_, client, TraceKind::connect_fail, token);
    x.engine->handle_connect_failed(now_);
    settle(client);
    return;
  }
  uint32_t index = open_conn(client);
  x.conn = index;
  x.last_heard = now_;
  trace_.add(now_, client, TraceKind::accept, conns_[index].gen);
  schedule(now_ + 2ull * t_, EventKind::handshake_deadline, index, conns_[index].gen);
  x.engine->handle_connected(now_);
  settle(client);
}

}  // namespace detail
}  // namespace resilink::sim
