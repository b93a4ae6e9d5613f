// Inside the chaos proxy: its shared state (ChaosProxy::Impl) and one proxied
// connection (ChaosConnection). Private to lab/src/chaos_*.cpp.
//
// A connection's life (ChaosConnection::state_):
//
//   state       event                                   next        action
//   (accepted)  no outage/half_open active              connecting  resolve and connect upstream
//   (accepted)  an outage/half_open is active           pending     nothing: not read, not connected
//   pending     the last outage/half_open ends          connecting  resolve and connect upstream
//   connecting  connected                               open        two readers, two writers start
//   connecting  connect failed                          closed      close the client socket
//   open        both EOFs passed on                     closed      close both sockets
//   open        a reset passed on                       closed      RST the destination, close the source
//   open        a limit_data budget is spent            closed      FIN both ways, discard unread, close
//   any         a reset_peer timer fires                closed      RST both sockets
//   any         stop()                                  closed      close both sockets
//
// Sockets are indexed 0 = client, 1 = upstream (server); direction d reads
// socket d and writes socket 1 - d, so direction 0 is upstream (client ->
// server) and direction 1 downstream.
//
// Every coroutine holds a shared_ptr to what it touches and checks state_
// after each wait, so closing the sockets and cancelling the timers is all it
// takes to end a connection; the Impl lives until the last one has ended.
#pragma once

#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "resilink/lab/chaos_proxy.h"
#include "resilink/lab/toxic_pipe.h"

namespace resilink::lab {

using asio::ip::tcp;

// Completion token: the coroutine resumes with (error_code, results...).
inline constexpr auto kAsTuple = asio::experimental::as_tuple(asio::use_awaitable);

inline uint64_t steady_now_us() {
  using namespace std::chrono;
  return static_cast<uint64_t>(duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count());
}

inline std::chrono::steady_clock::time_point steady_from_us(uint64_t us) {
  return std::chrono::steady_clock::time_point(std::chrono::microseconds(us));
}

class ChaosConnection;

struct ScheduleState {
  ScheduleState(asio::io_context& io, FaultSchedule spec_, std::string name_, uint64_t seed)
      : spec(std::move(spec_)), name(std::move(name_)), plan(spec, seed), timer(io) {}
  FaultSchedule spec;
  std::string name;
  FaultPlan plan;
  asio::steady_timer timer;
  std::chrono::steady_clock::time_point base = std::chrono::steady_clock::now();
  bool cancelled = false;
  bool fault_active = false;  // the toxic this schedule added is active
};

struct ChaosProxy::Impl {
  Impl(asio::io_context& io_, ChaosOptions options_);

  // Toxics. add_toxic fills in the defaults; from_schedule lets a schedule
  // use its own name.
  std::error_code add_toxic(Toxic toxic, std::string* why, bool from_schedule = false);
  bool remove_toxic(std::string_view name);
  bool cancel_schedule(std::string_view name);
  bool add_schedule(FaultSchedule schedule, std::string* why, std::string* name_out = nullptr);
  size_t clear();
  bool blocking() const;  // an outage or half_open is active
  void toxics_changed();
  // `at`: when the change took effect, before it acted on any connection.
  void emit(const Toxic& toxic, bool active, std::chrono::steady_clock::time_point at);

  // Connections.
  void connection_closed(uint64_t id);

  std::string command(std::string_view line);
  void stop();

  asio::io_context& io;
  ChaosOptions options;
  std::shared_ptr<spdlog::logger> log;
  std::weak_ptr<Impl> self;  // handed to coroutines as a shared_ptr
  tcp::acceptor acceptor;
  tcp::acceptor control_acceptor;
  std::vector<std::weak_ptr<tcp::socket>> control_sockets;
  std::vector<Toxic> toxics;  // active, in the order added
  std::vector<std::shared_ptr<ScheduleState>> schedules;
  uint64_t schedules_created = 0;
  std::map<uint64_t, std::shared_ptr<ChaosConnection>> connections;
  uint64_t next_connection_id = 1;
  ChaosStats counters;
  std::function<void(const FaultEvent&)> event_callback;
  bool stopped = false;
};

class ChaosConnection : public std::enable_shared_from_this<ChaosConnection> {
 public:
  ChaosConnection(std::shared_ptr<ChaosProxy::Impl> proxy, uint64_t id, tcp::socket client);

  // After accept: held (pending) or connecting.
  void start();
  // The proxy's toxics changed: re-fold the pipes, arm or cancel reset_peer
  // timers, connect a pending connection once nothing blocks.
  void toxics_changed();
  void stop() { close(Close::plain, "proxy stopped"); }
  uint64_t id() const { return id_; }
  const std::string& peer() const { return peer_; }

 private:
  enum class State { pending, connecting, open, closed };
  enum class Close { plain, graceful, reset_both };

  struct Direction {
    Direction(asio::io_context& io, Stream stream, uint64_t seed)
        : pipe(stream, seed), reader_wake(io), writer_wake(io) {}
    ToxicPipe pipe;
    asio::steady_timer reader_wake, writer_wake;
  };

  static asio::awaitable<void> connect_upstream(std::shared_ptr<ChaosConnection> self);
  static asio::awaitable<void> read_loop(std::shared_ptr<ChaosConnection> self, int d);
  static asio::awaitable<void> write_loop(std::shared_ptr<ChaosConnection> self, int d);

  void begin_connect();
  void arm_reset_timers();
  void destination_failed(int d, const std::error_code& ec);
  void pass_reset(int d);
  void limit_close(int d, const std::string& toxic);
  void maybe_finish();
  void close(Close how, const std::string& why);
  void wake(int d) {
    dirs_[d].reader_wake.cancel();
    dirs_[d].writer_wake.cancel();
  }
  static const char* side(int socket) { return socket == 0 ? "client" : "server"; }

  std::shared_ptr<ChaosProxy::Impl> proxy_;
  uint64_t id_;
  std::string peer_;
  State state_ = State::pending;
  tcp::socket sockets_[2];  // client, upstream
  tcp::resolver resolver_;
  Direction dirs_[2];       // upstream, downstream
  bool dead_[2] = {false, false};  // a write to this socket failed: its end is a reset
  std::map<std::string, std::unique_ptr<asio::steady_timer>> reset_timers_;
};

}  // namespace resilink::lab
