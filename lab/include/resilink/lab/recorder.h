// The soak's recorder: every fault, link change and message of a run, checked
// as it happens and summarised at the end.
//
// Lanes are clients (0-based). A fault is recorded per lane (a fault proxy per
// client) or for all lanes at once (a link shared by every client). Messages
// carry their sequence number and the time they were due to be sent, so the
// receiving side can classify each delivery without asking the sender:
//
//   "<seq> <due_us> <padding>"
//
// From these the recorder counts, per direction, Jepsen's four outcomes of a
// qos message (delivered once; lost; duplicated; reordered) plus unexpected
// deliveries (a payload that was never sent), and measures
// - detection: fault start to each end declaring the outage,
// - recovery: fault end to the first message delivered on that lane,
// - latency: due time to delivery, steady state apart from deliveries whose
//   journey overlapped a fault or a link change.
//
// Thread-safe: the server thread, the fault thread and every client thread
// call it; the view and the report read consistent snapshots.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "resilink/core/engine.h"
#include "resilink/lab/distribution.h"
#include "resilink/lab/timeline_svg.h"

namespace resilink::lab {

enum class End { client, server };
enum class Direction { up, down };  // up: client to server
const char* to_string(End end);
const char* to_string(Direction direction);

// Faults that make an outage at both ends (the link carries nothing one way
// or both): each counts as an outage and is expected to be detected.
bool is_outage_kind(std::string_view kind);

// The message a soak sends: "<seq> <due_us> " then padding up to `size` bytes.
std::string make_soak_message(uint64_t seq, uint64_t due_us, size_t size);

struct LaneSnapshot {
  bool client_up = false, server_up = false;
  int active_faults = 0;
  std::string active_fault;                 // kind of one active fault, for the view
  uint64_t faults = 0;                      // faults started on this lane
  uint64_t outages_declared[2] = {0, 0};    // by End
  uint64_t sent[2] = {0, 0};                // by Direction: queued by the sender
  uint64_t delivered[2] = {0, 0};           // first deliveries
  uint64_t duplicated[2] = {0, 0}, reordered[2] = {0, 0}, unexpected[2] = {0, 0};
  core::EngineStats stats[2];               // by End: the engines' own counters
  double last_detection_ms[2] = {-1, -1};   // by End; -1: none yet
};

struct Counts {
  uint64_t sent = 0, delivered = 0, lost = 0, duplicated = 0, reordered = 0, unexpected = 0;
};

struct SoakReport {
  double elapsed_ms = 0;
  uint32_t timeout_ms = 0;
  size_t lanes = 0;
  uint64_t faults = 0;            // faults of every kind (one hitting every lane counts once)
  uint64_t outages = 0;           // outage-kind faults, counted the same way
  uint64_t link_outages = 0;      // outage-kind faults times the lanes each hit
  uint64_t ridden_through = 0;    // outages met by a link up at both ends that no end declared (short)
  uint64_t began_down = 0;        // outages that began while an end was still down from an earlier one
  uint64_t missed = 0;            // outages long enough to be declared that an end never declared
  uint64_t unexplained_downs = 0; // links declared down with no fault to explain it (false outages)
  std::vector<std::pair<size_t, double>> false_outages;  // (lane, ms) of each
  Counts messages[2];             // by Direction
  Distribution detection[2];      // by End, ms from fault start
  uint64_t detection_within_timeout[2] = {0, 0};
  uint64_t detection_within_bound[2] = {0, 0};  // timeout + timeout/4
  Distribution recovery;          // ms from fault end to the next delivery on the lane
  Distribution latency_steady, latency_disturbed;
  bool drained = true;            // everything sent was delivered before the end
  bool ok() const;                // no loss, duplicate, reorder or unexpected; drained
};

class Recorder {
 public:
  // A clock in microseconds (steady; any origin).
  using Clock = std::function<uint64_t()>;
  // metrics_path: JSON lines, one object per event (empty: none). clock: the
  // steady clock unless a test gives its own.
  Recorder(size_t lanes, uint32_t timeout_ms, const std::string& metrics_path, std::string* error,
           Clock clock = {});
  ~Recorder();

