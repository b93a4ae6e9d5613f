#include "resilink/core/engine.h"

#include <string.h>

#include "resilink/core/client_id.h"

namespace resilink::core {

namespace {
constexpr uint8_t kNewline = '\n';
// qos messages in flight span fewer mids than this (sender side), so the
// receiver can tell older from newer within it (8-bit mids wrap at 256).
constexpr unsigned kMidSpan = 100;
// A new mid is never this far past the newest mid the peer acknowledged: the
// peer's seen-map follows the sender over gaps (lost mids) shorter than 128.
constexpr unsigned kMidReach = 127;

uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
}  // namespace

const char* link_state_name(LinkState s) {
  static const char* const names[] = {
#define RESILINK_X(name) #name,
      RESILINK_STATE_TABLE(RESILINK_X)
#undef RESILINK_X
  };
  unsigned i = static_cast<unsigned>(s);
  return i < sizeof(names) / sizeof(names[0]) ? names[i] : "unknown_state";
}

Error validate_payload(const uint8_t* payload, size_t len) {
  if (len == 0) return Error::empty_payload;
  if (len > RESILINK_MAX_PAYLOAD) return Error::payload_too_long;
  if (memchr(payload, '\n', len)) return Error::payload_has_newline;
  return Error::ok;
}

EngineBase::EngineBase(const EngineConfig& config, EngineObserver* observer)
    : observer_(observer), rng_(config.random_seed ? config.random_seed : 1), config_(config) {
  config_.client_id = nullptr;  // copied below; never keep the caller's pointer
  if (config_.timeout_ms < 8) config_.timeout_ms = 8;
  if (config_.window < 1) config_.window = 1;
  if (config_.window > RESILINK_TX_WINDOW) config_.window = RESILINK_TX_WINDOW;
  if (config_.hold_off_ms == 0) config_.hold_off_ms = 2 * config_.timeout_ms;
  if (config_.connect_timeout_ms == 0) config_.connect_timeout_ms = 2 * config_.timeout_ms;
  if (config_.backoff_initial_ms == 0) config_.backoff_initial_ms = 1;
  if (config_.backoff_max_ms < config_.backoff_initial_ms)
    config_.backoff_max_ms = config_.backoff_initial_ms;
  if (config.role == Role::client && config.client_id) {
    size_t len = strlen(config.client_id);
    if (validate_client_id(reinterpret_cast<const uint8_t*>(config.client_id), len) == Error::ok) {
      memcpy(client_id_, config.client_id, len);
      client_id_len_ = static_cast<uint8_t>(len);
    }
  }
  if (config_.role == Role::server) state_ = LinkState::down;
}

// ---------------------------------------------------------------- lifecycle

Error EngineBase::start(uint64_t now) {
  (void)now;
  if (config_.role != Role::client) return Error::wrong_role;
  if (client_id_len_ == 0) return Error::bad_config;
  if (state_ != LinkState::idle) return Error::wrong_state;
  state_ = LinkState::link_check;
  return Error::ok;
}

Error EngineBase::handle_link_ready(uint64_t now) {
  if (state_ != LinkState::link_check) return Error::wrong_state;
  state_ = LinkState::connecting;
  connect_at_ = now;
  return Error::ok;
}

Error EngineBase::handle_connected(uint64_t now) {
  if (config_.role == Role::client) {
    if (state_ != LinkState::connecting) return Error::wrong_state;
  } else {
    if (state_ == LinkState::closed) return Error::closed;
    if (connection_open()) declare_down(OutageReason::replaced, now);
  }
  open_connection(now);
  return Error::ok;
}

Error EngineBase::handle_connect_failed(uint64_t now) {
  if (state_ != LinkState::connecting) return Error::wrong_state;
  ++stats_.connect_failures;
  state_ = LinkState::connect_wait;
  connect_at_ = now + next_backoff();
  return Error::ok;
}

void EngineBase::open_connection(uint64_t now) {
  state_ = LinkState::await_peer;
  ++stats_.connects;
  connected_at_ = now;
  last_rx_at_ = now;
  heard_since_connect_ = false;
  tx_progress_at_ = now;
  mid0_accepted_on_connection_ = false;
  blocked_mid_ = -1;
  memset(refused_, 0, sizeof refused_);  // the sender resends in order on a new connection
  decoder_.reset();
  protocol_error_ = ProtocolErrorInfo{};
  // Everything unacknowledged goes again, in order, on the new connection.
  for (size_t i = 0; i < window_count_; ++i) slot_at(i).sent = false;
  if (config_.role == Role::client) {
    // The id, then a keepalive at once so the server hears from us without
    // waiting a keepalive interval and may start sending.
    queue_bytes(client_id_, client_id_len_, &kNewline, 1, now);
    queue_bytes(&kNewline, 1, nullptr, 0, now);
  } else {
    // Keepalive now: a client may send data once it has heard from us.
    queue_bytes(&kNewline, 1, nullptr, 0, now);
  }
  ++stats_.keepalives_sent;
}

void EngineBase::declare_down(OutageReason why, uint64_t now) {
  if (!connection_open()) return;
  uint32_t silence = static_cast<uint32_t>(now - last_rx_at_);
  if (why != OutageReason::closed_by_app) {
    ++stats_.outages;
    stats_.last_outage = why;
    stats_.last_silence_ms = silence;
  }
  // Bytes not yet taken by the socket belong to the dead connection; messages
  // stay in the window and are sent again after the reconnect.
  tx_len_ = 0;
  ack_count_ = 0;
  memset(ack_pending_, 0, sizeof ack_pending_);
  decoder_.reset();
  if (why == OutageReason::closed_by_app) {
    state_ = LinkState::closed;
  } else if (config_.role == Role::client) {
    state_ = LinkState::hold_off;
    hold_until_ = now + config_.hold_off_ms;
  } else {
    state_ = LinkState::down;
  }
  if (observer_) observer_->on_link_down(why, silence);
}

void EngineBase::handle_link_lost(OutageReason why, uint64_t now) {
  if (state_ == LinkState::connecting && why != OutageReason::closed_by_app) {
    handle_connect_failed(now);
    return;
  }
  declare_down(why, now);
}

void EngineBase::close(uint64_t now) {
  if (connection_open()) {
    declare_down(OutageReason::closed_by_app, now);
  }
  state_ = LinkState::closed;
}

// ---------------------------------------------------------------- timing

uint64_t EngineBase::read_deadline() const {
  // The first read after a connect gets twice the timeout: the peer may be slow
  // to start (micropython-iot does the same).
  uint64_t allowance = heard_since_connect_ ? config_.timeout_ms : 2ull * config_.timeout_ms;
  return last_rx_at_ + allowance;
}

uint64_t EngineBase::next_deadline() const {
  switch (state_) {
    case LinkState::hold_off:
      return hold_until_;
    case LinkState::connect_wait:
      return connect_at_;
    case LinkState::connecting:
      return connect_at_ + config_.connect_timeout_ms;
    case LinkState::await_peer:
    case LinkState::up: {
      uint64_t deadline = read_deadline();
      if (tx_len_ > 0) deadline = min_u64(deadline, tx_progress_at_ + config_.timeout_ms);
      // A full buffer has no room for a keepalive (the send-stall deadline
      // above covers it); its due time would lie in the past and spin the driver.
      if (tx_len_ < RESILINK_TX_BUFFER)
        deadline = min_u64(deadline, last_queued_at_ + config_.timeout_ms / 4);
      if (state_ == LinkState::up) {
        for (size_t i = 0; i < window_count_; ++i) {
          const Slot& s = slot_at(i);
          if (!s.acked && s.sent) {
            deadline = min_u64(deadline, s.sent_at + config_.timeout_ms);
            break;  // the oldest sent slot is due first
          }
        }
        if (blocked_mid_ >= 0) deadline = min_u64(deadline, block_lapses_at_);
      }
      return deadline;
    }
    default:
      return kNoDeadline;
  }
}

void EngineBase::handle_timeout(uint64_t now) {
  switch (state_) {
    case LinkState::hold_off:
      if (now >= hold_until_) state_ = LinkState::link_check;
      return;
    case LinkState::connect_wait:
      if (now >= connect_at_) {
        state_ = LinkState::connecting;
        connect_at_ = now;  // the attempt starts now, even if the driver woke late
      }
      return;
    case LinkState::connecting:
      if (now >= connect_at_ + config_.connect_timeout_ms) handle_connect_failed(now);
      return;
    case LinkState::await_peer:
    case LinkState::up:
      break;
    default:
      return;
  }
  if (now >= read_deadline()) {
    declare_down(OutageReason::read_timeout, now);
    return;
  }
  if (tx_len_ > 0 && now >= tx_progress_at_ + config_.timeout_ms) {
    declare_down(OutageReason::send_stalled, now);
    return;
  }
  if (state_ == LinkState::up) {
    // No ACK within the timeout on a live connection: the receiver refused the
    // message (its queue was full). Resend every unacknowledged message, oldest
    // first, so the receiver sees them in order again.
    for (size_t i = 0; i < window_count_; ++i) {
      Slot& s = slot_at(i);
      if (s.acked || !s.sent) continue;
      if (now >= s.sent_at + config_.timeout_ms) {
        for (size_t j = i; j < window_count_; ++j) slot_at(j).sent = false;
      }
      break;
    }
    if (blocked_mid_ >= 0 && now >= block_lapses_at_) {
      // Not seen for 2T: a non-qos message, never resent. The block passes
      // to the oldest message refused behind it, which may still be coming.
      uint8_t lapsed = static_cast<uint8_t>(blocked_mid_);
      refused_[lapsed >> 3] = static_cast<uint8_t>(refused_[lapsed >> 3] & ~(1u << (lapsed & 7)));
      pass_block(lapsed, now);
    }
  }
  pump_tx(now);
}

uint32_t EngineBase::random() {
  // xorshift32: tiny, seedable, good enough for jitter.
  uint32_t x = rng_;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  rng_ = x;
  return x;
}

uint32_t EngineBase::next_backoff() {
  backoff_ms_ = backoff_ms_ == 0 ? config_.backoff_initial_ms : backoff_ms_ * 2;
  if (backoff_ms_ > config_.backoff_max_ms) backoff_ms_ = config_.backoff_max_ms;
  uint32_t half = backoff_ms_ / 2;
  return half + random() % (backoff_ms_ - half + 1);
}

// ---------------------------------------------------------------- receive

void EngineBase::handle_rx(const uint8_t* data, size_t len, uint64_t now) {
  if (!connection_open() || len == 0) return;
  last_rx_at_ = now;
  while (len > 0 && connection_open()) {
    LineDecoder::Result r = decoder_.feed(data, len);
    data += r.consumed;
    len -= r.consumed;
    if (r.status == LineDecoder::Status::too_long) {
      protocol_error(Error::line_too_long, now);
      return;
    }
    if (r.status == LineDecoder::Status::line) handle_line(decoder_.line(), decoder_.length(), now);
  }
  pump_tx(now);
}

void EngineBase::protocol_error(Error e, uint64_t now) {
  protocol_error_.error = e;
  protocol_error_.line = decoder_.lines_completed() + (e == Error::line_too_long ? 1 : 0);
  protocol_error_.byte_offset = decoder_.line_start();
  declare_down(OutageReason::protocol_error, now);
}

void EngineBase::handle_line(const uint8_t* line, size_t len, uint64_t now) {
  heard_since_connect_ = true;
  if (state_ == LinkState::await_peer) {
    state_ = LinkState::up;
    backoff_ms_ = 0;
    if (observer_) observer_->on_link_up();
    if (!connection_open()) return;
  }
  if (len == 0) {
    ++stats_.keepalives_received;
    return;
  }
  if (len == 1) {
    protocol_error(Error::malformed_line, now);
    return;
  }
  uint8_t mid;
  if (!parse_mid(line, &mid)) {
    protocol_error(Error::bad_message_id, now);
    return;
  }
  if (len == 2) {
    handle_ack(mid);
  } else {
    handle_message(mid, line + 2, len - 2, now);
  }
}

void EngineBase::handle_ack(uint8_t mid) {
  bool freed = false;
  if (mid_distance(acked_mid_, mid) <= mid_distance(acked_mid_, mids_.peek())) acked_mid_ = mid;
  for (size_t i = 0; i < window_count_; ++i) {
    Slot& s = slot_at(i);
    if (s.acked || s.mid != mid) continue;
    s.acked = true;
    --inflight_;
    ++stats_.messages_acked;
    if (observer_) observer_->on_write_acked(s.ticket);
    break;
  }
  while (window_count_ > 0 && slot_at(0).acked) {
    window_head_ = (window_head_ + 1) % RESILINK_TX_WINDOW;
    --window_count_;
    freed = true;
  }
  // An ACK for no message in flight is a late ACK for a retransmission or a
  // non-qos message: nothing to do.
  if (freed && observer_) observer_->on_writable();
}

void EngineBase::handle_message(uint8_t mid, const uint8_t* payload, size_t len, uint64_t now) {
  bool restart = false;
  if (mid == 0) {
    // mid 0 is the peer's first message after a restart. A second mid 0 on the
    // same connection can only be a retransmission, so it is a duplicate. On a
    // new connection v1 cannot tell the two apart (see docs/PROTOCOL.md).
    restart = !(mid0_accepted_on_connection_ && seen_.contains(0));
  }
  bool duplicate = !restart && seen_.contains(mid);
  if (duplicate) {
    ++stats_.duplicates_discarded;
  } else {
    bool full = rx_count_ == RESILINK_RX_QUEUE;
    // A sender keeps its qos messages in flight within kMidSpan mids of its
    // next one (can_write), so a refused mid that far behind this one was a
    // non-qos message, never to be resent: forget it, before the mids wrap
    // around into its range and make "older" and "newer" ambiguous.
    while (blocked_mid_ >= 0) {
      unsigned ahead = mid_distance(static_cast<uint8_t>(blocked_mid_), mid);
      if (ahead < kMidSpan || ahead > 256 - kMidSpan) break;
      uint8_t stale = static_cast<uint8_t>(blocked_mid_);
      refused_[stale >> 3] = static_cast<uint8_t>(refused_[stale >> 3] & ~(1u << (stale & 7)));
      pass_block(stale, now);
    }
    // A mid sent before the blocked one is not behind it: after a lapsed block
    // the first mid refused again can be newer than one refused earlier and
    // still being resent, and that older one must not be overtaken.
    bool older_than_blocked =
        blocked_mid_ >= 0 &&
        mid_distance(mid, static_cast<uint8_t>(blocked_mid_)) - 1 < kMidSpan - 1;  // 1..kMidSpan-1 ahead
    bool behind_refused = blocked_mid_ >= 0 && blocked_mid_ != mid && !older_than_blocked;
    if (full || behind_refused) {
      // Refuse without ACK: the sender retransmits it. Later messages are
      // refused until this one is taken, so order is kept.
      refused_[mid >> 3] = static_cast<uint8_t>(refused_[mid >> 3] | (1u << (mid & 7)));
      if (blocked_mid_ < 0 || older_than_blocked) blocked_mid_ = mid;
      seen_.advance(mid);  // refused, but the sender's mids have moved on
      // The block lapses 2 x timeout after the refused message was last seen
      // (a non-qos message is never resent), never while it is still coming.
      if (blocked_mid_ == mid) block_lapses_at_ = now + 2ull * config_.timeout_ms;
      ++stats_.deferred;
      return;
    }
    if (restart) {
      seen_.clear();
      ++stats_.peer_restarts;
      mid0_accepted_on_connection_ = true;
    }
    seen_.accept(mid);
    refused_[mid >> 3] = static_cast<uint8_t>(refused_[mid >> 3] & ~(1u << (mid & 7)));
    if (blocked_mid_ == mid) pass_block(mid, now);
    RxEntry& e = rx_[(rx_head_ + rx_count_) % RESILINK_RX_QUEUE];
    memcpy(e.payload, payload, len);
    e.len = static_cast<uint16_t>(len);
    ++rx_count_;
    ++stats_.messages_received;
  }
  if ((ack_pending_[mid >> 3] & (1u << (mid & 7))) == 0) {
    ack_pending_[mid >> 3] = static_cast<uint8_t>(ack_pending_[mid >> 3] | (1u << (mid & 7)));
    ++ack_count_;
  }
  if (!duplicate && observer_) observer_->on_line_ready();
}

void EngineBase::pass_block(uint8_t from, uint64_t now) {
  // The oldest mid refused after `from` (1..127 ahead) and not taken since.
  blocked_mid_ = -1;
  for (unsigned step = 1; step < 128; ++step) {
    uint8_t mid = static_cast<uint8_t>(from + step);
    if (refused_[mid >> 3] & (1u << (mid & 7))) {
      blocked_mid_ = mid;
      // A qos message refused before now is resent within T of its last
      // send; 1.5T leaves room for the trip. A non-qos one lapses then.
      block_lapses_at_ = now + config_.timeout_ms + config_.timeout_ms / 2;
      return;
    }
  }
}

bool EngineBase::peek_line(const uint8_t** data, size_t* len) const {
  if (rx_count_ == 0) return false;
  *data = rx_[rx_head_].payload;
  *len = rx_[rx_head_].len;
  return true;
}

void EngineBase::pop_line() {
  if (rx_count_ == 0) return;
  rx_head_ = (rx_head_ + 1) % RESILINK_RX_QUEUE;
  --rx_count_;
}

bool EngineBase::read_line(uint8_t* dst, size_t cap, size_t* len) {
  const uint8_t* data;
  size_t n;
  if (!peek_line(&data, &n)) return false;
  *len = n;
  if (n > cap) return false;
  memcpy(dst, data, n);
  pop_line();
  return true;
}

// ---------------------------------------------------------------- send

bool EngineBase::queue_bytes(const uint8_t* a, size_t alen, const uint8_t* b, size_t blen,
                         uint64_t now) {
  if (alen + blen > RESILINK_TX_BUFFER - tx_len_) return false;
  if (tx_len_ == 0) tx_progress_at_ = now;
  memcpy(tx_ + tx_len_, a, alen);
  if (blen) memcpy(tx_ + tx_len_ + alen, b, blen);
  tx_len_ += alen + blen;
  last_queued_at_ = now;
  return true;
}

bool EngineBase::queue_message(uint8_t mid, const uint8_t* payload, size_t len, uint64_t now) {
  if (len + 3 > RESILINK_TX_BUFFER - tx_len_) return false;
  uint8_t hex[2];
  format_mid(mid, hex);
  queue_bytes(hex, 2, payload, len, now);
  queue_bytes(&kNewline, 1, nullptr, 0, now);
  return true;
}

void EngineBase::pump_tx(uint64_t now) {
  if (!connection_open()) return;
  // ACKs first: they are small and free the peer's window.
  for (unsigned mid = 0; ack_count_ > 0 && mid < 256; ++mid) {
    if (ack_pending_[mid >> 3] == 0) {  // skip a byte of mids at a time
      mid |= 7;
      continue;
    }
    if ((ack_pending_[mid >> 3] & (1u << (mid & 7))) == 0) continue;
    uint8_t ack[3];
    format_mid(static_cast<uint8_t>(mid), ack);
    ack[2] = kNewline;
    if (!queue_bytes(ack, 3, nullptr, 0, now)) break;
    ack_pending_[mid >> 3] = static_cast<uint8_t>(ack_pending_[mid >> 3] & ~(1u << (mid & 7)));
    --ack_count_;
    ++stats_.acks_sent;
  }
  if (state_ == LinkState::up) {
    for (size_t i = 0; i < window_count_; ++i) {
      Slot& s = slot_at(i);
      if (s.acked || s.sent) continue;
      if (!queue_message(s.mid, s.payload, s.len, now)) break;
      if (s.ever_sent) ++stats_.retransmits;
      else ++stats_.messages_sent;
      s.sent = true;
      s.ever_sent = true;
      s.sent_at = now;
    }
  }
  if (now >= last_queued_at_ + config_.timeout_ms / 4) {
    if (queue_bytes(&kNewline, 1, nullptr, 0, now)) ++stats_.keepalives_sent;
  }
}

void EngineBase::handle_tx_sent(size_t count, uint64_t now) {
  if (count == 0) return;
  if (count > tx_len_) count = tx_len_;
  memmove(tx_, tx_ + count, tx_len_ - count);
  tx_len_ -= count;
  tx_progress_at_ = now;
  pump_tx(now);
  if (observer_ && state_ == LinkState::up) observer_->on_writable();
}

bool EngineBase::can_write(bool qos, size_t len) const {
  if (state_ == LinkState::closed) return false;
  if (len > kMaxPayload) return false;
  // Keep the span of mids in use well inside the receiver's 128-id memory, so
  // that a new mid never equals one still in flight.
  if (window_count_ > 0 && mid_distance(slot_at(0).mid, mids_.peek()) >= kMidSpan) return false;
  unsigned unconfirmed = mid_distance(acked_mid_, mids_.peek());
  if (unconfirmed >= kMidReach) return false;
  if (unconfirmed >= kMidSpan) qos = true;  // write() sends it with qos
  if (qos) return inflight_ < config_.window && window_count_ < RESILINK_TX_WINDOW;
  if (state_ != LinkState::up) return false;
  for (size_t i = 0; i < window_count_; ++i)
    if (!slot_at(i).acked && !slot_at(i).sent) return false;  // keep order behind qos
  return len + 3 <= RESILINK_TX_BUFFER - tx_len_;
}

Error EngineBase::write(const uint8_t* payload, size_t len, bool qos, uint64_t now, uint32_t* ticket) {
  if (state_ == LinkState::closed) return Error::closed;
  if (Error e = validate_payload(payload, len); e != Error::ok) return e;
  if (!qos && state_ != LinkState::up) return Error::link_down;
  if (!can_write(qos, len)) return Error::would_block;
  if (!qos && mid_distance(acked_mid_, mids_.peek()) >= kMidSpan) {
    // The peer has acknowledged none of the last 100 mids (it refused them, or
    // they were lost with a connection): this one is resent until it is, so
    // the mids never run 128 past what the peer has seen.
    qos = true;
    ++stats_.nonqos_upgraded;
  }
  uint8_t mid = mids_.take();
  uint32_t t = next_ticket_++;
  if (ticket) *ticket = t;
  if (!qos) {
    queue_message(mid, payload, len, now);
    ++stats_.messages_sent;
    return Error::ok;
  }
  Slot& s = slot_at(window_count_);
  s.ticket = t;
  s.sent_at = 0;
  s.ever_sent = false;
  s.len = static_cast<uint16_t>(len);
  s.mid = mid;
  s.sent = false;
  s.acked = false;
  memcpy(s.payload, payload, len);
  ++window_count_;
  ++inflight_;
  pump_tx(now);
  return Error::ok;
}

void EngineBase::attach_buffers(uint8_t* block) {
  window_ = reinterpret_cast<Slot*>(block);
  rx_ = reinterpret_cast<RxEntry*>(block + sizeof(Slot) * RESILINK_TX_WINDOW);
  uint8_t* line = block + sizeof(Slot) * RESILINK_TX_WINDOW + sizeof(RxEntry) * RESILINK_RX_QUEUE;
  decoder_.set_buffer(line);
  tx_ = line + RESILINK_MAX_LINE;
}

uint8_t* EngineBase::detach_buffers() {
  uint8_t* block = reinterpret_cast<uint8_t*>(window_);
  window_ = nullptr;
  rx_ = nullptr;
  tx_ = nullptr;
  decoder_.set_buffer(nullptr);
  return block;
}

bool EngineBase::is_pending(uint32_t ticket) const {
  for (size_t i = 0; i < window_count_; ++i) {
    const Slot& s = slot_at(i);
    if (s.ticket == ticket) return !s.acked;
  }
  return false;
}

}  // namespace resilink::core
