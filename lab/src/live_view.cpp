#include "resilink/lab/live_view.h"

#include <fmt/format.h>

#include <algorithm>

namespace resilink::lab {

namespace {

constexpr size_t kRecentEvents = 6;
constexpr double kPlainStatusEveryMs = 10000;

std::string detection_text(double ms) { return ms < 0 ? "-" : fmt::format("{:.0f}", ms); }

std::string link_text(const LaneSnapshot& s) {
  std::string link = s.client_up && s.server_up ? "up" : s.client_up || s.server_up ? "half" : "down";
  if (s.active_faults > 0) link += " (" + s.active_fault + ")";
  return link;
}

}  // namespace

LiveView::LiveView(Recorder& recorder, std::FILE* out, bool live, std::string heading)
    : recorder_(recorder), out_(out), live_(live), heading_(std::move(heading)) {}

std::string LiveView::table(const std::string& status) const {
  std::string t;
  t += fmt::format("{}  {}\n", heading_, status);
  t += fmt::format("{:<7}{:<20}{:>9}  {:>21}  {:>21}  {:>6}{:>6}  {:>11}\n", "client", "link",
                   "outages", "up: sent/acked/deliv", "down: sent/acked/deliv", "retx", "dups",
                   "detect ms");
  uint64_t dup = 0, reordered = 0, unexpected = 0;
  for (size_t i = 0; i < recorder_.lanes(); ++i) {
    LaneSnapshot s = recorder_.snapshot(i);
    const core::EngineStats& c = s.stats[0];
    const core::EngineStats& v = s.stats[1];
    t += fmt::format("{:<7}{:<20}{:>4}/{:<4}  {:>21}  {:>21}  {:>6}{:>6}  {:>11}\n", i + 1, link_text(s),
                     s.outages_declared[0], s.outages_declared[1],
                     fmt::format("{}/{}/{}", s.sent[0], c.messages_acked, s.delivered[0]),
                     fmt::format("{}/{}/{}", s.sent[1], v.messages_acked, s.delivered[1]),
                     c.retransmits + v.retransmits, c.duplicates_discarded + v.duplicates_discarded,
                     detection_text(s.last_detection_ms[0]) + "/" + detection_text(s.last_detection_ms[1]));
    dup += s.duplicated[0] + s.duplicated[1];
    reordered += s.reordered[0] + s.reordered[1];
    unexpected += s.unexpected[0] + s.unexpected[1];
  }
  t += fmt::format("delivered twice: {}   reordered: {}   unexpected: {}   "
                   "(outages: declared by client/server; detect: last, client/server)\n",
                   dup, reordered, unexpected);
  return t;
}

void LiveView::update(const std::string& status) {
  std::vector<std::string> events = recorder_.take_events();
  if (!live_) {
    for (const std::string& e : events) fmt::print(out_, "{}\n", e);
    double now = recorder_.now_ms();
    if (now - last_plain_status_ms_ >= kPlainStatusEveryMs) {
      last_plain_status_ms_ = now;
      fmt::print(out_, "{}", table(status));
    }
    std::fflush(out_);
    return;
  }
  for (std::string& e : events) recent_.push_back(std::move(e));
  if (recent_.size() > kRecentEvents)
    recent_.erase(recent_.begin(), recent_.end() - static_cast<long>(kRecentEvents));
  std::string frame = table(status);
  for (const std::string& e : recent_) frame += "  " + e + "\n";
  // Back to the top of the previous frame, then overwrite it line by line.
  std::string out;
  if (drawn_lines_ > 0) out += fmt::format("\x1b[{}F", drawn_lines_);
  int lines = 0;
  size_t pos = 0;
  while (pos < frame.size()) {
    size_t nl = frame.find('\n', pos);
    out += frame.substr(pos, nl - pos) + "\x1b[K\n";
    ++lines;
    pos = nl + 1;
  }
  for (int i = lines; i < drawn_lines_; ++i) out += "\x1b[K\n";  // a shorter frame: blank the rest
  drawn_lines_ = std::max(lines, drawn_lines_);
  std::fputs(out.c_str(), out_);
  std::fflush(out_);
}

void LiveView::finish(const std::string& status) {
  if (live_) {
    update(status);
    return;
  }
  for (const std::string& e : recorder_.take_events()) fmt::print(out_, "{}\n", e);
  fmt::print(out_, "{}", table(status));
  std::fflush(out_);
}

}  // namespace resilink::lab
