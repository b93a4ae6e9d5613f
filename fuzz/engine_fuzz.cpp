// Fuzzes one core::Engine (client or server role) through its whole API: the
// input is a program of driver steps (received bytes, time moving, commands)
// and every invariant of fuzz/engine_check.h is checked after each step.
//
// Besides those, received bytes are run through a reference line classifier:
// a malformed line (one byte, non-hex mid, longer than RESILINK_MAX_LINE) must
// end the connection as a protocol error naming the right error, line and
// offset, and well-formed lines must never be reported as one.
#include <string.h>

#include <string>
#include <vector>

#include "engine_check.h"
#include "fuzz_support.h"
#include "resilink/core/engine.h"

using namespace resilink::core;
using resilink::fuzz::CheckingObserver;
using resilink::fuzz::EmittedStreamCheck;
using resilink::fuzz::EngineChecker;
using resilink::fuzz::FuzzInput;

namespace {

// What the engine must conclude about the bytes it receives on a connection.
struct RxReference {
  std::string partial;
  uint32_t lines = 0;
  uint64_t offset = 0;
  uint64_t line_start = 0;

  void reset() { *this = RxReference{}; }

  // Runs the chunk; returns the first protocol error it holds (ok if none).
  Error feed(const uint8_t* data, size_t len, uint32_t* bad_line, uint64_t* bad_offset) {
    for (size_t i = 0; i < len; ++i) {
      ++offset;
      if (data[i] != '\n') {
        partial.push_back(static_cast<char>(data[i]));
        if (partial.size() > RESILINK_MAX_LINE) return fail(Error::line_too_long, bad_line, bad_offset);
        continue;
      }
      ++lines;
      Error e = classify();
      if (e != Error::ok) return fail(e, bad_line, bad_offset);
      partial.clear();
      line_start = offset;
    }
    return Error::ok;
  }

 private:
  Error fail(Error e, uint32_t* bad_line, uint64_t* bad_offset) {
    *bad_line = e == Error::line_too_long ? lines + 1 : lines;
    *bad_offset = line_start;
    return e;
  }
  Error classify() const {
    if (partial.empty()) return Error::ok;
    if (partial.size() == 1) return Error::malformed_line;
    uint8_t mid;
    if (!parse_mid(reinterpret_cast<const uint8_t*>(partial.data()), &mid)) return Error::bad_message_id;
    return Error::ok;
  }
};

class Harness {
 public:
  Harness(FuzzInput& in, const EngineConfig& config, const char* id)
      : in_(in),
        engine_(config, &observer_),
        checker_(engine_),
        emitted_(config.role, id ? id : "") {
    engine_.attach_buffers(block(0));
  }

  void run() {
    int steps = 0;
    while (!in_.empty() && steps++ < 4000) {
      step(in_.byte());
      checker_.after_step(now_);
      lend_other_block_if_idle();
    }
  }

 private:
  void step(uint8_t op) {
    switch (op % 20) {
      case 0: {  // raw bytes from the peer
        const uint8_t* data;
        size_t len = in_.take(in_.byte(), &data);
        receive(data, len);
        break;
      }
      case 1:
        receive_token();
        break;
      case 2:
        advance(in_.byte());
        break;
      case 3:
        advance(static_cast<uint64_t>(in_.u16()) * 1000);  // a big jump: suspended, stalled
        break;
      case 4:
      case 5: {  // exactly at, or just before, the next deadline
        uint64_t d = engine_.next_deadline();
        if (d == kNoDeadline) break;
        advance(d - now_ - (op % 20 == 5 && d > now_ ? 1 : 0));
        break;
      }
      case 6:
      case 7:
        write(op % 20 == 6);
        break;
      case 8:
        read();
        break;
      case 9: {
        const uint8_t* data;
        size_t len;
        if (engine_.peek_line(&data, &len)) {
          resilink::fuzz::check_read_payload(data, len);
          engine_.pop_line();
        }
        break;
      }
      case 10:
        if (in_.byte() < 16) engine_.close(now_);  // rare: everything after is closed
        break;
      case 11:
        engine_.start(now_);
        break;
      case 12:
        engine_.handle_link_lost(static_cast<OutageReason>(in_.byte() % 9), now_);
        break;
      case 13:
        if (engine_.handle_connected(now_) == Error::ok) emitted_.new_connection();
        break;
      case 14:
        engine_.handle_link_ready(now_);
        break;
      case 15:
        engine_.handle_connect_failed(now_);
        break;
      case 16:
      case 17: {  // the socket takes some or all of what is pending
        const uint8_t* tx;
        size_t pending = engine_.tx_pending(&tx);
        size_t count = op % 20 == 16 ? pending : in_.byte();
        if (count > pending) count = pending;
        emitted_.take(tx, count);
        engine_.handle_tx_sent(count, now_);
        break;
      }
      case 18:
        engine_.handle_timeout(now_);
        break;
      default: {  // a full driver turn: timers, then send everything
        engine_.handle_timeout(now_);
        const uint8_t* tx;
        size_t pending = engine_.tx_pending(&tx);
        emitted_.take(tx, pending);
        engine_.handle_tx_sent(pending, now_);
        break;
      }
    }
  }

