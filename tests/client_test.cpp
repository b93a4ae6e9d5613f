// resilink::Client over real loopback sockets, against LoopbackPeer (a
// server-role core engine in a thread). Timeouts are short (kTimeout) so each
// outage costs a fraction of a second.
#include "resilink/client/client.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>


#include "support/log_capture.h"
#include "support/loopback_peer.h"

namespace resilink {
namespace {

using namespace std::chrono_literals;
using test::LogCapture;
using test_peer::LoopbackPeer;

constexpr uint32_t kTimeout = 300;


ClientOptions options_for(uint16_t port, LogCapture& log) {
  ClientOptions o;
  o.id = "dev-1";
  o.host = "127.0.0.1";
  o.port = port;
  o.timeout_ms = kTimeout;
  o.random_seed = 7;
  o.logger = log.logger();
  return o;
}

ClientOptions options_for(const LoopbackPeer& peer, LogCapture& log) {
  return options_for(peer.port(), log);
}

// Runs the client until pred() holds; false if it did not within timeout.
template <class Pred>
bool drive_until(Client& client, Pred pred, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    client.run_once(10);
  }
  return true;
}

void drive_for(Client& client, std::chrono::milliseconds duration) {
  drive_until(client, [] { return false; }, duration);
}

const std::error_code kOk{};

TEST(Client, ExchangesQosLinesBothWays) {
  LoopbackPeer peer(kTimeout);
  LogCapture log;
  Client client(options_for(peer, log));
  ASSERT_EQ(client.start(), core::Error::ok);

  EXPECT_EQ(client.write("hello\n", {}, 3s), kOk);  // trailing '\n' stripped
  EXPECT_TRUE(client.status());
  EXPECT_EQ(peer.received(), std::vector<std::string>{"hello"});
  EXPECT_EQ(peer.client_ids(), std::vector<std::string>{"dev-1"});

  peer.send("from server 1");
  peer.send("from server 2");
  EXPECT_EQ(client.readline(3s), "from server 1");
  EXPECT_EQ(client.readline(3s), "from server 2");
  EXPECT_TRUE(drive_until(client, [&] { return peer.all_acked(); }, 3s));

  // qos without wait: returns once queued; order is still kept.
  for (const char* m : {"a", "b", "c"}) EXPECT_EQ(client.write(m, {.qos = true, .wait = false}), kOk);
  // Non-qos: sent once while the link is up.
  EXPECT_EQ(client.write("fire and forget", {.qos = false}), kOk);
  EXPECT_TRUE(drive_until(client, [&] { return peer.received().size() == 5; }, 3s));
  EXPECT_EQ(peer.received(),
            (std::vector<std::string>{"hello", "a", "b", "c", "fire and forget"}));
  EXPECT_TRUE(drive_until(client, [&] { return client.stats().messages_acked == 4; }, 3s));

  // A ticket from try_write tracks one message to its ACK.
  uint32_t ticket = 0;
  EXPECT_EQ(client.try_write("tracked", true, &ticket), core::Error::ok);
  EXPECT_TRUE(client.is_pending(ticket));
  EXPECT_TRUE(drive_until(client, [&] { return !client.is_pending(ticket); }, 3s));
  EXPECT_EQ(peer.count("tracked"), 1u);

  EXPECT_EQ(client.reconnects(), 0u);
  EXPECT_EQ(client.stats().outages, 0u);
  EXPECT_TRUE(log.contains("connecting to 127.0.0.1:"));
  EXPECT_TRUE(log.contains("link up"));

  client.close();
  EXPECT_EQ(client.state(), core::LinkState::closed);
  EXPECT_EQ(client.write("late"), make_error_code(core::Error::closed));
  EXPECT_EQ(client.try_write("late", true), core::Error::closed);
  EXPECT_FALSE(client.readline(50ms).has_value());
}

TEST(Client, RejectsMisuseAtOnce) {
  LoopbackPeer peer(kTimeout);
  LogCapture log;
  Client client(options_for(peer, log));
  EXPECT_EQ(client.write("x"), std::error_code(ClientErrc::not_started));
  EXPECT_EQ(client.write(""), make_error_code(core::Error::empty_payload));
  EXPECT_EQ(client.write("\n"), make_error_code(core::Error::empty_payload));
  EXPECT_EQ(client.write("a\nb"), make_error_code(core::Error::payload_has_newline));
  EXPECT_EQ(client.write(std::string(Client::kMaxPayload + 1, 'x')),
            make_error_code(core::Error::payload_too_long));
  EXPECT_EQ(client.try_write(std::string(Client::kMaxPayload + 1, 'x'), true),
            core::Error::payload_too_long);

  ASSERT_EQ(client.start(), core::Error::ok);
  EXPECT_EQ(client.start(), core::Error::wrong_state);
  auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(client.write(""), make_error_code(core::Error::empty_payload));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 50ms);
  // The longest payload goes through whole.
  std::string longest(Client::kMaxPayload, 'y');
  EXPECT_EQ(client.write(longest, {}, 3s), kOk);
  EXPECT_EQ(peer.count(longest), 1u);
  EXPECT_FALSE(client.readline(50ms).has_value());

