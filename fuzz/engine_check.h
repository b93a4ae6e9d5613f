// Invariants of one core::Engine that hold after every step of any driver,
// shared by the single-engine and the back-to-back fuzz targets.
#ifndef RESILINK_FUZZ_ENGINE_CHECK_H
#define RESILINK_FUZZ_ENGINE_CHECK_H

#include <string.h>

#include <set>
#include <string>

#include "fuzz_support.h"
#include "resilink/core/engine.h"
#include "resilink/core/message_id.h"

namespace resilink::fuzz {

inline bool connection_open(core::LinkState s) {
  return s == core::LinkState::await_peer || s == core::LinkState::up;
}

// Records events and checks what can be checked inside them.
class CheckingObserver : public core::EngineObserver {
 public:
  void on_link_up() override { ++ups; }
  void on_link_down(core::OutageReason why, uint32_t) override {
    ++downs;
    last_down = why;
  }
  void on_write_acked(uint32_t ticket) override {
    FUZZ_CHECK(pending_tickets.erase(ticket) == 1, "on_write_acked names a pending qos ticket, once");
    acked.insert(ticket);
  }

  std::set<uint32_t> pending_tickets;  // the harness adds each accepted qos write
  std::set<uint32_t> acked;
  uint32_t ups = 0;
  uint32_t downs = 0;
  core::OutageReason last_down = core::OutageReason::none;
};

class EngineChecker {
 public:
  explicit EngineChecker(const core::EngineBase& engine) : engine_(engine), prev_(engine.stats()) {}

  // Call after every input or command, with the driver's current time (the
  // driver calls handle_timeout(now) whenever time moves, as a real one does).
  void after_step(uint64_t now) {
    using core::LinkState;
    const core::LinkState s = engine_.state();
    FUZZ_CHECK(static_cast<unsigned>(s) <= static_cast<unsigned>(LinkState::closed), "state() is a valid state");
    FUZZ_CHECK(engine_.is_up() == (s == LinkState::up), "is_up() agrees with state()");
    if (engine_.role() == core::Role::server)
      FUZZ_CHECK(s == LinkState::down || s == LinkState::await_peer || s == LinkState::up || s == LinkState::closed,
                 "a server engine uses down/await_peer/up/closed only");
    else
      FUZZ_CHECK(s != LinkState::down, "a client engine never uses down");

    FUZZ_CHECK(engine_.inflight() <= engine_.config().window, "inflight() <= window");
    const uint8_t* tx;
    size_t pending = engine_.tx_pending(&tx);
    FUZZ_CHECK(pending <= RESILINK_TX_BUFFER, "tx_pending() within its buffer");
    FUZZ_CHECK(connection_open(s) || pending == 0, "no bytes wait for a socket that is not open");
    FUZZ_CHECK(engine_.rx_queued() <= RESILINK_RX_QUEUE, "rx_queued() within its queue");
    uint64_t deadline = engine_.next_deadline();
    if (deadline != core::kNoDeadline && deadline < now)
      fprintf(stderr, "%s engine in %s: next_deadline %llu < now %llu (tx_pending %zu)\n",
              engine_.role() == core::Role::client ? "client" : "server", core::link_state_name(s),
              static_cast<unsigned long long>(deadline), static_cast<unsigned long long>(now), pending);
    FUZZ_CHECK(deadline == core::kNoDeadline || deadline >= now,
               "next_deadline() >= now (else the driver would spin) or kNoDeadline");

    const core::EngineStats& st = engine_.stats();
#define RESILINK_MONOTONIC(field) FUZZ_CHECK(st.field >= prev_.field, "stats counter " #field " never decreases")
    RESILINK_MONOTONIC(connects);
    RESILINK_MONOTONIC(outages);
    RESILINK_MONOTONIC(connect_failures);
    RESILINK_MONOTONIC(messages_sent);
    RESILINK_MONOTONIC(messages_acked);
    RESILINK_MONOTONIC(retransmits);
    RESILINK_MONOTONIC(messages_received);
    RESILINK_MONOTONIC(duplicates_discarded);
    RESILINK_MONOTONIC(deferred);
    RESILINK_MONOTONIC(peer_restarts);
    RESILINK_MONOTONIC(acks_sent);
    RESILINK_MONOTONIC(keepalives_sent);
    RESILINK_MONOTONIC(keepalives_received);
    RESILINK_MONOTONIC(nonqos_upgraded);
#undef RESILINK_MONOTONIC
    prev_ = st;
  }

 private:
  const core::EngineBase& engine_;
  core::EngineStats prev_;
};

// A message read by the application: never empty, never a '\n', within the
// payload limit.
inline void check_read_payload(const uint8_t* data, size_t len) {
  FUZZ_CHECK(len > 0, "a message read is never empty");
  FUZZ_CHECK(len <= RESILINK_MAX_PAYLOAD, "a message read fits RESILINK_MAX_PAYLOAD");
  FUZZ_CHECK(memchr(data, '\n', len) == nullptr, "a message read never contains '\\n'");
}

// Parses what an engine sends, per connection, and checks it is the wire
// protocol: the id first (client), then keepalives, ACKs and messages with
// lowercase hex mids, no line over RESILINK_MAX_LINE.
class EmittedStreamCheck {
 public:
  EmittedStreamCheck(core::Role role, std::string client_id) : role_(role), client_id_(std::move(client_id)) {}

  void new_connection() {
    partial_.clear();
    lines_ = 0;
  }
  void take(const uint8_t* data, size_t len) {
    for (size_t i = 0; i < len; ++i) {
      if (data[i] != '\n') {
        partial_.push_back(static_cast<char>(data[i]));
        FUZZ_CHECK(partial_.size() <= RESILINK_MAX_LINE ||
                       (role_ == core::Role::client && lines_ == 0),
                   "an emitted line is within RESILINK_MAX_LINE");
        continue;
      }
      check_line();
      partial_.clear();
      ++lines_;
    }
  }

 private:
  void check_line() {
    if (role_ == core::Role::client && lines_ == 0) {
      FUZZ_CHECK(partial_ == client_id_, "a client's first line on a connection is its id");
      return;
    }
    if (partial_.empty()) return;  // keepalive
    FUZZ_CHECK(partial_.size() >= 2, "an emitted line is a keepalive, an ACK or a message");
    auto lower_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
    FUZZ_CHECK(lower_hex(partial_[0]) && lower_hex(partial_[1]), "emitted mids are two lowercase hex digits");
  }

  core::Role role_;
  std::string client_id_;
  std::string partial_;
  uint32_t lines_ = 0;
};

}  // namespace resilink::fuzz

#endif