  void advance(uint64_t ms) {
    now_ += ms;
    engine_.handle_timeout(now_);
  }

  void receive(const uint8_t* data, size_t len) {
    if (engine_.stats().connects != rx_connects_) {  // a new connection: a new stream
      rx_connects_ = engine_.stats().connects;
      rx_ref_.reset();
    }
    const bool open = resilink::fuzz::connection_open(engine_.state());
    const uint32_t outages = engine_.stats().outages;
    uint32_t bad_line = 0;
    uint64_t bad_offset = 0;
    Error expected = open ? rx_ref_.feed(data, len, &bad_line, &bad_offset) : Error::ok;
    engine_.handle_rx(data, len, now_);
    if (!open) {
      FUZZ_CHECK(engine_.stats().outages == outages, "bytes received without a connection are ignored");
      return;
    }
    if (expected == Error::ok) {
      FUZZ_CHECK(resilink::fuzz::connection_open(engine_.state()) && engine_.stats().outages == outages,
                 "well-formed lines never end the connection");
      return;
    }
    FUZZ_CHECK(!resilink::fuzz::connection_open(engine_.state()), "a malformed line ends the connection");
    FUZZ_CHECK(engine_.stats().last_outage == OutageReason::protocol_error && observer_.last_down == OutageReason::protocol_error,
               "a malformed line is reported as a protocol error");
    const ProtocolErrorInfo& info = engine_.last_protocol_error();
    FUZZ_CHECK(info.error == expected, "the protocol error names what was wrong");
    FUZZ_CHECK(info.line == bad_line && info.byte_offset == bad_offset, "the protocol error names where");
  }

  // A line of the protocol, well-formed or broken in one of its known ways.
  void receive_token() {
    std::string line;
    uint8_t kind = in_.byte();
    uint8_t mid = in_.byte();
    static const char kHex[] = "0123456789abcdef0123456789ABCDEF";
    std::string hex = {kHex[(mid >> 4) + (kind & 16)], kHex[(mid & 15) + (kind & 16)]};
    switch (kind % 8) {
      case 0: line = "\n"; break;
      case 1: line = hex + "\n"; break;  // ACK
      case 2:
      case 3: line = hex + std::string(1 + in_.byte() % 24, static_cast<char>('a' + mid % 26)) + "\n"; break;
      case 4: line = hex.substr(0, 1) + "\n"; break;  // malformed
      case 5: line = "g" + hex + "x\n"; break;        // bad mid
      case 6: line = hex + std::string(RESILINK_MAX_LINE - 2 + (kind & 1 ? 1 : 0), 'L') + "\n"; break;
      default: line = hex + std::string(RESILINK_MAX_PAYLOAD, 'M') + "\n"; break;  // longest valid
    }
    receive(reinterpret_cast<const uint8_t*>(line.data()), line.size());
  }

