#include "resilink/lab/recorder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

namespace resilink::lab {

namespace {

uint64_t steady_us() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count());
}

size_t index(End end) { return end == End::client ? 0 : 1; }
size_t index(Direction direction) { return direction == Direction::up ? 0 : 1; }

// How late after a fault's end an outage declaration is still its doing: a
// link that stayed up through the fault hears its peer again at once.
double attribution_slack(uint32_t timeout_ms) { return timeout_ms / 2.0; }
// Faults further back than this explain nothing now.
constexpr double kLongestFaultMs = 600000;
// How long after a link went down the fault proxy's report of the reset that
// caused it may come.
constexpr double kReportLagMs = 100;
// Faults that close connections (resets, cut streams) explain a link going
// down for this long after they end.
bool closes_connections(std::string_view kind) {
  return kind == "reset_peer" || kind == "limit_data" || kind == "slow_close";
}

bool parse_message(std::string_view payload, uint64_t& seq, uint64_t& due_us) {
  const char* p = payload.data();
  const char* end = p + payload.size();
  auto r1 = std::from_chars(p, end, seq);
  if (r1.ec != std::errc() || r1.ptr == end || *r1.ptr != ' ') return false;
  auto r2 = std::from_chars(r1.ptr + 1, end, due_us);
  return r2.ec == std::errc() && (r2.ptr == end || *r2.ptr == ' ');
}

}  // namespace

const char* to_string(End end) { return end == End::client ? "client" : "server"; }
const char* to_string(Direction direction) { return direction == Direction::up ? "up" : "down"; }

bool is_outage_kind(std::string_view kind) { return kind == "outage" || kind == "half_open"; }

std::string make_soak_message(uint64_t seq, uint64_t due_us, size_t size) {
  std::string message = fmt::format("{} {} ", seq, due_us);
  // Printable padding that varies with seq, so a corrupted or misrouted
  // payload does not look like a valid one by accident.
  for (size_t i = 0; message.size() < size; ++i)
    message.push_back(static_cast<char>('a' + (seq + i) % 26));
  return message;
}

bool SoakReport::ok() const {
  for (const Counts& c : messages)
    if (c.lost || c.duplicated || c.reordered || c.unexpected) return false;
  return drained;
}

Recorder::Recorder(size_t lanes, uint32_t timeout_ms, const std::string& metrics_path,
                   std::string* error, Clock clock)
    : timeout_ms_(timeout_ms),
      clock_(clock ? std::move(clock) : Clock(steady_us)),
      start_us_(clock_()),
      lanes_(lanes) {
  if (!metrics_path.empty()) {
    metrics_ = std::fopen(metrics_path.c_str(), "w");
    if (!metrics_ && error)
      *error = fmt::format("cannot write metrics to '{}': {}", metrics_path, std::strerror(errno));
  }
}

Recorder::~Recorder() {
  if (metrics_) std::fclose(metrics_);
}

uint64_t Recorder::now_us() const { return clock_() - start_us_; }
double Recorder::now_ms() const { return static_cast<double>(now_us()) / 1000.0; }

double Recorder::ms_at(std::chrono::steady_clock::time_point at) const {
  using namespace std::chrono;
  auto us = duration_cast<microseconds>(at.time_since_epoch()).count();
  return (static_cast<double>(us) - static_cast<double>(start_us_)) / 1000.0;
}

void Recorder::event_locked(const std::string& json, const std::string& text) {
  if (metrics_) {
    std::fputs(json.c_str(), metrics_);
    std::fputc('\n', metrics_);
    std::fflush(metrics_);
  }
  if (!text.empty()) pending_events_.push_back(text);
}

void Recorder::note(std::string_view text) {
  std::lock_guard lock(mutex_);
  double t = now_ms();
  nlohmann::json j = {{"t_ms", t}, {"event", "note"}, {"text", text}};
  event_locked(j.dump(), fmt::format("{:8.3f}s {}", t / 1000, text));
}