  ClientOptions bad = options_for(peer, log);
  bad.id = "has space";
  Client bad_id(bad);
  EXPECT_EQ(bad_id.start(), core::Error::bad_config);
  EXPECT_TRUE(log.contains("invalid client id 'has space'"));
}

TEST(Client, RunOnceFillsInExtraFds) {
  LoopbackPeer peer(kTimeout);
  LogCapture log;
  Client client(options_for(peer, log));
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pollfd extra[2] = {{fds[0], POLLIN, 0}, {-1, POLLIN, 0}};
  client.run_once(20, extra);  // idle client: only the pipe, which is empty
  EXPECT_EQ(extra[0].revents, 0);
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  auto before = std::chrono::steady_clock::now();
  client.run_once(2000, extra);
  EXPECT_TRUE(extra[0].revents & POLLIN);
  EXPECT_EQ(extra[1].revents, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);  // woke for the pipe
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(Client, ReconnectsAfterPeerDropsAndDeliversOutageWriteOnce) {
  LoopbackPeer peer(kTimeout);
  LogCapture log;
  ClientOptions options = options_for(peer, log);
  int link_checks = 0;
  std::vector<bool> statuses;
  options.link_check = [&] { ++link_checks; };
  options.on_status = [&](bool up) { statuses.push_back(up); };
  Client client(options);
  ASSERT_EQ(client.start(), core::Error::ok);
  ASSERT_EQ(client.write("before", {}, 3s), kOk);

  peer.drop();
  ASSERT_TRUE(drive_until(client, [&] { return !client.status(); }, 3s));
  EXPECT_EQ(client.stats().last_outage, core::OutageReason::peer_closed);
  EXPECT_EQ(client.state(), core::LinkState::hold_off);
  EXPECT_TRUE(log.contains("link down: peer_closed"));

  // Issued during the outage: queued, sent after the reconnect, acknowledged.
  EXPECT_EQ(client.write("during outage", {}, 5s), kOk);
  EXPECT_EQ(peer.count("during outage"), 1u);
  EXPECT_EQ(peer.count("before"), 1u);
  EXPECT_EQ(client.reconnects(), 1u);
  ASSERT_EQ(peer.connections(), 2u);
  // It held off (2 x timeout by default) before connecting again.
  EXPECT_GE(peer.accept_times()[1], client.timeline().down_at + 2 * kTimeout - 2);
  EXPECT_EQ(client.timeline().recoveries, 1u);
  EXPECT_LT(client.last_recovery_ms(), kTimeout);
  EXPECT_GE(client.timeline().last_outage_ms, 2 * kTimeout - 2);
  EXPECT_EQ(link_checks, 2);
  EXPECT_EQ(statuses, (std::vector<bool>{true, false, true}));
  EXPECT_TRUE(log.contains("recovery"));
}

TEST(Client, AckLostWithTheConnectionStillDeliversOnce) {
  LoopbackPeer peer(kTimeout);
  LogCapture log;
  Client client(options_for(peer, log));
  ASSERT_EQ(client.start(), core::Error::ok);
  ASSERT_EQ(client.write("first", {}, 3s), kOk);

  peer.drop_after_next_message();  // "second" arrives; its ACK never leaves
  EXPECT_EQ(client.write("second", {}, 5s), kOk);
  EXPECT_EQ(client.reconnects(), 1u);
  EXPECT_GE(client.stats().retransmits, 1u);
  EXPECT_EQ(peer.count("second"), 1u);
  EXPECT_EQ(peer.received(), (std::vector<std::string>{"first", "second"}));
}

TEST(Client, BacksOffUntilTheServerListens) {
  LoopbackPeer peer(kTimeout, /*listen_now=*/false);
  LogCapture log;
  Client client(options_for(peer, log));
  ASSERT_EQ(client.start(), core::Error::ok);
  drive_for(client, 700ms);
  EXPECT_FALSE(client.status());
  // Backoff from 250 ms, doubling, jittered: a handful of tries, not a spin.
  EXPECT_GE(client.stats().connect_failures, 2u);
  EXPECT_LE(client.stats().connect_failures, 5u);
  EXPECT_TRUE(log.contains("Connection refused; retrying in"));

  peer.listen();
  ASSERT_TRUE(drive_until(client, [&] { return client.status(); }, 5s));
  EXPECT_EQ(client.write("hello after backoff", {}, 3s), kOk);
  EXPECT_EQ(peer.count("hello after backoff"), 1u);
  EXPECT_EQ(client.reconnects(), 0u);
}

TEST(Client, GivesUpAConnectThatGetsNoAnswer) {
  // A listener whose accept queue is full drops further SYNs unanswered, as a
  // server behind a dead radio link would: connect() neither fails nor completes.
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  ASSERT_EQ(::listen(listener, 0), 0);
  std::vector<int> fillers;
  for (int i = 0; i < 2; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    fillers.push_back(fd);
  }
  std::this_thread::sleep_for(50ms);

  LogCapture log;
  ClientOptions options = options_for(ntohs(address.sin_port), log);
  options.connect_timeout_ms = 200;
  Client client(options);
  ASSERT_EQ(client.start(), core::Error::ok);
  drive_for(client, 600ms);
  EXPECT_FALSE(client.status());
  EXPECT_GE(client.stats().connect_failures, 1u);
  EXPECT_EQ(client.stats().connects, 0u);
  EXPECT_TRUE(log.contains("no answer within the connect timeout"));
  for (int fd : fillers) ::close(fd);
  ::close(listener);
}

TEST(Client, WriteTimeoutsSayWhetherTheMessageIsQueued) {
  LoopbackPeer peer(kTimeout, /*listen_now=*/false);
  LogCapture log;
  Client client(options_for(peer, log));
  ASSERT_EQ(client.start(), core::Error::ok);
  // Queued, but no server to ACK it: stays queued and is delivered later.
  EXPECT_EQ(client.write("queued", {}, 150ms), std::error_code(ClientErrc::timed_out_awaiting_ack));
  // Waits for "queued" to be acknowledged first: nothing is queued.
  EXPECT_EQ(client.write("never", {}, 100ms), std::error_code(ClientErrc::timed_out));
  // Non-qos needs the link.
  EXPECT_EQ(client.write("never either", {.qos = false}, 100ms),
            std::error_code(ClientErrc::timed_out));

  peer.listen();
  ASSERT_TRUE(drive_until(client, [&] { return client.stats().messages_acked == 1; }, 5s));
  EXPECT_EQ(peer.received(), std::vector<std::string>{"queued"});
}

TEST(Client, DetectsASilentPeerWithinTheTimeout) {
  LoopbackPeer peer(kTimeout);
  LogCapture log;
  Client client(options_for(peer, log));
  ASSERT_EQ(client.start(), core::Error::ok);
  ASSERT_TRUE(drive_until(client, [&] { return client.status(); }, 3s));
  drive_for(client, std::chrono::milliseconds(kTimeout));  // keepalives flowing both ways

  peer.set_silent(true);  // keeps the socket open and reads, but sends nothing
  ASSERT_TRUE(drive_until(client, [&] { return !client.status(); }, 3s));
  ASSERT_TRUE(peer.silent());
  uint64_t last_byte = peer.last_send_at();
  uint64_t detected = client.timeline().down_at;
  EXPECT_EQ(client.stats().last_outage, core::OutageReason::read_timeout);
  EXPECT_GE(detected, last_byte + kTimeout - 1);
  EXPECT_LE(detected, last_byte + kTimeout + kTimeout / 4);
  EXPECT_GE(client.stats().last_silence_ms, kTimeout);
  EXPECT_LE(client.stats().last_silence_ms, kTimeout + kTimeout / 4);
  EXPECT_TRUE(log.contains("link down: read_timeout"));

  peer.set_silent(false);
  ASSERT_TRUE(drive_until(client, [&] { return client.status(); }, 3s));
  EXPECT_EQ(client.reconnects(), 1u);
}

struct BadInput {
  const char* name;
  std::string raw;
  core::Error error;
};

class ClientProtocolError : public ::testing::TestWithParam<BadInput> {};

TEST_P(ClientProtocolError, ClosesTheConnectionLogsAndReconnects) {
  const BadInput& input = GetParam();
  LoopbackPeer peer(kTimeout);
  LogCapture log;
  Client client(options_for(peer, log));
  ASSERT_EQ(client.start(), core::Error::ok);
  ASSERT_EQ(client.write("before", {}, 3s), kOk);

  peer.inject(input.raw);
  ASSERT_TRUE(drive_until(client, [&] { return !client.status(); }, 3s));
  EXPECT_EQ(client.stats().last_outage, core::OutageReason::protocol_error);
  const core::ProtocolErrorInfo& error = client.last_protocol_error();
  EXPECT_EQ(error.error, input.error);
  EXPECT_GE(error.line, 2u);  // the server's keepalive came first
  // The bad line starts after the server's keepalive "\n" and the ACK "00\n"
  // of "before" (exact offsets are pinned in engine_test).
  EXPECT_GE(error.byte_offset, 4u);
  EXPECT_TRUE(log.contains(std::string("protocol error from 127.0.0.1:") +
                           std::to_string(peer.port()) + ": " + core::error_name(input.error)));
  EXPECT_TRUE(log.contains("at line " + std::to_string(error.line) + ", byte offset " +
                           std::to_string(error.byte_offset)));

  ASSERT_TRUE(drive_until(client, [&] { return client.status(); }, 3s));
  EXPECT_EQ(client.reconnects(), 1u);
  EXPECT_EQ(peer.connections(), 2u);
  EXPECT_EQ(client.last_protocol_error().error, input.error);  // kept past the reconnect
  EXPECT_EQ(client.write("after", {}, 3s), kOk);
  EXPECT_EQ(peer.received(), (std::vector<std::string>{"before", "after"}));
}

INSTANTIATE_TEST_SUITE_P(
    Peer, ClientProtocolError,
    ::testing::Values(
        BadInput{"non_hex_mid", "zz not a message id\n", core::Error::bad_message_id},
        BadInput{"oversize_line", std::string(RESILINK_MAX_LINE + 100, 'a') + "\n",
                 core::Error::line_too_long},
        BadInput{"one_byte_line", "x\n", core::Error::malformed_line}),
    [](const ::testing::TestParamInfo<BadInput>& param_info) {
      return std::string(param_info.param.name);
    });

// Known gap of wire protocol v1 in the core (engine.cpp handle_message): the
// first message after a client boots has mid 0, which the server takes as "the
// client restarted" on every new connection. If its ACK is lost with the
// connection, the retransmission on the next connection clears the server's
// seen-map and is delivered a second time. Enable once the core tells a
// retransmitted mid 0 from a restart.
TEST(Client, DISABLED_FirstMessageWhoseAckIsLostIsDeliveredOnce) {
  LoopbackPeer peer(kTimeout);
  LogCapture log;
  Client client(options_for(peer, log));
  ASSERT_EQ(client.start(), core::Error::ok);
  peer.drop_after_next_message();
  EXPECT_EQ(client.write("first", {}, 5s), kOk);
  EXPECT_EQ(client.reconnects(), 1u);
  EXPECT_EQ(peer.count("first"), 1u);  // today: 2
}

}  // namespace
}  // namespace resilink
