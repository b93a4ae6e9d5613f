#include "resilink/sim/trace.h"

#include <vector>

namespace resilink::sim {

const char* trace_kind_name(TraceKind k) {
  static const char* const names[] = {
      "timer",   "connect", "connect_fail", "accept",      "id_line",      "replace",
      "handshake_timeout",  "link_up",      "link_down",   "send",         "deliver",
      "fin",     "rst",     "write",        "read",        "ack",          "outage_start",
      "outage_end",         "half_open_start",             "reset",        "reboot",
      "boot",    "server_restart",          "server_up",   "reader_stall", "edge_probe",
      "violation",          "quiet"};
  unsigned i = static_cast<unsigned>(k);
  return i < sizeof names / sizeof names[0] ? names[i] : "unknown";
}

std::string Trace::format(const TraceEntry& e) const {
  char who[32];
  if (e.end == ~0u)
    std::snprintf(who, sizeof who, "world");
  else if (e.end < clients_)
    std::snprintf(who, sizeof who, "client %u", e.end);
  else
    std::snprintf(who, sizeof who, "server[%u]", e.end - clients_);
  char line[160];
  std::snprintf(line, sizeof line, "  t=%llu.%03llu %-10s %-17s a=%llu b=%llu",
                static_cast<unsigned long long>(e.at / 1000),
                static_cast<unsigned long long>(e.at % 1000), who, trace_kind_name(e.kind),
                static_cast<unsigned long long>(e.a), static_cast<unsigned long long>(e.b));
  return line;
}

std::string Trace::tail(size_t n, uint32_t a, uint32_t b) const {
  size_t available = count_ < kRing ? static_cast<size_t>(count_) : kRing;
  std::vector<const TraceEntry*> picked;
  for (size_t k = 0; k < available && picked.size() < n; ++k) {
    const TraceEntry& e = ring_[(count_ - 1 - k) % kRing];
    if (e.end == a || e.end == b || e.end == ~0u) picked.push_back(&e);
  }
  std::string out;
  for (size_t k = picked.size(); k-- > 0;) {
    out += format(*picked[k]);
    out += '\n';
  }
  return out;
}

}  // namespace resilink::sim