void Recorder::fault(int lane, std::string_view name, std::string_view kind, bool active, double at_ms) {
  std::lock_guard lock(mutex_);
  double at = at_ms < 0 ? now_ms() : at_ms;
  bool outage_ended = false;
  if (lane < 0) {
    for (size_t i = 0; i < lanes_.size(); ++i) outage_ended = fault_locked(i, name, kind, active, at) || outage_ended;
  } else if (static_cast<size_t>(lane) < lanes_.size()) {
    outage_ended = fault_locked(static_cast<size_t>(lane), name, kind, active, at);
  } else {
    return;
  }
  if (active) {
    ++fault_events_;
    if (is_outage_kind(kind)) ++outage_events_;
  }
  if (outage_ended) ++outages_ended_;
}

bool Recorder::fault_locked(size_t lane_index, std::string_view name, std::string_view kind,
                            bool active, double at) {
  Lane& lane = lanes_[lane_index];
  lane.last_disturbance = std::max(lane.last_disturbance, at);
  double duration = 0;
  if (active) {
    FaultSpan span;
    span.name = name;
    span.kind = kind;
    span.start = at;
    span.up_at_start[0] = lane.up[0];
    span.up_at_start[1] = lane.up[1];
    lane.faults.push_back(std::move(span));
    ++lane.active_faults;
  } else {
    auto it = std::find_if(lane.faults.rbegin(), lane.faults.rend(),
                           [&](const FaultSpan& f) { return f.end < 0 && f.name == name; });
    if (it == lane.faults.rend()) return false;  // never seen starting: ignore
    it->end = at;
    duration = at - it->start;
    --lane.active_faults;
  }
  nlohmann::json j = {{"t_ms", at}, {"event", active ? "fault_start" : "fault_end"},
                      {"lane", lane_index + 1}, {"name", name}, {"kind", kind}};
  if (!active) j["duration_ms"] = duration;
  event_locked(j.dump(), active ? fmt::format("{:8.3f}s client {}: {} starts", at / 1000, lane_index + 1, name)
                                : fmt::format("{:8.3f}s client {}: {} ends after {:.0f} ms", at / 1000,
                                              lane_index + 1, name, duration));
  return !active && is_outage_kind(kind);
}

