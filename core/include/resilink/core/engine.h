// The resilink protocol engine: one end of a resilient link, without I/O.
//
// An Engine never touches a socket or a clock. Its driver (a shell: the Asio
// server, the POSIX client, a simulator, a board's main loop) owns the socket
// and passes the current time, in monotonic milliseconds, into every call.
//
// Methods, by kind:
//  - getters:  state(), is_up(), stats(), next_deadline(), tx_pending(),
//              inflight(), rx_queued(), is_pending(ticket), last_protocol_error()
//  - inputs:   handle_connected(), handle_connect_failed(), handle_link_ready(),
//              handle_rx(), handle_tx_sent(), handle_link_lost(), handle_timeout()
//  - commands: start(), write(), read_line(), close()
//  - events:   delivered synchronously to the EngineObserver given at
//              construction, from inside the call that caused them. An
//              observer must not call the engine's inputs or commands; it
//              records what happened and lets the driver act after the call.
//
// A driver loops:
//  1. now = clock(); engine.handle_timeout(now).
//  2. Act on state(): in link_check run the link-layer hook (rejoin WiFi and
//     check the radio is stable; nothing on Linux), then handle_link_ready();
//     in connecting start a connection if none is under way and report it with
//     handle_connected() or handle_connect_failed(). If the socket is open but
//     the state is neither await_peer nor up, the engine declared an outage
//     (on_link_down told you why): close the socket now.
//  3. Receive what the socket has and pass it to handle_rx(); on EOF or an
//     error call handle_link_lost().
//  4. Send tx_pending() bytes and report the count taken with handle_tx_sent().
//  5. Sleep until the socket is ready or next_deadline(), whichever is first.
// Commands may be called between any two steps.
//
// State machine (client role; a server engine uses down/await_peer/up only):
//
//   state        event                               next         action
//   idle         start()                             link_check
//   link_check   handle_link_ready()                 connecting
//   connecting   handle_connected()                  await_peer   queue "<id>\n\n"
//   connecting   handle_connect_failed()             connect_wait backoff, jittered
//   connecting   connect_timeout_ms pass             connect_wait backoff, jittered
//   connect_wait backoff expires                     connecting
//   await_peer   first line received                 up           on_link_up
//   up           nothing received for timeout        hold_off     on_link_down
//   await_peer   nothing received for 2 x timeout    hold_off     on_link_down
//   await_peer/up peer stopped taking bytes,         hold_off     on_link_down
//                peer closed, protocol error
//   hold_off     hold_off_ms expire                  link_check
//   (server) down       handle_connected()           await_peer   queue "\n"
//   (server) await_peer first line received          up           on_link_up
//   (server) up/await   handle_connected()           await_peer   on_link_down(replaced)
//   (server) outage                                  down         on_link_down
//   any          close()                             closed       on_link_down if open
#ifndef RESILINK_CORE_ENGINE_H
#define RESILINK_CORE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "resilink/core/config.h"
#include "resilink/core/error.h"
#include "resilink/core/line_decoder.h"
#include "resilink/core/message_id.h"

namespace resilink::core {

enum class Role : uint8_t { client, server };

#define RESILINK_STATE_TABLE(X) \
  X(idle)                       \
  X(link_check)                 \
  X(connecting)                 \
  X(connect_wait)               \
  X(await_peer)                 \
  X(up)                         \
  X(hold_off)                   \
  X(down)                       \
  X(closed)

enum class LinkState : uint8_t {
#define RESILINK_X(name) name,
  RESILINK_STATE_TABLE(RESILINK_X)
#undef RESILINK_X
};

const char* link_state_name(LinkState s);

// Checks that a payload can travel as one message: not empty, no '\n', at most
// RESILINK_MAX_PAYLOAD bytes. Engine::write makes the same check; shells call
// it first to report a bad payload at once instead of after waiting for room.
Error validate_payload(const uint8_t* payload, size_t len);

constexpr uint64_t kNoDeadline = ~static_cast<uint64_t>(0);

struct EngineConfig {
  Role role = Role::client;
  // Nothing heard for this long declares an outage; keepalives go out every
  // timeout_ms / 4. Both ends must use the same value.
  uint32_t timeout_ms = 2000;
  // Client role: the id sent on every connect (copied; see client_id.h).
  const char* client_id = nullptr;
  // Client role: pause after an outage before reconnecting, long enough for the
  // server to declare the outage too. 0 means 2 x timeout_ms.
  uint32_t hold_off_ms = 0;
  // Client role: reconnect backoff while the server is unreachable. Each
  // failure doubles the delay up to the cap; the delay used is drawn uniformly
  // from [delay/2, delay] so a fleet does not reconnect in step.
  uint32_t backoff_initial_ms = 250;
  uint32_t backoff_max_ms = 8000;
  // Client role: a connection attempt not completed in this time has failed
  // (with the radio down a TCP connect hangs unanswered). 0 means 2 x timeout.
  uint32_t connect_timeout_ms = 0;
  uint32_t random_seed = 1;
  // qos messages in flight at once, 1..RESILINK_TX_WINDOW.
  uint8_t window = RESILINK_TX_WINDOW;
};

struct EngineStats {
  uint32_t connects = 0;            // links that reached await_peer
  uint32_t outages = 0;             // opened links lost (an application close is not one)
  uint32_t connect_failures = 0;
  uint32_t messages_sent = 0;       // first transmissions, qos and not
  uint32_t messages_acked = 0;      // qos messages acknowledged
  uint32_t retransmits = 0;         // qos retransmissions
  uint32_t messages_received = 0;   // new messages queued for the application
  uint32_t duplicates_discarded = 0;
  uint32_t deferred = 0;            // messages refused (unacked) while rx queue full
  uint32_t peer_restarts = 0;       // mid 0 received that cleared the seen-map
  uint32_t acks_sent = 0;
  uint32_t keepalives_sent = 0;
  uint32_t keepalives_received = 0;
  uint32_t nonqos_upgraded = 0;     // non-qos writes sent with qos (see write())
  OutageReason last_outage = OutageReason::none;
  uint32_t last_silence_ms = 0;     // time since last byte heard, at last outage
};

// Where a protocol error was found in the received stream.
struct ProtocolErrorInfo {
  Error error = Error::ok;
  uint32_t line = 0;        // 1-based line number on that connection
  uint64_t byte_offset = 0; // offset of the bad line's first byte on that connection
};

// Events. Default bodies do nothing; override what you need.
class EngineObserver {
 public:
  virtual void on_link_up() {}
  // The link was declared down (or refused) for `why`. The driver must close
  // the socket. silence_ms is the time since the peer was last heard.
  virtual void on_link_down(OutageReason why, uint32_t silence_ms) {
    (void)why;
    (void)silence_ms;
  }
  virtual void on_line_ready() {}
  virtual void on_write_acked(uint32_t ticket) { (void)ticket; }
  // Room appeared for writes that returned would_block or link_down.
  virtual void on_writable() {}

