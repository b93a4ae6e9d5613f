// Fuzzes two core::Engines back to back, a client and a server, over a byte
// pipe whose chunking and delays come from the input; nothing is lost while a
// connection lasts. Outages happen when the input lets time run past the
// timeout, or cuts the connection (cleanly, or half-open: the server does not
// notice).
//
// Checked, besides every per-engine invariant (fuzz/engine_check.h):
//  - neither engine ever sees a protocol error (each emits only valid lines);
//  - qos messages are delivered in write order without gaps; while the link
//    has never been reconnected, exactly once;
//  - non-qos messages are delivered at most once, in write order;
//  - at the end, with the faults stopped, everything written with qos is
//    delivered and acknowledged within a bounded virtual time.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "engine_check.h"
#include "fuzz_support.h"
#include "resilink/core/engine.h"

using namespace resilink::core;
using resilink::fuzz::CheckingObserver;
using resilink::fuzz::connection_open;
using resilink::fuzz::EngineChecker;
using resilink::fuzz::FuzzInput;

namespace {

// RESILINK_FUZZ_TRACE=1 prints every step of a replayed input (debugging).
const bool kTrace = getenv("RESILINK_FUZZ_TRACE") != nullptr;

// One side: an engine, what its application wrote and read.
struct Side {
  Side(const EngineConfig& config, char name_) : engine(config, &observer), checker(engine), name(name_) {}
  CheckingObserver observer;
  Engine engine;
  EngineChecker checker;
  char name;
  uint32_t qos_written = 0;
  uint32_t nonqos_written = 0;
  // Received from the peer, by sequence number.
  std::vector<uint32_t> qos_read;
  std::set<uint32_t> qos_seen;   // qos messages seen at least once
  uint32_t qos_first_seen = 0;   // how many
  int64_t last_nonqos = -1;
};

class Pair {
 public:
  Pair(FuzzInput& in, const EngineConfig& c, const EngineConfig& s)
      : in_(in), client_(c, 'c'), server_(s, 's'), timeout_(client_.engine.config().timeout_ms) {}

  void run() {
    client_.engine.start(now_);
    service();
    int steps = 0;
    while (!in_.empty() && steps++ < 3000) {
      step(in_.byte());
      check();
    }
    drain();
  }

 private:
  void step(uint8_t op) {
    if (kTrace)
      fprintf(stderr, "t=%llu op %d: client %s inflight %zu, server %s inflight %zu, socket %d, links %u\n",
              static_cast<unsigned long long>(now_), op % 16, link_state_name(client_.engine.state()),
              client_.engine.inflight(), link_state_name(server_.engine.state()), server_.engine.inflight(),
              socket_open_, connections_);
    switch (op % 16) {
      case 0: send(client_, c2s_, in_.byte()); break;
      case 1: send(server_, s2c_, in_.byte()); break;
      case 2: deliver(c2s_, server_, in_.byte()); break;
      case 3: deliver(s2c_, client_, in_.byte()); break;
      case 4: advance(in_.byte() % (timeout_ / 2 + 1)); break;
      case 5: {
        uint64_t d = std::min(client_.engine.next_deadline(), server_.engine.next_deadline());
        if (d != kNoDeadline && d >= now_) advance(d - now_);
        break;
      }
      case 6: write(client_, true); break;
      case 7: write(server_, true); break;
      case 8: write(client_, false); break;
      case 9: write(server_, false); break;
      case 10: read(client_, server_); break;
      case 11: read(server_, client_); break;
      case 12:  // the connection breaks; both ends notice
        if (in_.byte() < 32 && socket_open_) {
          ++faults_;
          client_.engine.handle_link_lost(OutageReason::socket_error, now_);
          close_socket();
        }
        break;
      case 13:  // half-open: the client notices, the server does not
        if (in_.byte() < 32 && socket_open_) {
          ++faults_;
          client_.engine.handle_link_lost(OutageReason::read_timeout, now_);
          socket_open_ = false;
          c2s_.clear();
          s2c_.clear();
          service();
        }
        break;
      case 14: advance(static_cast<uint64_t>(in_.byte()) * timeout_ / 4); break;  // may be an outage
      default: {  // one full turn of both drivers
        send(client_, c2s_, 0);
        send(server_, s2c_, 0);
        deliver(c2s_, server_, 0);
        deliver(s2c_, client_, 0);
        break;
      }
    }
  }