void Recorder::link(size_t lane_index, End end, bool up, core::OutageReason why) {
  std::lock_guard lock(mutex_);
  if (lane_index >= lanes_.size()) return;
  double t = now_ms();
  Lane& lane = lanes_[lane_index];
  size_t e = index(end);
  const bool was_up = lane.up[e];
  lane.up[e] = up;
  if (up) lane.last_up[e] = t;
  lane.links[e].push_back({t, up});
  lane.last_disturbance = t;
  nlohmann::json j = {{"t_ms", t}, {"event", up ? "link_up" : "link_down"}, {"lane", lane_index + 1},
                      {"end", to_string(end)}};
  std::string text;
  if (up) {
    text = fmt::format("{:8.3f}s client {}: link up at the {}", t / 1000, lane_index + 1, to_string(end));
  } else if (!was_up) {
    // A connection attempt that never came up (the engine reports those as
    // refusals): no outage to declare.
    j["event"] = "connect_failed";
    j["reason"] = core::outage_reason_name(why);
    text = fmt::format("{:8.3f}s client {}: a connection attempt fails at the {} ({})", t / 1000,
                       lane_index + 1, to_string(end), core::outage_reason_name(why));
  } else {
    ++lane.declared[e];
    j["reason"] = core::outage_reason_name(why);
    // Which faults explain it? Every outage-kind fault under way (or just
    // over) is declared by this event. It measures a detection only when it
    // is clean: one fault alone on the lane since it started, and the link
    // that goes down is the one that was up when it started (not a
    // connection attempt made during the fault, nor a stale one). A fault
    // that closes connections explains it for a while after.
    const double bound = timeout_ms_ + timeout_ms_ / 4.0;
    bool explained = false;
    FaultSpan* candidate = nullptr;
    size_t covering = 0;  // outage-kind faults this event declares
    for (auto it = lane.faults.rbegin(); it != lane.faults.rend(); ++it) {
      FaultSpan& f = *it;
      if (f.start > t) continue;
      if (t - f.start > kLongestFaultMs) break;
      double end_t = f.end < 0 ? t : f.end;
      if (is_outage_kind(f.kind) && t <= end_t + attribution_slack(timeout_ms_)) {
        explained = true;
        ++covering;
        if (!f.declared[e]) {
          f.declared[e] = true;
          candidate = &f;
        }
      } else if ((closes_connections(f.kind) || is_outage_kind(f.kind)) && t <= end_t + bound + timeout_ms_) {
        explained = true;
      }
    }
    FaultSpan* detected = nullptr;
    if (candidate && covering == 1 && was_up && candidate->up_at_start[e] && lane.last_up[e] < candidate->start) {
      // Clean only if no other fault was still under way when it began.
      bool alone = std::none_of(lane.faults.begin(), lane.faults.end(), [&](const FaultSpan& f) {
        return &f != candidate && f.start < candidate->start && (f.end < 0 || f.end > candidate->start);
      });
      if (alone) detected = candidate;
    }
    if (detected) {
      double detection = t - detected->start;
      detection_[e].add(detection);
      if (detection <= timeout_ms_) ++within_timeout_[e];
      if (detection <= bound) ++within_bound_[e];
      lane.last_detection[e] = detection;
      j["detection_ms"] = detection;
      j["fault"] = detected->name;
    }
    // The fault proxy reports a reset just after doing it, so an end may see
    // it first: decided at the end of the run.
    if (!explained) suspect_downs_.push_back({lane_index, t});
    text = fmt::format("{:8.3f}s client {}: the {} declares the link down ({}){}", t / 1000,
                       lane_index + 1, to_string(end), core::outage_reason_name(why),
                       j.contains("detection_ms")
                           ? fmt::format(", {:.0f} ms after the fault began", j["detection_ms"].get<double>())
                           : "");
  }
  event_locked(j.dump(), text);
}

void Recorder::sent(size_t lane_index, Direction direction, uint64_t seq) {
  std::lock_guard lock(mutex_);
  if (lane_index >= lanes_.size()) return;
  Stream& s = lanes_[lane_index].streams[index(direction)];
  s.sent = std::max(s.sent, seq + 1);
  if (s.seen.size() < s.sent) s.seen.resize(s.sent, 0);
}

void Recorder::delivered(size_t lane_index, Direction direction, std::string_view payload) {
  uint64_t now = now_us();
  std::lock_guard lock(mutex_);
  if (lane_index >= lanes_.size()) return;
  Lane& lane = lanes_[lane_index];
  Stream& s = lane.streams[index(direction)];
  uint64_t seq = 0, due_us = 0;
  auto unexpected = [&](std::string why) {
    ++s.unexpected;
    nlohmann::json j = {{"t_ms", now / 1000.0}, {"event", "unexpected"}, {"lane", lane_index + 1},
                        {"direction", to_string(direction)}, {"why", why}};
    event_locked(j.dump(), fmt::format("client {}: UNEXPECTED message {}: {}", lane_index + 1,
                                       to_string(direction), why));
  };
  if (!parse_message(payload, seq, due_us)) return unexpected("unparseable payload");
  if (seq >= s.sent) return unexpected(fmt::format("seq {} was never sent", seq));
  uint8_t& seen = s.seen[seq];
  if (seen > 0) {
    ++s.duplicated;
    if (seen < 255) ++seen;
    nlohmann::json j = {{"t_ms", now / 1000.0}, {"event", "duplicate"}, {"lane", lane_index + 1},
                        {"direction", to_string(direction)}, {"seq", seq}};
    event_locked(j.dump(), fmt::format("client {}: DUPLICATE {} message {}", lane_index + 1,
                                       to_string(direction), seq));
    return;
  }
  seen = 1;
  ++s.delivered;
  if (seq + 1 < s.next_expected) {
    ++s.reordered;
    nlohmann::json j = {{"t_ms", now / 1000.0}, {"event", "reordered"}, {"lane", lane_index + 1},
                        {"direction", to_string(direction)}, {"seq", seq}};
    event_locked(j.dump(), fmt::format("client {}: REORDERED {} message {}", lane_index + 1,
                                       to_string(direction), seq));
  }
  s.next_expected = std::max(s.next_expected, seq + 1);
  double t = static_cast<double>(now) / 1000.0;
  double due = static_cast<double>(due_us) / 1000.0;
  double latency = std::max(0.0, t - due);
  bool disturbed = lane.active_faults > 0 || lane.last_disturbance >= due;
  (disturbed ? latency_disturbed_ : latency_steady_).add(latency);
  lane.deliveries.push_back(t);
  if (keep_points_) lane.points.push_back({lane_index, t, latency, direction == Direction::up});
  if (metrics_) {
    // Latency of every message would swamp the file: one in 16, and every
    // disturbed one.
    if (disturbed || seq % 16 == 0) {
      nlohmann::json j = {{"t_ms", t}, {"event", "delivered"}, {"lane", lane_index + 1},
                          {"direction", to_string(direction)}, {"seq", seq},
                          {"latency_ms", latency}, {"disturbed", disturbed}};
      event_locked(j.dump(), "");
    }
  }
}