  double now_ms() const;                 // since the recorder started
  uint64_t now_us() const;
  double ms_at(std::chrono::steady_clock::time_point at) const;  // on the recorder's clock
  // Keep every delivery's latency for the timeline picture (memory grows
  // with the run: off for unbounded soaks).
  void keep_points(bool keep) { keep_points_ = keep; }
  size_t lanes() const { return lanes_.size(); }
  uint32_t timeout_ms() const { return timeout_ms_; }

  // A fault became active or inactive; lane < 0: every lane. `at_ms` on the
  // recorder's clock (negative: now).
  void fault(int lane, std::string_view name, std::string_view kind, bool active, double at_ms = -1);
  void link(size_t lane, End end, bool up, core::OutageReason why = core::OutageReason::none);
  void sent(size_t lane, Direction direction, uint64_t seq);
  void delivered(size_t lane, Direction direction, std::string_view payload);
  void engine_stats(size_t lane, End end, const core::EngineStats& stats);
  // A free-form event for the metrics file and the event log.
  void note(std::string_view text);

  LaneSnapshot snapshot(size_t lane) const;
  // Outage-kind faults that have ended (one hitting every lane counts once).
  uint64_t outages_ended() const;
  // Everything sent has been delivered, both ways, on every lane.
  bool drained() const;
  // The run as a picture's data (call after finish()).
  Timeline timeline(std::string title) const;
  // Lines describing events since the last call (for a plain-text view).
  std::vector<std::string> take_events();
  // Analyses the run; call once, after traffic has stopped.
  SoakReport finish(bool drained);

 private:
  struct FaultSpan {
    std::string name, kind;
    double start = 0, end = -1;  // end < 0: still active
    bool declared[2] = {false, false};
    bool up_at_start[2] = {false, false};
  };
  struct LinkEvent {
    double at;
    bool up;
  };
  struct Stream {
    uint64_t sent = 0;
    std::vector<uint8_t> seen;  // deliveries per seq (saturating)
    uint64_t next_expected = 0; // highest delivered + 1
    uint64_t delivered = 0, duplicated = 0, reordered = 0, unexpected = 0;
  };
  struct Lane {
    std::vector<FaultSpan> faults;
    std::vector<LinkEvent> links[2];
    bool up[2] = {false, false};
    double last_up[2] = {-1, -1};
    uint64_t declared[2] = {0, 0};
    double last_detection[2] = {-1, -1};
    double last_disturbance = -1;   // last fault or link change
    int active_faults = 0;
    Stream streams[2];
    std::vector<double> deliveries; // times, for recovery
    std::vector<TimelinePoint> points;
    core::EngineStats stats[2];
  };

  // True when an outage-kind fault ended.
  bool fault_locked(size_t lane, std::string_view name, std::string_view kind, bool active, double at);
  void event_locked(const std::string& json, const std::string& text);

  uint32_t timeout_ms_;
  Clock clock_;
  uint64_t start_us_;
  mutable std::mutex mutex_;
  std::vector<Lane> lanes_;
  uint64_t fault_events_ = 0, outage_events_ = 0, outages_ended_ = 0;
  // Links declared down with no fault to explain them yet: (lane, time).
  std::vector<std::pair<size_t, double>> suspect_downs_;
  Distribution detection_[2];
  uint64_t within_timeout_[2] = {0, 0}, within_bound_[2] = {0, 0};
  Distribution latency_steady_, latency_disturbed_;
  std::vector<std::string> pending_events_;
  std::FILE* metrics_ = nullptr;
  bool keep_points_ = false;
};

// The report as text (several lines), and the one-line verdict.
std::string format_report(const SoakReport& report);
std::string format_summary(const char* what, const SoakReport& report);

}  // namespace resilink::lab
