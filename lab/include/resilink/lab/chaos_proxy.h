// The chaos proxy: a TCP proxy on Asio that injects faults between a client
// and its server, modelled on Toxiproxy's toxics (toxic.h lists them and
// their text forms; toxic_pipe.h says what each does to a direction).
//
//   asio::io_context io;
//   resilink::lab::ChaosOptions options;
//   options.upstream_port = 8123;
//   resilink::lab::ChaosProxy proxy(io, options);
//   proxy.start();                                   // clients connect to proxy.port()
//   proxy.add(*parse_toxic("latency latency=50ms jitter=10ms", nullptr));
//   proxy.schedule(*parse_schedule("outage every=20s+-10s for=3s+-2s", nullptr));
//   io.run();
//
// Each accepted connection gets its own connection to the upstream and two
// directions, upstream (client -> server) and downstream, each a bounded pipe:
// read from the source, apply that direction's toxics, write to the
// destination. A full pipe stops reading, so a stalled destination backs up
// into the kernel's buffers as plain TCP does. An EOF from one side is passed
// on as shutdown(SHUT_WR) to the other; a read error (reset) as an RST.
//
// Where we differ from Toxiproxy, and why:
//  - outage and half_open are ours (Toxiproxy's nearest, timeout, closes the
//    connection after a while; blackhole drops the data). They model a WiFi
//    radio drop: nothing crosses in the affected direction(s), and the proxy
//    does not even read there, so it holds what it already read, and a close
//    or reset by a peer is not noticed, let alone passed on, until the fault
//    ends. Connections accepted while either is active are left unanswered
//    (not connected upstream, not read) until none is: a reconnect during a
//    radio drop hangs. When the fault ends, held data goes first, in order,
//    then closes that happened meanwhile. Unlike a real radio drop, the
//    kernel completes the TCP handshake of such a connection, so the client's
//    connect() succeeds and only its first read waits (the kernel answers a
//    listening socket's SYNs itself); the data it sends meanwhile arrives
//    late, as delayed packets would, even if it has given up by then.
//  - A write the kernel had already taken when an outage starts still
//    arrives: it was "on the air".
//  - Toxics act on a stream (upstream, downstream or both; Toxiproxy's
//    default is downstream, ours both). reset_peer acts on whole connections.
//  - latency delays a close too, as it would a FIN packet; slow_close also
//    delays a reset being passed on; limit_data closes the connection with
//    FIN both ways (Toxiproxy closes; an RST can still follow if a peer keeps
//    sending).
//  - Several toxics of one type combine (see toxic_pipe.h); Toxiproxy chains
//    them, which comes to nearly the same.
//  - Fault schedules (random, seeded, repeating) are ours.
//
// Threading: everything but execute() runs on the io_context's thread (or
// before io.run()). Destroy the proxy on that thread or while the io_context
// is not running; the io_context runs out of the proxy's work after stop().
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "resilink/lab/toxic.h"

namespace spdlog {
class logger;
}

namespace resilink::lab {

// A toxic started (active) or ended.
struct FaultEvent {
  std::string name;
  ToxicType type;
  Stream stream;
  bool active;
  std::chrono::steady_clock::time_point at;
};

struct ChaosOptions {
  std::string listen_address = "127.0.0.1";
  uint16_t listen_port = 0;  // 0: any free port; see port()
  std::string upstream_host = "127.0.0.1";
  uint16_t upstream_port = 0;
  uint64_t seed = 1;  // schedules and jitter draw from it: same seed, same schedule
  std::shared_ptr<spdlog::logger> logger;  // default: spdlog's default logger
};

struct ChaosStats {
  uint64_t accepted = 0;          // client connections accepted
  uint64_t active = 0;            // connections open now (held ones included)
  uint64_t bytes_upstream = 0;    // bytes written to the upstream (client -> server)
  uint64_t bytes_downstream = 0;  // bytes written to clients
  uint64_t resets = 0;            // connections reset by reset_peer
  uint64_t limit_closes = 0;      // connections closed by limit_data
};

enum class ChaosErrc {
  bad_toxic = 1,   // an attribute out of range (the log says which)
  duplicate_name,  // a toxic or schedule with that name is active
  stopped,         // stop() was called
};
const std::error_category& chaos_category();
std::error_code make_error_code(ChaosErrc e);

class ChaosProxy {
 public:
  ChaosProxy(asio::io_context& io, ChaosOptions options);
  ~ChaosProxy();
  ChaosProxy(const ChaosProxy&) = delete;
  ChaosProxy& operator=(const ChaosProxy&) = delete;

  // Binds, listens and starts accepting. The bind/listen error, if any (logged).
  std::error_code start();
  uint16_t port() const;  // the bound port

  // Adds an active toxic; an empty name becomes the type's name, half_open's
  // stream=both becomes upstream. Errors (logged with the reason): a name
  // already active (duplicate_name), a bad attribute (bad_toxic).
  std::error_code add(Toxic toxic);
  // Removes the toxic, or cancels the schedule (and its active fault), with
  // this name. False if there is none.
  bool remove(std::string_view name);
  // Removes every toxic and cancels every schedule.
  void clear();
  // Repeats the fault forever, drawing each gap and duration from the seed:
  // the n-th schedule set up draws from FaultPlan(schedule, derive_seed(seed,
  // n)), counted from the schedule() call. The schedule's name (and its
  // faults') is the toxic's name, or "<type>-s<n>" when it has none. A bad or
  // duplicate schedule is logged and ignored; command("schedule ...") reports it.
  void schedule(FaultSchedule schedule);
  std::vector<Toxic> toxics() const;
  std::vector<FaultSchedule> schedules() const;
  ChaosStats stats() const;
  // One line of the control protocol (see command_help()); returns the
  // one-line reply, starting "ok" or "error: ".
  std::string command(std::string_view line);
  // Thread-safe command(): posts it to the io_context and waits for the
  // reply. Must not be called from a handler running on the io_context's
  // thread (it would wait for itself; it runs the command directly if it
  // detects that). Replies "error: ..." if the io_context does not run it
  // within 5 s (not running, or blocked).
  std::string execute(std::string_view line);
  // A toxic became active (added, scheduled start) or inactive (removed,
  // cleared, scheduled end). Called on the io thread, after the change.
  void on_event(std::function<void(const FaultEvent&)> callback);
  // Serves the control protocol on address:port (line-based TCP: one reply
  // line per command line). 0 picks a free port; see control_port().
  std::error_code listen_control(uint16_t port, const std::string& address = "127.0.0.1");
  uint16_t control_port() const;
  // Closes the listeners and every connection, cancels the schedules.
  void stop();

  static std::string command_help();

  struct Impl;

 private:
  asio::io_context& io_;
  std::shared_ptr<Impl> impl_;
};

}  // namespace resilink::lab

template <>
struct std::is_error_code_enum<resilink::lab::ChaosErrc> : std::true_type {};