void Recorder::engine_stats(size_t lane_index, End end, const core::EngineStats& stats) {
  std::lock_guard lock(mutex_);
  if (lane_index < lanes_.size()) lanes_[lane_index].stats[index(end)] = stats;
}

LaneSnapshot Recorder::snapshot(size_t lane_index) const {
  std::lock_guard lock(mutex_);
  LaneSnapshot snap;
  if (lane_index >= lanes_.size()) return snap;
  const Lane& lane = lanes_[lane_index];
  snap.client_up = lane.up[0];
  snap.server_up = lane.up[1];
  snap.active_faults = lane.active_faults;
  for (auto it = lane.faults.rbegin(); it != lane.faults.rend(); ++it)
    if (it->end < 0) {
      snap.active_fault = it->kind;
      break;
    }
  snap.faults = lane.faults.size();
  for (size_t i = 0; i < 2; ++i) {
    snap.outages_declared[i] = lane.declared[i];
    snap.sent[i] = lane.streams[i].sent;
    snap.delivered[i] = lane.streams[i].delivered;
    snap.duplicated[i] = lane.streams[i].duplicated;
    snap.reordered[i] = lane.streams[i].reordered;
    snap.unexpected[i] = lane.streams[i].unexpected;
    snap.stats[i] = lane.stats[i];
    snap.last_detection_ms[i] = lane.last_detection[i];
  }
  return snap;
}

uint64_t Recorder::outages_ended() const {
  std::lock_guard lock(mutex_);
  return outages_ended_;
}

bool Recorder::drained() const {
  std::lock_guard lock(mutex_);
  for (const Lane& lane : lanes_)
    for (const Stream& s : lane.streams)
      if (s.delivered < s.sent) return false;
  return true;
}

std::vector<std::string> Recorder::take_events() {
  std::lock_guard lock(mutex_);
  std::vector<std::string> events;
  events.swap(pending_events_);
  return events;
}

