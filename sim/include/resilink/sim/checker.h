// The invariant checker: what protocol v1 promises, checked on every
// delivery to an application and on every state change the world reports.
//
// A stream is one direction of one client's link: stream i carries client i's
// messages to the server, stream clients + i the server's messages to client
// i. Every message the application model creates gets the next sequence
// number of its stream and a record here; its payload names the stream and
// the sequence, so the receiver's copy can be traced to its record.
//
// What is promised, and so a violation (`kind`):
//  - duplicate:        a qos message delivered twice to one receiver
//                      incarnation, other than the mid-0 ambiguity below;
//  - nonqos_duplicate: a non-qos message delivered twice (never resent);
//  - loss:             a qos message of a sender incarnation skipped: a later
//                      qos message of the same incarnation was delivered first
//                      and the skipped one was not lost with a restart; or,
//                      at the end of the run, a qos message acknowledged but
//                      never delivered;
//  - reorder:          qos messages of one sender incarnation delivered out of
//                      write order (the engine's promise: PROTOCOL.md §5);
//  - corrupt:          a payload that is not one the sender wrote;
//  - late_detection:   an end declared an outage later than T + T/4 after it
//                      began (reported by the world);
//  - liveness:         after faults stop, a qos message still undelivered
//                      when the liveness bound has passed (reported by the
//                      world through finish()).
// What v1 cannot prevent, counted apart (`expected`):
//  - v1_mid0_duplicate: PROTOCOL.md §6a. The mid-0 message delivered again on
//    a later connection, and every message of the same sender incarnation
//    redelivered after that spurious map clear;
//  - receiver_restart_duplicate: the receiver's engine was recreated (client
//    reboot, server restart) and lost its seen-map; an unacknowledged message
//    it had delivered is resent and delivered again;
//  - lost_with_sender: queued in a sender that rebooted/restarted;
//  - lost_unread: accepted by a receiver that rebooted/restarted before its
//    application read it;
//  - v1_mid0_lost: §6a's opposite case (a restarted sender's first message was
//    non-qos and lost, so later ones are taken for old duplicates).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace resilink::sim {

enum class MsgClass : uint8_t { qos_window, qos_wait, nonqos };

#define RESILINK_SIM_VIOLATION_TABLE(X) \
  X(duplicate)                          \
  X(nonqos_duplicate)                   \
  X(loss)                               \
  X(reorder)                            \
  X(corrupt)                            \
  X(late_detection)                     \
  X(liveness)

enum class Violation : uint8_t {
#define RESILINK_X(name) name,
  RESILINK_SIM_VIOLATION_TABLE(RESILINK_X)
#undef RESILINK_X
      count
};
const char* violation_name(Violation v);

struct CheckCounts {
  uint64_t qos_messages = 0;
  uint64_t qos_delivered = 0;
  uint64_t nonqos_written = 0;
  uint64_t nonqos_delivered = 0;
  uint64_t nonqos_lost = 0;          // allowed: at most once
  uint64_t nonqos_unwritten = 0;     // created, never written (sender restarted)
  uint64_t v1_mid0_duplicate = 0;
  uint64_t receiver_restart_duplicate = 0;
  uint64_t lost_with_sender = 0;
  uint64_t lost_unread = 0;
  uint64_t v1_mid0_lost = 0;
  uint64_t violations[static_cast<size_t>(Violation::count)] = {};

  void add(const CheckCounts& o);
  uint64_t total_violations() const;
};

struct ViolationReport {
  Violation kind;
  uint32_t stream;
  uint64_t at;
  std::string detail;
};

class Checker {
 public:
  explicit Checker(uint32_t clients);

  // The application created a message; returns its sequence number.
  uint32_t created(uint32_t stream, MsgClass cls);
  // The application handed it to the engine: mid and ticket as the engine
  // assigned them (the world derives the mid from the write count).
  void written(uint32_t stream, uint32_t seq, uint8_t mid, uint32_t ticket);
  void acked(uint32_t stream, uint32_t ticket);
  // The receiving application read a payload; accept_conn is the connection
  // on which its engine accepted it.
  void delivered(uint32_t stream, const uint8_t* payload, size_t len, uint64_t accept_conn,
                 uint64_t now);
  // The receiver of `stream` is about to be destroyed with this payload unread.
  void lost_unread(uint32_t stream, const uint8_t* payload, size_t len);
  void sender_restarted(uint32_t stream);
  void receiver_restarted(uint32_t stream);
  void report(Violation kind, uint32_t stream, uint64_t now, std::string detail);

  // qos messages neither delivered nor lost with a restart.
  uint64_t outstanding() const { return outstanding_; }
  // End of run: classifies every record; `deadline_passed` turns what is still
  // undelivered into liveness (or loss if acknowledged) violations.
  void finish(uint64_t now, bool deadline_passed);

  // The payload for (stream, seq): "s<stream>:<seq>:<class>:" then padding.
  static size_t format_payload(uint32_t stream, uint32_t seq, MsgClass cls, size_t pad,
                               uint8_t* out);

  const CheckCounts& counts() const { return counts_; }
  const std::vector<ViolationReport>& violations() const { return violations_; }

 private:
  enum : uint8_t {
    kWritten = 1, kAcked = 2, kDelivered = 4, kOrphaned = 8, kLostUnread = 16,
  };
  struct Record {
    uint64_t accept_conn;    // connection of the first delivery
    uint32_t epoch;          // sender incarnation
    uint32_t rx_epoch;       // receiver incarnation of the first delivery
    uint8_t mid;
    MsgClass cls;
    uint8_t flags;
  };
  struct Stream {
    std::vector<Record> records;
    std::vector<uint32_t> ticket_seq;  // current sender incarnation: ticket - 1 -> seq
    std::vector<uint32_t> mid0_seq;    // sender incarnation -> seq written with mid 0
    uint32_t epoch = 0;
    uint32_t epoch_first_seq = 0;
    uint32_t rx_epoch = 0;
    uint32_t cleared_epoch = ~0u;      // sender incarnation whose mid 0 was redelivered
    uint32_t cleared_rx_epoch = ~0u;
    uint32_t order_epoch = 0;          // incarnation of the newest qos delivery
    uint32_t scan_from = 0;            // records before this are checked for gaps
  };
  bool parse(const uint8_t* payload, size_t len, uint32_t* stream, uint32_t* seq,
             MsgClass* cls) const;
  bool mid0_lost_case(const Stream& s, uint32_t epoch) const;
  std::string group_history(const Stream& s, uint32_t seq) const;
  void resolve(Record& r) {
    if (r.cls != MsgClass::nonqos && !(r.flags & (kDelivered | kOrphaned | kLostUnread)))
      --outstanding_;
  }

  std::vector<Stream> streams_;
  uint64_t outstanding_ = 0;
  CheckCounts counts_;
  std::vector<ViolationReport> violations_;
};

}  // namespace resilink::sim
