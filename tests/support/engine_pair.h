// Two engines back to back on a virtual clock: a client engine and the server
// engine for its id, joined by a modelled TCP connection. No sockets, no
// threads, instant. The network can be stalled per direction (bytes wait in
// flight, as TCP holds them during a radio outage) or made unreachable for new
// connections, and either end's close is seen by the other only while bytes
// can flow (a FIN is a packet too).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "resilink/core/engine.h"

namespace resilink::test {

struct Recorder : core::EngineObserver {
  int ups = 0;
  std::vector<core::OutageReason> downs;
  std::vector<uint32_t> silences;
  std::vector<uint32_t> acked;
  void on_link_up() override { ++ups; }
  void on_link_down(core::OutageReason why, uint32_t silence_ms) override {
    downs.push_back(why);
    silences.push_back(silence_ms);
  }
  void on_write_acked(uint32_t ticket) override { acked.push_back(ticket); }
};

inline std::string drain_lines(core::Engine& e) {
  std::string out;
  const uint8_t* data;
  size_t len;
  while (e.peek_line(&data, &len)) {
    out.append(reinterpret_cast<const char*>(data), len);
    out.push_back('\n');
    e.pop_line();
  }
  return out;
}

inline core::Error write_str(core::Engine& e, const std::string& s, bool qos, uint64_t now,
                             uint32_t* ticket = nullptr) {
  return e.write(reinterpret_cast<const uint8_t*>(s.data()), s.size(), qos, now, ticket);
}

class EnginePair {
 public:
  struct Options {
    uint32_t timeout_ms = 2000;
    uint32_t seed = 7;
    uint8_t window = 1;
    std::string id = "dev1";
  };

  explicit EnginePair(Options o) : options_(o) {
    make_client();
    core::EngineConfig sc;
    sc.role = core::Role::server;
    sc.timeout_ms = o.timeout_ms;
    sc.window = o.window;
    server = std::make_unique<core::Engine>(sc, &server_events);
  }
  EnginePair() : EnginePair(Options{}) {}

  // Replaces the client engine with a fresh one: a reboot (state lost).
  void reboot_client() {
    client_events = Recorder{};
    make_client();
    conn_.client_open = false;
    client->start(now);
  }

  std::unique_ptr<core::Engine> client;
  std::unique_ptr<core::Engine> server;
  Recorder client_events, server_events;
  uint64_t now = 1000;
  bool up_ok = true;      // client -> server bytes flow
  bool down_ok = true;    // server -> client bytes flow
  bool reachable = true;  // new connections complete
  bool client_takes_bytes = true;  // client driver sends what the engine queues
  bool server_takes_bytes = true;
  // Optional tap on every byte chunk crossing client->server.
  std::function<void(std::string&)> upstream_filter;

  void start() { client->start(now); }

  // One driver pass at the current time for both ends.
  void step() {
    client->handle_timeout(now);
    server->handle_timeout(now);
    drive_client_state();
    close_dead_ends();
    move_bytes();
    close_dead_ends();
  }

  void advance(uint64_t ms, uint64_t tick = 1) {
    for (uint64_t t = 0; t < ms; t += tick) {
      step();
      now += tick;
    }
    step();
  }

  // Steps until pred() holds, at most max_ms of virtual time. Returns pred().
  bool drive_until(const std::function<bool()>& pred, uint64_t max_ms, uint64_t tick = 1) {
    for (uint64_t t = 0; t <= max_ms; t += tick) {
      step();
      if (pred()) return true;
      now += tick;
    }
    return pred();
  }

  bool both_up() const { return client->is_up() && server->is_up(); }

 private:
  struct Connection {
    bool client_open = false;
    bool server_open = false;
    bool server_attached = false;  // id line seen, handed to the server engine
    std::string id_buffer;
    std::deque<char> to_server, to_client;
  };

  void make_client() {
    core::EngineConfig cc;
    cc.role = core::Role::client;
    cc.timeout_ms = options_.timeout_ms;
    cc.client_id = options_.id.c_str();
    cc.random_seed = options_.seed;
    cc.window = options_.window;
    client = std::make_unique<core::Engine>(cc, &client_events);
  }

  void drive_client_state() {
    if (client->state() == core::LinkState::link_check) client->handle_link_ready(now);
    if (client->state() == core::LinkState::connecting && reachable && !conn_.client_open) {
      // A new TCP connection. Whatever the old one still had is gone for the
      // client; the server's end of the old one lives on until it notices.
      conn_ = Connection{};
      conn_.client_open = true;
      conn_.server_open = true;
      client->handle_connected(now);
    }
  }

  void close_dead_ends() {
    bool client_engine_open = client->state() == core::LinkState::await_peer || client->is_up();
    bool server_engine_open = server->state() == core::LinkState::await_peer || server->is_up();
    if (conn_.client_open && !client_engine_open) {
      conn_.client_open = false;
      conn_.to_server.clear();
      conn_.to_client.clear();
    }
    if (conn_.server_attached && conn_.server_open && !server_engine_open) {
      conn_.server_open = false;
      conn_.to_client.clear();
    }
    // A close is seen by the other end when packets flow.
    if (!conn_.client_open && conn_.server_open && conn_.server_attached && up_ok) {
      conn_.server_open = false;
      server->handle_link_lost(core::OutageReason::peer_closed, now);
    }
    if (conn_.client_open && !conn_.server_open && conn_.server_attached && down_ok) {
      conn_.client_open = false;
      client->handle_link_lost(core::OutageReason::peer_closed, now);
    }
  }

  void move_bytes() {
    if (!conn_.client_open) return;
    const uint8_t* data;
    size_t n = client->tx_pending(&data);
    if (n && client_takes_bytes) {
      std::string chunk(reinterpret_cast<const char*>(data), n);
      client->handle_tx_sent(n, now);
      if (upstream_filter) upstream_filter(chunk);
      conn_.to_server.insert(conn_.to_server.end(), chunk.begin(), chunk.end());
    }
    if (up_ok && !conn_.to_server.empty() && conn_.server_open) {
      std::string chunk(conn_.to_server.begin(), conn_.to_server.end());
      conn_.to_server.clear();
      if (!conn_.server_attached) {
        conn_.id_buffer += chunk;
        size_t nl = conn_.id_buffer.find('\n');
        if (nl == std::string::npos) return;
        chunk = conn_.id_buffer.substr(nl + 1);
        conn_.server_attached = true;
        server->handle_connected(now);
      }
      server->handle_rx(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size(), now);
    }
    if (!conn_.server_attached || !conn_.server_open) return;
    n = server->tx_pending(&data);
    if (n && server_takes_bytes) {
      conn_.to_client.insert(conn_.to_client.end(), data, data + n);
      server->handle_tx_sent(n, now);
    }
    if (down_ok && !conn_.to_client.empty() && conn_.client_open) {
      std::string chunk(conn_.to_client.begin(), conn_.to_client.end());
      conn_.to_client.clear();
      client->handle_rx(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size(), now);
    }
  }

  Options options_;
  Connection conn_;
};

}  // namespace resilink::test
