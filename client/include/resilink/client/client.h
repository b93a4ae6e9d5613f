// The POSIX client shell: one resilient link to a server over a non-blocking
// TCP socket, driven by poll(2).
//
// The shell owns the socket and the clock and nothing of the protocol: when to
// connect, back off, hold off, send keepalives, retransmit or declare an
// outage is decided by the core::Engine it drives (see core/engine.h for the
// driver loop this class follows). It uses only socket, connect, send, recv,
// poll, getaddrinfo, getsockopt/setsockopt, fcntl and close, so the same code
// serves lwIP's BSD sockets on ESP-IDF.
//
// Not thread-safe: one thread calls everything, including the callbacks,
// which run from inside run_once() (never from inside an engine call, so they
// may call back into the Client).
//
//   resilink::Client client({.id = "sensor-1", .host = "10.0.0.2", .port = 8123});
//   client.start();
//   client.write("hello");                      // qos: in order, exactly once
//   if (auto line = client.readline(std::chrono::seconds(5))) ...
#ifndef RESILINK_CLIENT_CLIENT_H
#define RESILINK_CLIENT_CLIENT_H

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "resilink/client/error.h"
#include "resilink/core/engine.h"
#include "resilink/write_options.h"

namespace spdlog {
class logger;
}

namespace resilink {

struct ClientOptions {
  std::string id;                 // 1..RESILINK_MAX_ID printable ASCII bytes, no spaces
  std::string host = "127.0.0.1"; // name or address, resolved on every connect
  uint16_t port = 0;
  uint32_t timeout_ms = 2000;     // outage timeout; the server must use the same
  uint8_t window = RESILINK_TX_WINDOW;  // qos messages in flight at once
  // Seed of the engine's backoff jitter. 0 derives one from the id and the
  // clock, so a fleet started together does not reconnect in step.
  uint32_t random_seed = 0;
  // Passed to the engine unchanged; 0 / the defaults are the engine's.
  uint32_t hold_off_ms = 0;
  uint32_t backoff_initial_ms = 250;
  uint32_t backoff_max_ms = 8000;
  uint32_t connect_timeout_ms = 0;  // 0: the engine's (2 x timeout_ms)
  // Called each time the engine is in link_check, before it connects again:
  // on a board, rejoin WiFi and wait until the radio is stable. May block.
  // Empty (the Linux default) does nothing.
  std::function<void()> link_check;
  // Called when the link comes up (true) or goes down (false).
  std::function<void(bool up)> on_status;
  // Where the log lines go; empty means a shared stderr logger "resilink.client".
  std::shared_ptr<spdlog::logger> logger;
};

// When the link last went down and came back (steady clock, ms). A recovery
// is measured from the engine first entering `connecting` after the outage
// (hold-off over and link-layer check passed: the link is back as far as the
// client can tell) to the link being up (the first line from the server).
struct LinkTimeline {
  uint64_t down_at = 0;             // last outage declared
  uint64_t reconnect_started_at = 0;// first entry to connecting after it
  uint64_t up_at = 0;               // last link up
  uint32_t last_outage_ms = 0;      // up_at - down_at of the last recovery
  uint32_t last_recovery_ms = 0;    // up_at - reconnect_started_at
  uint32_t recoveries = 0;          // outages followed by a link up
};

class Client {
 public:
  // Longest payload a message may carry.
  static constexpr size_t kMaxPayload = RESILINK_MAX_PAYLOAD;

  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts connecting (from the next run_once). bad_config for an invalid id
  // or port 0 (logged with the reason), wrong_state if already started.
  core::Error start();

  // One pass of the driver loop: timers, connect progress, receive, send, and
  // one poll(2) of the socket and extra_fds lasting no longer than the
  // engine's next deadline or max_wait_ms (negative: 1 s). extra_fds' revents
  // are filled in for the caller; entries with a negative fd are ignored, as
  // poll(2) does.
  void run_once(int max_wait_ms, std::span<pollfd> extra_fds = {});

  // ---- non-blocking application API
  // Queues a message (one trailing '\n' is stripped). Flow results:
  // would_block (window or buffer full), link_down (non-qos while down).
  // Usage results: empty_payload, payload_too_long, payload_has_newline,
  // closed. The bytes leave on the next run_once().
  core::Error try_write(std::string_view payload, bool qos, uint32_t* ticket = nullptr);
  bool is_pending(uint32_t ticket) const;
  std::optional<std::string> try_readline();

  // ---- blocking helpers; they drive run_once() until done or timed out
  // qos+wait: waits until nothing else is in flight, queues, waits for the
  // ACK. qos alone: returns once queued. Non-qos: waits for the link, then
  // queues and sends once. Usage errors return at once; see ClientErrc for
  // timeouts, core::Error::closed after close().
  std::error_code write(std::string_view payload, WriteOptions options = {},
                        std::chrono::milliseconds timeout = std::chrono::milliseconds::max());
  std::optional<std::string> readline(std::chrono::milliseconds timeout);
  // Sends what the socket takes at once (pending ACKs), then closes the link
  // for good. Unacknowledged messages are dropped.
  void close();

  // ---- getters
  bool status() const { return engine_->is_up(); }
  core::LinkState state() const { return engine_->state(); }
  const core::EngineStats& stats() const { return engine_->stats(); }
  uint32_t reconnects() const;
  uint32_t last_recovery_ms() const { return timeline_.last_recovery_ms; }
  const LinkTimeline& timeline() const { return timeline_; }
  // The last protocol error the server made; kept after the engine clears its
  // own copy on the next connect.
  const core::ProtocolErrorInfo& last_protocol_error() const { return last_protocol_error_; }
  const ClientOptions& options() const { return options_; }

 private:
  // Records engine events; the Client acts on them after the engine call
  // returns (an observer must not call into the engine).
  struct Events final : core::EngineObserver {
    Client* client = nullptr;
    void on_link_up() override;
    void on_link_down(core::OutageReason why, uint32_t silence_ms) override;
  };
  struct Event {
    bool up;
    bool recovered;  // up after an outage (not the first connect)
    core::OutageReason why;
    uint32_t silence_ms;
  };
  struct Address {
    sockaddr_storage storage;
    socklen_t length;
  };
  enum class WaitResult { done, timed_out, closed };

  void service(uint64_t now);
  void act_on_state();
  void start_connect(uint64_t now);
  void try_next_address(uint64_t now);
  void finish_connect(uint64_t now);
  void connect_failed(uint64_t now, int error, const char* what);
  void receive(uint64_t now);
  void flush_tx(uint64_t now);
  void socket_failed(int error, const char* what, uint64_t now);
  void close_socket();
  void dispatch_events();
  bool connection_open() const;
  WaitResult wait_until(const std::function<bool()>& done, uint64_t deadline);

  ClientOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  Events events_;
  std::unique_ptr<core::Engine> engine_;  // large (tens of kB): on the heap
  std::vector<Event> pending_events_;
  std::vector<pollfd> poll_set_;
  std::vector<Address> addresses_;
  size_t next_address_ = 0;
  int socket_ = -1;
  bool connect_in_progress_ = false;
  int last_socket_error_ = 0;
  uint32_t connect_attempts_ = 0;
  bool reconnect_pending_ = false;  // an outage happened; not yet reconnecting
  bool recovering_ = false;         // an outage happened; link not yet up
  LinkTimeline timeline_;
  core::ProtocolErrorInfo last_protocol_error_;
  std::unique_ptr<unsigned char[]> rx_buffer_;
};

}  // namespace resilink

#endif