  // The driver's part: timers, then the client's connect cycle, then closing
  // the socket when either end declared the link down.
  void service() {
    client_.engine.handle_timeout(now_);
    server_.engine.handle_timeout(now_);
    for (int round = 0; round < 4; ++round) {
      if (socket_open_ && (!connection_open(client_.engine.state()) ||
                           !connection_open(server_.engine.state()))) {
        // Whoever closed, the other end sees the socket closed.
        if (connection_open(client_.engine.state())) client_.engine.handle_link_lost(OutageReason::peer_closed, now_);
        if (connection_open(server_.engine.state())) server_.engine.handle_link_lost(OutageReason::peer_closed, now_);
        close_socket();
      }
      if (client_.engine.state() == LinkState::link_check) client_.engine.handle_link_ready(now_);
      if (client_.engine.state() == LinkState::connecting && !socket_open_) {
        FUZZ_CHECK(client_.engine.handle_connected(now_) == Error::ok, "a connecting client accepts handle_connected");
        FUZZ_CHECK(server_.engine.handle_connected(now_) == Error::ok, "a server accepts a new connection");
        socket_open_ = true;
        ++connections_;
        // The server shell strips the id line; the rest is the link's.
        strip_id_ = true;
      }
    }
  }

  void close_socket() {
    socket_open_ = false;
    c2s_.clear();
    s2c_.clear();
    service();
  }

  void advance(uint64_t ms) {
    now_ += ms;
    service();
  }

  void send(Side& from, std::string& pipe, size_t count) {
    const uint8_t* tx;
    size_t pending = from.engine.tx_pending(&tx);
    if (count == 0 || count > pending) count = pending;
    if (socket_open_) pipe.append(reinterpret_cast<const char*>(tx), count);
    from.engine.handle_tx_sent(count, now_);
    service();
  }

  void deliver(std::string& pipe, Side& to, size_t count) {
    if (!socket_open_) return;
    if (&to == &server_ && strip_id_) {
      size_t nl = pipe.find('\n');
      if (nl == std::string::npos) return;  // the id line is not complete yet
      FUZZ_CHECK(pipe.compare(0, nl, "dev1") == 0, "the client opens with its id line");
      pipe.erase(0, nl + 1);
      strip_id_ = false;
    }
    if (count == 0 || count > pipe.size()) count = pipe.size();
    if (kTrace && count)
      fprintf(stderr, "  t=%llu to %c: %s\n", static_cast<unsigned long long>(now_), to.name,
              pipe.substr(0, count).c_str());
    to.engine.handle_rx(reinterpret_cast<const uint8_t*>(pipe.data()), count, now_);
    if (kTrace && count)
      fprintf(stderr, "  %c: received %u, duplicates %u, deferred %u, restarts %u, queued %zu\n", to.name,
              to.engine.stats().messages_received, to.engine.stats().duplicates_discarded,
              to.engine.stats().deferred, to.engine.stats().peer_restarts, to.engine.rx_queued());
    pipe.erase(0, count);
    FUZZ_CHECK(to.engine.stats().last_outage != OutageReason::protocol_error,
               "an engine never sends its peer a protocol error");
    service();
  }

  void write(Side& side, bool qos) {
    uint32_t seq = qos ? side.qos_written : side.nonqos_written;
    std::string payload = std::string(1, side.name) + (qos ? "q" : "n") + std::to_string(seq) + ":";
    size_t filler = in_.byte();
    if (filler > 250) filler = RESILINK_MAX_PAYLOAD - payload.size();
    payload.append(filler, 'f');
    uint32_t ticket = 0;
    const uint32_t upgraded_before = side.engine.stats().nonqos_upgraded;
    Error e = side.engine.write(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), qos, now_, &ticket);
    if (e != Error::ok) return;
    if (qos) {
      ++side.qos_written;
      side.observer.pending_tickets.insert(ticket);
    } else {
      ++side.nonqos_written;
      // Sent with qos (past 100 unacknowledged mids): it completes like one.
      if (side.engine.stats().nonqos_upgraded != upgraded_before) side.observer.pending_tickets.insert(ticket);
    }
    service();
  }

