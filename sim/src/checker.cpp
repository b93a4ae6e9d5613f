#include "resilink/sim/checker.h"

#include <cstdio>
#include <cstring>

namespace resilink::sim {

const char* violation_name(Violation v) {
  static const char* const names[] = {
#define RESILINK_X(name) #name,
      RESILINK_SIM_VIOLATION_TABLE(RESILINK_X)
#undef RESILINK_X
  };
  unsigned i = static_cast<unsigned>(v);
  return i < sizeof names / sizeof names[0] ? names[i] : "unknown";
}

void CheckCounts::add(const CheckCounts& o) {
  qos_messages += o.qos_messages;
  qos_delivered += o.qos_delivered;
  nonqos_written += o.nonqos_written;
  nonqos_delivered += o.nonqos_delivered;
  nonqos_lost += o.nonqos_lost;
  nonqos_unwritten += o.nonqos_unwritten;
  v1_mid0_duplicate += o.v1_mid0_duplicate;
  receiver_restart_duplicate += o.receiver_restart_duplicate;
  lost_with_sender += o.lost_with_sender;
  lost_unread += o.lost_unread;
  v1_mid0_lost += o.v1_mid0_lost;
  for (size_t i = 0; i < static_cast<size_t>(Violation::count); ++i) violations[i] += o.violations[i];
}

uint64_t CheckCounts::total_violations() const {
  uint64_t n = 0;
  for (uint64_t v : violations) n += v;
  return n;
}

Checker::Checker(uint32_t clients) : streams_(2 * clients) {
  for (Stream& s : streams_) s.mid0_seq.push_back(~0u);
}

uint32_t Checker::created(uint32_t stream, MsgClass cls) {
  Stream& s = streams_[stream];
  uint32_t seq = static_cast<uint32_t>(s.records.size());
  s.records.push_back(Record{0, s.epoch, 0, 0, cls, 0});
  if (cls != MsgClass::nonqos) ++outstanding_;
  return seq;
}

void Checker::written(uint32_t stream, uint32_t seq, uint8_t mid, uint32_t ticket) {
  Stream& s = streams_[stream];
  Record& r = s.records[seq];
  r.flags |= kWritten;
  r.mid = mid;
  if (mid == 0 && s.mid0_seq[s.epoch] == ~0u) s.mid0_seq[s.epoch] = seq;
  if (ticket > s.ticket_seq.size()) s.ticket_seq.resize(ticket, ~0u);
  s.ticket_seq[ticket - 1] = seq;
}

void Checker::acked(uint32_t stream, uint32_t ticket) {
  Stream& s = streams_[stream];
  if (ticket == 0 || ticket > s.ticket_seq.size() || s.ticket_seq[ticket - 1] == ~0u) {
    report(Violation::corrupt, stream, 0, "ack for a ticket never written: " + std::to_string(ticket));
    return;
  }
  s.records[s.ticket_seq[ticket - 1]].flags |= kAcked;
}

size_t Checker::format_payload(uint32_t stream, uint32_t seq, MsgClass cls, size_t pad,
                               uint8_t* out) {
  int n = std::snprintf(reinterpret_cast<char*>(out), 48, "s%u:%u:%u:", stream, seq,
                        static_cast<unsigned>(cls));
  size_t len = static_cast<size_t>(n);
  for (size_t i = 0; i < pad; ++i) out[len + i] = static_cast<uint8_t>('a' + (seq + i) % 26);
  return len + pad;
}

bool Checker::parse(const uint8_t* p, size_t len, uint32_t* stream, uint32_t* seq,
                    MsgClass* cls) const {
  size_t i = 0;
  auto number = [&](uint32_t* out) {
    uint64_t v = 0;
    size_t start = i;
    while (i < len && p[i] >= '0' && p[i] <= '9' && i - start < 10) v = v * 10 + (p[i++] - '0');
    if (i == start || i >= len || p[i] != ':' || v > 0xffffffffu) return false;
    ++i;
    *out = static_cast<uint32_t>(v);
    return true;
  };
  if (len < 2 || p[0] != 's') return false;
  i = 1;
  uint32_t c;
  if (!number(stream) || !number(seq) || !number(&c) || c > 2) return false;
  *cls = static_cast<MsgClass>(c);
  if (*stream >= streams_.size() || *seq >= streams_[*stream].records.size()) return false;
  const Record& r = streams_[*stream].records[*seq];
  if (r.cls != *cls || !(r.flags & kWritten)) return false;
  // The padding must be intact too.
  for (size_t k = 0; i + k < len; ++k)
    if (p[i + k] != static_cast<uint8_t>('a' + (*seq + k) % 26)) return false;
  return true;
}

bool Checker::mid0_lost_case(const Stream& s, uint32_t epoch) const {
  if (epoch == 0 || epoch >= s.mid0_seq.size()) return false;
  uint32_t first = s.mid0_seq[epoch];
  if (first == ~0u) return false;
  const Record& r = s.records[first];
  return r.cls == MsgClass::nonqos && !(r.flags & kDelivered);
}

void Checker::delivered(uint32_t stream, const uint8_t* payload, size_t len, uint64_t accept_conn,
                        uint64_t now) {
  uint32_t from, seq;
  MsgClass cls;
  if (!parse(payload, len, &from, &seq, &cls) || from != stream) {
    report(Violation::corrupt, stream, now,
           "payload not written by this stream's sender: '" +
               std::string(reinterpret_cast<const char*>(payload), len < 60 ? len : 60) + "'");
    return;
  }
  Stream& s = streams_[stream];
  Record& r = s.records[seq];
  if (r.flags & kDelivered) {
    if (cls == MsgClass::nonqos) {
      report(Violation::nonqos_duplicate, stream, now, "non-qos seq " + std::to_string(seq) +
                                                           " delivered twice");
    } else if (r.rx_epoch != s.rx_epoch) {
      ++counts_.receiver_restart_duplicate;
    } else if (r.mid == 0 && r.accept_conn != accept_conn) {
      ++counts_.v1_mid0_duplicate;
      s.cleared_epoch = r.epoch;
      s.cleared_rx_epoch = s.rx_epoch;
    } else if (s.cleared_epoch == r.epoch && s.cleared_rx_epoch == s.rx_epoch && r.mid != 0) {
      ++counts_.v1_mid0_duplicate;
    } else {
      char detail[160];
      std::snprintf(detail, sizeof detail,
                    "qos seq %u (mid %02x, sender incarnation %u) delivered twice, first on "
                    "connection %llu, again on %llu",
                    seq, r.mid, r.epoch, static_cast<unsigned long long>(r.accept_conn),
                    static_cast<unsigned long long>(accept_conn));
      report(Violation::duplicate, stream, now, detail);
    }
    return;
  }
  resolve(r);
  r.flags |= kDelivered;
  r.accept_conn = accept_conn;
  r.rx_epoch = s.rx_epoch;
  if (cls == MsgClass::nonqos) return;
  // Order and gaps within one sender incarnation.
  if (r.epoch < s.order_epoch) {
    report(Violation::reorder, stream, now,
           "qos seq " + std::to_string(seq) + " of an older sender incarnation delivered after a newer one's");
    return;
  }
  if (r.epoch > s.order_epoch) {
    s.order_epoch = r.epoch;
    if (s.scan_from < seq) s.scan_from = seq;  // earlier incarnations end at their restart
  }
  if (seq < s.scan_from) {
    report(Violation::reorder, stream, now,
           "qos seq " + std::to_string(seq) + " delivered after a later qos message of its sender");
    return;
  }
  for (uint32_t k = s.scan_from; k < seq; ++k) {
    Record& earlier = s.records[k];
    if (earlier.epoch != r.epoch || earlier.cls == MsgClass::nonqos) continue;
    if (earlier.flags & (kDelivered | kLostUnread)) continue;
    if (mid0_lost_case(s, r.epoch)) {
      ++counts_.v1_mid0_lost;
      resolve(earlier);
      earlier.flags |= kLostUnread;  // settled: counted once, as v1_mid0_lost
      continue;
    }
    report(Violation::loss, stream, now,
           "qos seq " + std::to_string(k) + " (mid " + std::to_string(earlier.mid) +
               ") skipped: seq " + std::to_string(seq) + " delivered first; " + group_history(s, k));
  }
  s.scan_from = seq + 1;
}

// PROTOCOL.md §6b: the receiver forgets the 8 ids of mid m's byte only when
// it accepts an id of the byte 16 before it. Describes those writes since the
// previous use of m's byte: class and whether any was delivered.
std::string Checker::group_history(const Stream& s, uint32_t seq) const {
  const Record& r = s.records[seq];
  unsigned group = ((r.mid >> 3) + 16) & 31;
  std::string out = "forgetting group mids " + std::to_string(8 * group) + ".." + std::to_string(8 * group + 7) + ":";
  unsigned writes = 0;
  for (uint32_t k = seq; k-- > 0 && writes < 254;) {
    const Record& e = s.records[k];
    if (e.epoch != r.epoch) break;
    if (!(e.flags & kWritten)) continue;
    ++writes;
    if ((e.mid >> 3) != group) continue;
    out += " " + std::to_string(e.mid) + (e.cls == MsgClass::nonqos ? "n" : "q") +
           ((e.flags & kDelivered) ? "+" : "-");
  }
  return out;
}

void Checker::lost_unread(uint32_t stream, const uint8_t* payload, size_t len) {
  uint32_t from, seq;
  MsgClass cls;
  if (!parse(payload, len, &from, &seq, &cls) || from != stream) return;
  Record& r = streams_[stream].records[seq];
  if (r.flags & (kDelivered | kLostUnread)) return;
  resolve(r);
  r.flags |= kLostUnread;
  if (cls != MsgClass::nonqos) ++counts_.lost_unread;
}

void Checker::sender_restarted(uint32_t stream) {
  Stream& s = streams_[stream];
  for (uint32_t k = s.epoch_first_seq; k < s.records.size(); ++k) {
    Record& r = s.records[k];
    if (r.flags & (kDelivered | kLostUnread)) continue;
    // Acknowledged but not delivered is not the restart's doing: leave it for
    // the gap check and finish().
    if ((r.flags & kAcked) && r.cls != MsgClass::nonqos) continue;
    resolve(r);
    r.flags |= kOrphaned;
  }
  ++s.epoch;
  s.epoch_first_seq = static_cast<uint32_t>(s.records.size());
  s.ticket_seq.clear();
  s.mid0_seq.push_back(~0u);
}

void Checker::receiver_restarted(uint32_t stream) { ++streams_[stream].rx_epoch; }

void Checker::report(Violation kind, uint32_t stream, uint64_t now, std::string detail) {
  ++counts_.violations[static_cast<size_t>(kind)];
  if (violations_.size() < 64) violations_.push_back({kind, stream, now, std::move(detail)});
}

void Checker::finish(uint64_t now, bool deadline_passed) {
  for (uint32_t id = 0; id < streams_.size(); ++id) {
    Stream& s = streams_[id];
    for (uint32_t k = 0; k < s.records.size(); ++k) {
      Record& r = s.records[k];
      bool delivered = r.flags & kDelivered;
      if (r.cls == MsgClass::nonqos) {
        if (delivered) ++counts_.nonqos_delivered;
        if (r.flags & kWritten) {
          ++counts_.nonqos_written;
          if (!delivered) ++counts_.nonqos_lost;
        } else {
          ++counts_.nonqos_unwritten;
        }
        continue;
      }
      ++counts_.qos_messages;
      if (delivered) {
        ++counts_.qos_delivered;
      } else if (r.flags & kOrphaned) {
        ++counts_.lost_with_sender;
      } else if (r.flags & kLostUnread) {
        // counted when it happened (lost_unread or v1_mid0_lost)
      } else if (r.flags & kAcked) {
        if (mid0_lost_case(s, r.epoch)) {
          ++counts_.v1_mid0_lost;
        } else {
          report(Violation::loss, id, now,
                 "qos seq " + std::to_string(k) + " (mid " + std::to_string(r.mid) +
                     ") acknowledged but never delivered");
        }
      } else if (deadline_passed) {
        report(Violation::liveness, id, now,
               "qos seq " + std::to_string(k) + (r.flags & kWritten ? " written" : " still queued") +
                   " but not delivered within the liveness bound after faults stopped");
      }
    }
  }
}

}  // namespace resilink::sim
