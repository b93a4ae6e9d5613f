// The outage timeline picture: one lane per client on a shared time axis,
// fault bands shaded, message latency as dots on a log scale, and the marks
// where an end declared the outage or the link came back. Drawn as a
// standalone SVG document so people can look rather than read.
//
// Pure drawing: the caller collects the Timeline (the demo does), this file
// only turns it into bytes. Same input, same bytes. Input outside the picture
// is clamped or dropped, never trusted: lane indices past `lanes` are dropped;
// times are clipped to 0..duration_ms (points and marks outside are dropped,
// bands are cut to the part inside); latency is clamped to 0.1 ms .. 10 s.
// Points are thinned (per lane, direction and 2-pixel column only the lowest
// and highest latency are drawn) so 100,000 messages stay a small file; the
// footnote says how many were drawn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace resilink::lab {

// A fault the proxy made on one lane: "outage", "half_open", "reset_peer",
// "latency", ... One colour per kind. end_ms == start_ms is an instant fault
// (drawn as a thin line).
struct TimelineBand {
  size_t lane = 0;
  double start_ms = 0;
  double end_ms = 0;
  std::string kind;
};

enum class MarkKind { client_detected, server_detected, link_up };

// An end declared the outage (client or server), or the link came back.
struct TimelineMark {
  size_t lane = 0;
  double at_ms = 0;
  MarkKind kind = MarkKind::link_up;
};

// A message delivered at at_ms, latency_ms after it was due to be sent;
// upstream = client -> server.
struct TimelinePoint {
  size_t lane = 0;
  double at_ms = 0;
  double latency_ms = 0;
  bool upstream = true;
};

struct Timeline {
  std::string title;              // e.g. "resilink demo: 4 clients, T=1000 ms, seed 7"
  double duration_ms = 0;         // x axis 0..duration_ms; <= 0 means fit the data
  uint32_t timeout_ms = 0;        // T: reference lines at T and T + T/4 (none when 0)
  std::vector<std::string> lanes; // one per client, e.g. "client 1"
  std::vector<TimelineBand> bands;
  std::vector<TimelineMark> marks;
  std::vector<TimelinePoint> points;
};

// A complete standalone SVG document (about 1200 px wide). Elements carry
// classes a reader (or test) can count: "band", "mark client-detected",
// "mark server-detected", "mark link-up", "pt up" / "pt down", "lane-label",
// "title".
std::string render_timeline_svg(const Timeline& timeline);

// Renders and writes to `path`. On failure returns false and, when `error` is
// not null, sets it to a message naming the path and the errno text.
bool write_timeline_svg(const Timeline& timeline, const std::string& path, std::string* error);

}  // namespace resilink::lab