  // The application at `reader` reads one message written at `writer`.
  bool read(Side& reader, Side& writer) {
    uint8_t buffer[RESILINK_MAX_PAYLOAD];
    size_t len = 0;
    if (!reader.engine.read_line(buffer, sizeof buffer, &len)) return false;
    resilink::fuzz::check_read_payload(buffer, len);
    std::string payload(reinterpret_cast<const char*>(buffer), len);
    if (kTrace) fprintf(stderr, "  %c reads %s\n", reader.name, payload.substr(0, 12).c_str());
    FUZZ_CHECK(payload.size() >= 4 && payload[0] == writer.name, "a message read was written by the peer");
    uint32_t seq = static_cast<uint32_t>(strtoul(payload.c_str() + 2, nullptr, 10));
    if (payload[1] == 'q') {
      FUZZ_CHECK(seq < writer.qos_written, "a qos message read was written");
      bool is_new = reader.qos_seen.insert(seq).second;
      // A new one is the next in write order: seen so far is exactly 0..seq.
      FUZZ_CHECK(!is_new || (seq + 1 == reader.qos_seen.size() && *reader.qos_seen.rbegin() == seq),
                 "qos messages arrive in write order, without gaps");
      if (!is_new && connections_ == 1 && faults_ == 0)
        FUZZ_CHECK(false, "without a reconnect each qos message is delivered exactly once");
      reader.qos_first_seen = static_cast<uint32_t>(reader.qos_seen.size());
    } else {
      FUZZ_CHECK(payload[1] == 'n' && seq < writer.nonqos_written, "a non-qos message read was written");
      FUZZ_CHECK(static_cast<int64_t>(seq) > reader.last_nonqos, "non-qos messages arrive once, in write order");
      reader.last_nonqos = seq;
    }
    service();
    return true;
  }

  void check() {
    client_.checker.after_step(now_);
    server_.checker.after_step(now_);
  }

  // Faults stop; both drivers run in small steps until every qos message has
  // been delivered and acknowledged.
  void drain() {
    const uint64_t limit = now_ + 200ull * timeout_ + 20000;
    const uint64_t tick = timeout_ / 8 + 1;
    for (;;) {
      send(client_, c2s_, 0);
      send(server_, s2c_, 0);
      deliver(c2s_, server_, 0);
      deliver(s2c_, client_, 0);
      while (read(client_, server_)) {}
      while (read(server_, client_)) {}
      check();
      bool done = server_.qos_first_seen == client_.qos_written && client_.qos_first_seen == server_.qos_written &&
                  client_.engine.inflight() == 0 && server_.engine.inflight() == 0;
      if (done) break;
      if (now_ >= limit) {
        fprintf(stderr, "drain: client wrote %u qos, server has %u; server wrote %u, client has %u; "
                        "inflight %zu/%zu; states %s/%s\n",
                client_.qos_written, server_.qos_first_seen, server_.qos_written, client_.qos_first_seen,
                client_.engine.inflight(), server_.engine.inflight(), link_state_name(client_.engine.state()),
                link_state_name(server_.engine.state()));
        FUZZ_CHECK(false, "once faults stop, every qos message is delivered and acknowledged");
      }
      advance(tick);
    }
    FUZZ_CHECK(client_.observer.pending_tickets.empty() && server_.observer.pending_tickets.empty(),
               "every qos ticket completes with on_write_acked");
  }

  FuzzInput& in_;
  Side client_;
  Side server_;
  uint32_t timeout_;
  uint64_t now_ = 0;
  std::string c2s_;
  std::string s2c_;
  bool socket_open_ = false;
  bool strip_id_ = false;
  uint32_t connections_ = 0;
  uint32_t faults_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  EngineConfig client;
  client.role = Role::client;
  client.client_id = "dev1";
  client.timeout_ms = 8 + in.byte() * 4u;  // both ends must agree (PROTOCOL §4)
  client.window = static_cast<uint8_t>(1 + in.byte() % RESILINK_TX_WINDOW);
  client.random_seed = in.byte();
  client.backoff_initial_ms = 1 + in.byte();
  client.backoff_max_ms = client.backoff_initial_ms * 8;
  EngineConfig server = client;
  server.role = Role::server;
  server.client_id = nullptr;
  server.window = static_cast<uint8_t>(1 + in.byte() % RESILINK_TX_WINDOW);
  Pair pair(in, client, server);
  pair.run();
  return 0;
}