SoakReport Recorder::finish(bool drained) {
  std::lock_guard lock(mutex_);
  SoakReport r;
  r.elapsed_ms = now_ms();
  r.timeout_ms = timeout_ms_;
  r.lanes = lanes_.size();
  for (const auto& [lane_index, t] : suspect_downs_) {
    const Lane& lane = lanes_[lane_index];
    // Now that every fault is known (a report may have come just after).
    const double bound = timeout_ms_ + timeout_ms_ / 4.0;
    bool explained = std::any_of(lane.faults.begin(), lane.faults.end(), [&, t = t](const FaultSpan& f) {
      double end_t = f.end < 0 ? r.elapsed_ms : f.end;
      return (closes_connections(f.kind) || is_outage_kind(f.kind)) && f.start <= t + kReportLagMs &&
             t <= end_t + bound + timeout_ms_;
    });
    if (!explained) {
      ++r.unexplained_downs;
      r.false_outages.push_back({lane_index, t});
    }
  }
  r.faults = fault_events_;
  r.outages = outage_events_;
  r.drained = drained;
  const double bound = timeout_ms_ + timeout_ms_ / 4.0;
  // Long enough that both ends must declare it, with room for scheduling.
  const double must_declare = bound + timeout_ms_ / 2.0;
  for (const Lane& lane : lanes_) {
    for (size_t i = 0; i < lane.faults.size(); ++i) {
      const FaultSpan& f = lane.faults[i];
      if (!is_outage_kind(f.kind)) continue;
      ++r.link_outages;
      if (!f.up_at_start[0] || !f.up_at_start[1])
        ++r.began_down;
      else if (!f.declared[0] && !f.declared[1])
        ++r.ridden_through;
      double end_t = f.end < 0 ? r.elapsed_ms : f.end;
      for (size_t e = 0; e < 2; ++e)
        if (f.up_at_start[e] && !f.declared[e] && end_t - f.start >= must_declare) ++r.missed;
      if (f.end < 0) continue;
      auto next = std::upper_bound(lane.deliveries.begin(), lane.deliveries.end(), f.end);
      if (next == lane.deliveries.end()) continue;
      bool interrupted = i + 1 < lane.faults.size() && lane.faults[i + 1].start < *next;
      if (!interrupted) r.recovery.add(*next - f.end);
    }
    for (size_t d = 0; d < 2; ++d) {
      const Stream& s = lane.streams[d];
      Counts& c = r.messages[d];
      c.sent += s.sent;
      c.delivered += s.delivered;
      c.duplicated += s.duplicated;
      c.reordered += s.reordered;
      c.unexpected += s.unexpected;
      for (uint64_t seq = 0; seq < s.sent; ++seq)
        if (s.seen[seq] == 0) ++c.lost;
    }
  }
  for (size_t e = 0; e < 2; ++e) {
    r.detection[e] = detection_[e];
    r.detection_within_timeout[e] = within_timeout_[e];
    r.detection_within_bound[e] = within_bound_[e];
  }
  r.latency_steady = latency_steady_;
  r.latency_disturbed = latency_disturbed_;

  nlohmann::json j = {{"t_ms", r.elapsed_ms}, {"event", "report"}, {"faults", r.faults},
                      {"outages", r.outages}, {"link_outages", r.link_outages}, {"ridden_through", r.ridden_through}, {"began_down", r.began_down},
                      {"missed_detections", r.missed}, {"false_outages", r.unexplained_downs},
                      {"drained", r.drained}, {"ok", r.ok()}};
  auto dist = [](const Distribution& d) {
    return nlohmann::json{{"count", d.count()}, {"p50", d.p50()}, {"p99", d.p99()}, {"max", d.max()}};
  };
  for (size_t e = 0; e < 2; ++e) {
    j["detection_ms"][to_string(static_cast<End>(e))] = dist(r.detection[e]);
    const Counts& c = r.messages[e];
    j["messages"][to_string(static_cast<Direction>(e))] = {
        {"sent", c.sent}, {"delivered", c.delivered}, {"lost", c.lost},
        {"duplicated", c.duplicated}, {"reordered", c.reordered}, {"unexpected", c.unexpected}};
  }
  j["recovery_ms"] = dist(r.recovery);
  j["latency_ms"] = {{"steady", dist(r.latency_steady)}, {"across_outages", dist(r.latency_disturbed)}};
  for (const auto& [lane_index, t] : r.false_outages)
    j["false_outage_at"].push_back({{"lane", lane_index + 1}, {"t_ms", t}});
  event_locked(j.dump(), "");
  return r;
}