  void write(bool qos) {
    uint8_t shape = in_.byte();
    std::string payload;
    if (shape % 16 == 0) payload = "";                                        // empty
    else if (shape % 16 == 1) payload = "a\nb";                               // newline
    else if (shape % 16 == 2) payload = std::string(RESILINK_MAX_PAYLOAD + 1, 'x');  // too long
    else if (shape % 16 == 3) payload = std::string(RESILINK_MAX_PAYLOAD, 'y');
    else payload = std::string(1 + in_.byte() % 64, static_cast<char>('a' + shape % 26));
    const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
    const bool could = engine_.can_write(qos, payload.size());
    const uint32_t upgraded_before = engine_.stats().nonqos_upgraded;
    uint32_t ticket = 0;
    Error e = engine_.write(p, payload.size(), qos, now_, &ticket);
    Error valid = validate_payload(p, payload.size());
    if (engine_.state() == LinkState::closed) {
      FUZZ_CHECK(e == Error::closed, "a closed engine refuses writes with closed");
      return;
    }
    if (valid != Error::ok) {
      FUZZ_CHECK(e == valid, "an invalid payload is refused with its validation error");
      return;
    }
    if (e == Error::ok) {
      FUZZ_CHECK(could, "write succeeds only when can_write said so");
      const bool upgraded = engine_.stats().nonqos_upgraded != upgraded_before;
      FUZZ_CHECK(!qos || !upgraded, "only a non-qos write is upgraded to qos");
      if (qos || upgraded) {
        FUZZ_CHECK(engine_.is_pending(ticket), "an accepted qos (or upgraded) write is pending");
        observer_.pending_tickets.insert(ticket);
      }
    } else {
      FUZZ_CHECK(e == Error::would_block || e == Error::link_down, "a valid write is ok, would_block or link_down");
      FUZZ_CHECK(!could || e == Error::link_down, "would_block only when can_write said no");
    }
  }

  void read() {
    uint8_t buffer[RESILINK_MAX_PAYLOAD];
    size_t cap = in_.byte() % 4 == 0 ? in_.byte() % 8 : sizeof buffer;
    size_t queued = engine_.rx_queued();
    size_t len = 0;
    if (engine_.read_line(buffer, cap, &len)) {
      resilink::fuzz::check_read_payload(buffer, len);
      FUZZ_CHECK(len <= cap, "read_line copies at most cap bytes");
      FUZZ_CHECK(engine_.rx_queued() == queued - 1, "read_line takes one message");
    } else {
      FUZZ_CHECK(queued == 0 || len > cap, "read_line fails only when empty or the message exceeds cap");
      FUZZ_CHECK(engine_.rx_queued() == queued, "a failed read_line leaves the queue alone");
    }
  }

  FuzzInput& in_;
  CheckingObserver observer_;
  // The engine borrows its buffers, as the server's do: whenever they are
  // idle it gets the other block, scribbled over, so any byte it relied on
  // keeping across an idle point shows up in the emitted stream or a check.
  uint8_t* block(int i) { return reinterpret_cast<uint8_t*>(blocks_[i].data()); }
  void lend_other_block_if_idle() {
    if (!engine_.buffers_idle()) return;
    uint8_t* old = engine_.detach_buffers();
    FUZZ_CHECK(old == block(lent_), "detach_buffers returns the block lent");
    lent_ ^= 1;
    memset(block(lent_), 0xa5, EngineBase::kBufferBytes);
    engine_.attach_buffers(block(lent_));
  }

  std::vector<uint64_t> blocks_[2] = {std::vector<uint64_t>(EngineBase::kBufferBytes / 8 + 1),
                                      std::vector<uint64_t>(EngineBase::kBufferBytes / 8 + 1)};
  int lent_ = 0;
  EngineBase engine_;
  EngineChecker checker_;
  EmittedStreamCheck emitted_;
  RxReference rx_ref_;
  uint32_t rx_connects_ = 0;
  uint64_t now_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  uint8_t flags = in.byte();
  EngineConfig config;
  config.role = flags & 1 ? Role::server : Role::client;
  static const char* const kIds[] = {"dev1", "", "has space", "0123456789abcdef0123456789abcdef"};
  const char* id = kIds[(flags >> 1) & 3];
  config.client_id = id;
  config.timeout_ms = in.u16();  // the engine raises values under 8
  config.hold_off_ms = flags & 8 ? in.u16() : 0;
  config.backoff_initial_ms = in.byte();
  config.backoff_max_ms = in.u16();
  config.connect_timeout_ms = flags & 16 ? in.u16() : 0;
  config.random_seed = in.byte();
  config.window = in.byte() % (RESILINK_TX_WINDOW + 2);  // 0 and too big are clamped
  Harness harness(in, config, config.role == Role::client ? id : nullptr);
  harness.run();
  return 0;
}