 protected:
  ~EngineObserver() = default;
};

// The engine's logic and state without its buffers (line buffer, receive
// queue, window, send buffer): the host lends it one block of kBufferBytes
// with attach_buffers() and may take it back with detach_buffers() whenever
// buffers_idle(). A server holding thousands of mostly idle links lends a
// block only while a link has something stored, so an idle link costs the
// state alone (docs/PERFORMANCE.md). Every input and command needs the block
// attached; getters do not. Engine (below) is the same with its own block.
class EngineBase {
 public:
  EngineBase(const EngineConfig& config, EngineObserver* observer);
  EngineBase(const EngineBase&) = delete;
  EngineBase& operator=(const EngineBase&) = delete;

  // ---- getters
  LinkState state() const { return state_; }
  bool is_up() const { return state_ == LinkState::up; }
  Role role() const { return config_.role; }
  const EngineConfig& config() const { return config_; }
  const EngineStats& stats() const { return stats_; }
  // Earliest time handle_timeout() has work to do, or kNoDeadline.
  uint64_t next_deadline() const;
  // Bytes waiting for the socket (*data points inside the engine).
  size_t tx_pending(const uint8_t** data) const {
    *data = tx_;
    return tx_len_;
  }
  size_t inflight() const { return inflight_; }
  size_t rx_queued() const { return rx_count_; }
  // True while a qos write with this ticket is not yet acknowledged.
  bool is_pending(uint32_t ticket) const;
  const ProtocolErrorInfo& last_protocol_error() const { return protocol_error_; }
  // Is there room for a write of this kind now?
  bool can_write(bool qos, size_t len) const;

  // ---- inputs
  Error start(uint64_t now);
  Error handle_link_ready(uint64_t now);
  Error handle_connected(uint64_t now);
  Error handle_connect_failed(uint64_t now);
  void handle_rx(const uint8_t* data, size_t len, uint64_t now);
  void handle_tx_sent(size_t count, uint64_t now);
  void handle_link_lost(OutageReason why, uint64_t now);
  void handle_timeout(uint64_t now);

  // ---- commands
  // Queues a message. qos: kept until acknowledged, retransmitted, completes
  // with on_write_acked(*ticket); allowed while the link is down. Without
  // qos: sent once, only while the link is up. Returns would_block when the
  // window or the send buffer is full, link_down for non-qos during an outage.
  // Once 100 mids have gone out since the newest one the peer acknowledged,
  // a non-qos message is sent as a qos one (counted in nonqos_upgraded): the
  // peer's seen-map can only follow a sender that stays within 128 mids of
  // what it is known to have received (docs/PROTOCOL.md §8g).
  Error write(const uint8_t* payload, size_t len, bool qos, uint64_t now,
              uint32_t* ticket = nullptr);
  // Copies the oldest received payload into dst (not NUL-terminated). Returns
  // false if none is queued; a payload longer than cap stays queued.
  bool read_line(uint8_t* dst, size_t cap, size_t* len);
  // Zero-copy alternative: peek the oldest payload, then pop it.
  bool peek_line(const uint8_t** data, size_t* len) const;
  void pop_line();
  void close(uint64_t now);