Timeline Recorder::timeline(std::string title) const {
  std::lock_guard lock(mutex_);
  Timeline tl;
  tl.title = std::move(title);
  tl.duration_ms = now_ms();
  tl.timeout_ms = timeout_ms_;
  for (size_t i = 0; i < lanes_.size(); ++i) {
    const Lane& lane = lanes_[i];
    tl.lanes.push_back(fmt::format("client {}", i + 1));
    for (const FaultSpan& f : lane.faults)
      tl.bands.push_back({i, f.start, f.end < 0 ? tl.duration_ms : f.end, f.kind});
    for (size_t e = 0; e < 2; ++e)
      for (const LinkEvent& ev : lane.links[e]) {
        // One link-up mark per recovery (the client's view), a detection mark per end.
        if (ev.up && e == 0) tl.marks.push_back({i, ev.at, MarkKind::link_up});
        if (!ev.up)
          tl.marks.push_back({i, ev.at, e == 0 ? MarkKind::client_detected : MarkKind::server_detected});
      }
    tl.points.insert(tl.points.end(), lane.points.begin(), lane.points.end());
  }
  return tl;
}

std::string format_report(const SoakReport& r) {
  std::string out;
  auto dist = [](const Distribution& d) {
    if (d.empty()) return std::string("none");
    return fmt::format("p50 {:.1f}  p99 {:.1f}  max {:.1f} ms  (n={})", d.p50(), d.p99(), d.max(), d.count());
  };
  double bound = r.timeout_ms + r.timeout_ms / 4.0;
  out += fmt::format("faults: {} over {:.1f} s, {} of them outages, which hit {} client links: {} ridden "
                     "through (too short to declare), {} began with the link already down, {} missed "
                     "detections, {} false outages\n",
                     r.faults, r.elapsed_ms / 1000, r.outages, r.link_outages, r.ridden_through, r.began_down,
                     r.missed, r.unexplained_downs);
  for (size_t e = 0; e < 2; ++e) {
    const Distribution& d = r.detection[e];
    double n = d.empty() ? 1 : static_cast<double>(d.count());
    out += fmt::format("detection at the {}: {}; {:.0f}% within T={} ms, {:.0f}% within T+T/4={:.0f} ms\n",
                       to_string(static_cast<End>(e)), dist(d), 100.0 * r.detection_within_timeout[e] / n,
                       r.timeout_ms, 100.0 * r.detection_within_bound[e] / n, bound);
  }
  out += fmt::format("recovery (fault over to next delivery): {}\n", dist(r.recovery));
  out += fmt::format("latency, steady state: {}\n", dist(r.latency_steady));
  out += fmt::format("latency, across faults: {}\n", dist(r.latency_disturbed));
  for (size_t d = 0; d < 2; ++d) {
    const Counts& c = r.messages[d];
    out += fmt::format("messages {:4}: {} sent, {} delivered, {} lost, {} duplicated, {} reordered, "
                       "{} unexpected\n",
                       d == 0 ? "up" : "down", c.sent, c.delivered, c.lost, c.duplicated, c.reordered,
                       c.unexpected);
  }
  for (const auto& [lane, t] : r.false_outages)
    out += fmt::format("false outage: client {} at {:.3f} s\n", lane + 1, t / 1000);
  if (!r.drained) out += "NOT DRAINED: messages still undelivered when the run ended\n";
  return out;
}

std::string format_summary(const char* what, const SoakReport& r) {
  const Counts& up = r.messages[0];
  const Counts& down = r.messages[1];
  std::string messages = up.sent == down.sent
                             ? fmt::format("{} messages each way", up.sent)
                             : fmt::format("{} messages up and {} down", up.sent, down.sent);
  return fmt::format("{}: {} clients, {} outages, {}, {} lost, {} duplicated, {} reordered", what,
                     r.lanes, r.outages, messages, up.lost + down.lost,
                     up.duplicated + down.duplicated, up.reordered + down.reordered);
}

}  // namespace resilink::lab