  // ---- buffers
  // block: kBufferBytes, aligned to 8; its contents need not be kept.
  void attach_buffers(uint8_t* block);
  bool has_buffers() const { return tx_ != nullptr; }
  // Nothing is stored in the buffers: no partial line, queued message,
  // message in the window or byte waiting for the socket.
  bool buffers_idle() const {
    return rx_count_ == 0 && window_count_ == 0 && tx_len_ == 0 && !decoder_.mid_line();
  }
  // Returns the block; only when buffers_idle().
  uint8_t* detach_buffers();

 private:
  static constexpr size_t kMaxPayload = RESILINK_MAX_PAYLOAD;

  struct Slot {
    uint32_t ticket;
    uint64_t sent_at;
    uint16_t len;
    uint8_t mid;
    bool sent;       // transmitted on the current connection
    bool ever_sent;  // transmitted at least once (later sends are retransmits)
    bool acked;
    uint8_t payload[kMaxPayload];
  };
  struct RxEntry {
    uint16_t len;
    uint8_t payload[kMaxPayload];
  };

 public:
  static constexpr size_t kBufferBytes = sizeof(Slot) * RESILINK_TX_WINDOW +
                                         sizeof(RxEntry) * RESILINK_RX_QUEUE + RESILINK_MAX_LINE +
                                         RESILINK_TX_BUFFER;

 private:

  bool connection_open() const {
    return state_ == LinkState::await_peer || state_ == LinkState::up;
  }
  void declare_down(OutageReason why, uint64_t now);
  void open_connection(uint64_t now);
  void handle_line(const uint8_t* line, size_t len, uint64_t now);
  void handle_ack(uint8_t mid);
  void handle_message(uint8_t mid, const uint8_t* payload, size_t len, uint64_t now);
  void pass_block(uint8_t from, uint64_t now);
  void protocol_error(Error e, uint64_t now);
  void pump_tx(uint64_t now);
  bool queue_bytes(const uint8_t* a, size_t alen, const uint8_t* b, size_t blen, uint64_t now);
  bool queue_message(uint8_t mid, const uint8_t* payload, size_t len, uint64_t now);
  Slot& slot_at(size_t i) { return window_[(window_head_ + i) % RESILINK_TX_WINDOW]; }
  const Slot& slot_at(size_t i) const { return window_[(window_head_ + i) % RESILINK_TX_WINDOW]; }
  uint64_t read_deadline() const;
  uint32_t next_backoff();
  uint32_t random();

  // Scalars first, the buffers last: small field offsets keep the code small
  // on Thumb-1 (Cortex-M0+), whose loads and stores reach 124 bytes at most.
  LinkState state_ = LinkState::idle;
  EngineObserver* observer_;

  // send side
  size_t window_head_ = 0;
  size_t window_count_ = 0;  // slots in use (acked slots leave from the head)
  size_t inflight_ = 0;      // slots not yet acknowledged
  size_t tx_len_ = 0;
  uint32_t next_ticket_ = 1;
  MidSequence mids_;
  uint8_t acked_mid_ = 0;  // the newest mid the peer acknowledged (0: none yet)

  // receive side
  size_t rx_head_ = 0;
  size_t rx_count_ = 0;
  bool mid0_accepted_on_connection_ = false;
  // The oldest message refused (rx queue full, or behind a refused one) and
  // not taken since: later mids are refused until it comes, so qos order
  // holds. refused_ has a bit per mid refused on this connection and not
  // taken; when the block is taken or lapses it passes to the next of them.
  int16_t blocked_mid_ = -1;
  uint16_t ack_count_ = 0;
  uint64_t block_lapses_at_ = 0;

  // timing
  uint64_t connected_at_ = 0;
  uint64_t last_rx_at_ = 0;
  bool heard_since_connect_ = false;
  uint64_t last_queued_at_ = 0;
  uint64_t tx_progress_at_ = 0;
  uint64_t hold_until_ = 0;
  uint64_t connect_at_ = 0;
  uint32_t backoff_ms_ = 0;
  uint32_t rng_;

  EngineConfig config_;
  EngineStats stats_;
  SeenMap seen_;
  uint8_t refused_[32] = {};
  uint8_t ack_pending_[32] = {};
  ProtocolErrorInfo protocol_error_;
  uint8_t client_id_len_ = 0;
  uint8_t client_id_[RESILINK_MAX_ID];

  // The lent block (attach_buffers), or null.
  Slot* window_ = nullptr;
  RxEntry* rx_ = nullptr;
  uint8_t* tx_ = nullptr;
  LineDecoder decoder_{nullptr, RESILINK_MAX_LINE};
};

// An engine with its own buffers, for a host that keeps them for the
// engine's lifetime (a microcontroller, the POSIX client, the simulator).
class Engine final : public EngineBase {
 public:
  Engine(const EngineConfig& config, EngineObserver* observer) : EngineBase(config, observer) {
    attach_buffers(block_);
  }

 private:
  alignas(8) uint8_t block_[kBufferBytes];
};

}  // namespace resilink::core

#endif
