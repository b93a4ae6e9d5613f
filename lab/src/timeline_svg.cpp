#include "resilink/lab/timeline_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>
#include <map>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

namespace resilink::lab {
namespace {

// Layout, in pixels.
constexpr double kWidth = 1200;
constexpr double kPlotLeft = 130;           // lane labels and latency labels to the left
constexpr double kPlotRight = kWidth - 60;  // "T" / "T+T/4" labels to the right
constexpr double kPlotWidth = kPlotRight - kPlotLeft;
constexpr double kTop = 48;                 // below the title
constexpr double kMarkStrip = 20;           // glyphs at a lane's top: client detections above server's
constexpr double kLatencyHeight = 110;      // the latency plot under the strip
constexpr double kLaneHeight = kMarkStrip + kLatencyHeight;
constexpr double kLaneGap = 18;
constexpr double kColumnWidth = 2;          // thinning column
constexpr double kMinLatency = 0.1, kMaxLatency = 10000;  // the log axis, ms
constexpr double kPointRadius = 1.6;
constexpr const char* kUpColour = "#1f77b4";
constexpr const char* kDownColour = "#ff7f0e";
constexpr const char* kClientColour = "#08306b";
constexpr const char* kServerColour = "#a50f15";
constexpr const char* kLinkUpColour = "#238b45";

using Out = std::back_insert_iterator<std::string>;

std::string escape_xml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters other than tab and newline are not allowed in XML 1.0.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') c = ' ';
        out += c;
    }
  }
  return out;
}

// `style` is trusted attribute text written by this file.
void line(Out out, double x1, double y1, double x2, double y2, std::string_view style) {
  fmt::format_to(out, R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" {}/>)" "\n", x1, y1, x2, y2, style);
}

void rect(Out out, double x, double y, double width, double height, std::string_view style) {
  fmt::format_to(out, R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" {}/>)" "\n", x, y, width, height,
                 style);
}

// `style` is trusted; `content` is escaped.
void text(Out out, double x, double y, std::string_view style, const std::string& content) {
  fmt::format_to(out, R"(<text x="{:.1f}" y="{:.1f}" {}>{}</text>)" "\n", x, y, style, escape_xml(content));
}

// Band colours: the common kinds fixed, any other kind from a palette in
// sorted order, so the same set of kinds always gets the same colours.
std::map<std::string, std::string> band_colours(const std::vector<TimelineBand>& bands) {
  static const std::map<std::string, std::string> known = {
      {"outage", "#d62728"}, {"half_open", "#9467bd"}, {"reset_peer", "#8c564b"}, {"latency", "#bcbd22"}};
  static const char* const palette[] = {"#e377c2", "#17becf", "#7f7f7f", "#98df8a", "#c49c94"};
  std::map<std::string, std::string> colours;
  for (const auto& band : bands) colours.emplace(band.kind, "");
  size_t next = 0;
  for (auto& [kind, colour] : colours) {
    auto it = known.find(kind);
    colour = it != known.end() ? it->second : palette[next++ % std::size(palette)];
  }
  return colours;
}

// A step of 1, 2 or 5 times a power of ten seconds giving at most 12 ticks.
double tick_step_seconds(double duration_s) {
  for (double decade = 0.001;; decade *= 10)
    for (double factor : {1.0, 2.0, 5.0})
      if (duration_s / (factor * decade) <= 12) return factor * decade;
}

double fit_duration(const Timeline& t) {
  double end = 0;
  auto take = [&](double ms) { if (std::isfinite(ms)) end = std::max(end, ms); };
  for (const auto& b : t.bands) take(b.end_ms);
  for (const auto& m : t.marks) take(m.at_ms);
  for (const auto& p : t.points) take(p.at_ms);
  return end > 0 ? end : 1000;
}

struct Geometry {
  double duration_ms;
  double x(double ms) const { return kPlotLeft + ms / duration_ms * kPlotWidth; }
  bool in_range(double ms) const { return std::isfinite(ms) && ms >= 0 && ms <= duration_ms; }
  static double lane_top(size_t lane) { return kTop + static_cast<double>(lane) * (kLaneHeight + kLaneGap); }
  static double latency_y(size_t lane, double ms) {
    double decades = std::log10(std::clamp(ms, kMinLatency, kMaxLatency) / kMinLatency);
    return lane_top(lane) + kLaneHeight - decades / std::log10(kMaxLatency / kMinLatency) * kLatencyHeight;
  }
};

void draw_lanes(Out out, const Timeline& t) {
  static const char* const decade_labels[] = {"0.1 ms", "1 ms", "10 ms", "100 ms", "1 s", "10 s"};
  for (size_t lane = 0; lane < t.lanes.size(); ++lane) {
    double top = Geometry::lane_top(lane);
    rect(out, kPlotLeft, top, kPlotWidth, kLaneHeight, R"(fill="#fafafa" stroke="#bbb")");
    text(out, 8, top + kLaneHeight / 2, R"(class="lane-label" font-weight="bold")", t.lanes[lane]);
    double decade = kMinLatency;
    for (const char* label : decade_labels) {
      double y = Geometry::latency_y(lane, decade);
      line(out, kPlotLeft, y, kPlotRight, y, R"(stroke="#e4e4e4")");
      text(out, kPlotLeft - 4, y + 3, R"(font-size="9" text-anchor="end" fill="#666")", label);
      decade *= 10;
    }
    line(out, kPlotLeft, top + kMarkStrip, kPlotRight, top + kMarkStrip, R"(stroke="#ddd")");
    if (t.timeout_ms == 0) continue;
    double timeout = t.timeout_ms;
    // The two lines are only ~2 px apart on the log axis: T's label below, T+T/4's above.
    for (auto [ms, label, style, label_dy] :
         {std::tuple{timeout, "T", R"(class="ref" stroke="#444" stroke-dasharray="6 3")", 9},
          std::tuple{timeout * 1.25, "T+T/4", R"(class="ref" stroke="#444" stroke-dasharray="2 2")", -2}}) {
      double y = Geometry::latency_y(lane, ms);
      line(out, kPlotLeft, y, kPlotRight, y, style);
      text(out, kPlotRight + 4, y + label_dy, R"(font-size="9" fill="#444")", label);
    }
  }
}

void draw_bands(Out out, const Timeline& t, const Geometry& g, const std::map<std::string, std::string>& colours) {
  for (const auto& band : t.bands) {
    if (band.lane >= t.lanes.size() || !std::isfinite(band.start_ms) || !std::isfinite(band.end_ms)) continue;
    double start = std::min(band.start_ms, band.end_ms), end = std::max(band.start_ms, band.end_ms);
    if (end < 0 || start > g.duration_ms) continue;
    double x0 = g.x(std::max(start, 0.0)), x1 = g.x(std::min(end, g.duration_ms));
    double top = Geometry::lane_top(band.lane);
    std::string style = fmt::format(R"(class="band" data-kind="{}" )", escape_xml(band.kind));
    const std::string& colour = colours.at(band.kind);
    if (x1 - x0 < 1)  // an instant fault
      line(out, x0, top, x0, top + kLaneHeight,
           style + fmt::format(R"(stroke="{}" stroke-width="1.5" stroke-opacity="0.7")", colour));
    else
      rect(out, x0, top, x1 - x0, kLaneHeight, style + fmt::format(R"(fill="{}" fill-opacity="0.22")", colour));
  }
}

// Thins to the lowest and highest latency per lane, direction and column;
// returns {drawn, accepted}.
std::pair<size_t, size_t> draw_points(Out out, const Timeline& t, const Geometry& g) {
  constexpr size_t none = std::numeric_limits<size_t>::max();
  const size_t columns = static_cast<size_t>(std::ceil(kPlotWidth / kColumnWidth));
  struct Extremes { size_t lowest = none, highest = none; };
  std::vector<Extremes> kept(t.lanes.size() * 2 * columns);  // [lane][direction][column]
  size_t accepted = 0;
  for (size_t i = 0; i < t.points.size(); ++i) {
    const TimelinePoint& p = t.points[i];
    if (p.lane >= t.lanes.size() || !g.in_range(p.at_ms) || std::isnan(p.latency_ms)) continue;
    ++accepted;
    size_t column = std::min(columns - 1, static_cast<size_t>((g.x(p.at_ms) - kPlotLeft) / kColumnWidth));
    Extremes& e = kept[(p.lane * 2 + (p.upstream ? 0 : 1)) * columns + column];
    if (e.lowest == none || p.latency_ms < t.points[e.lowest].latency_ms) e.lowest = i;
    if (e.highest == none || p.latency_ms > t.points[e.highest].latency_ms) e.highest = i;
  }
  size_t drawn = 0;
  for (size_t lane = 0; lane < t.lanes.size(); ++lane) {
    for (size_t direction = 0; direction < 2; ++direction) {
      fmt::format_to(out, R"(<g fill="{}" fill-opacity="0.8">)" "\n", direction == 0 ? kUpColour : kDownColour);
      for (size_t column = 0; column < columns; ++column) {
        const Extremes& e = kept[(lane * 2 + direction) * columns + column];
        if (e.lowest == none) continue;
        for (size_t index : {e.lowest, e.highest}) {
          const TimelinePoint& p = t.points[index];
          fmt::format_to(out, R"(<circle class="pt {}" cx="{:.1f}" cy="{:.1f}" r="{}"/>)" "\n",
                         direction == 0 ? "up" : "down", g.x(p.at_ms), Geometry::latency_y(lane, p.latency_ms),
                         kPointRadius);
          ++drawn;
          if (e.highest == e.lowest) break;  // a column with one message
        }
      }
      fmt::format_to(out, "</g>\n");
    }
  }
  return {drawn, accepted};
}

// Glyphs centred on (x, y), shared by the lanes and the legend: client
// detected points down, server detected points up, link up is a tick.
void draw_mark(Out out, MarkKind kind, double x, double y) {
  if (kind == MarkKind::link_up) {
    line(out, x, y - 7, x, y + 7,
         fmt::format(R"(class="mark link-up" stroke="{}" stroke-width="2")", kLinkUpColour));
    return;
  }
  bool client = kind == MarkKind::client_detected;
  double base = client ? y - 4.5 : y + 4.5, apex = client ? y + 4.5 : y - 4.5;
  fmt::format_to(out,
                 R"(<polygon class="mark {}" points="{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}" fill="{}"/>)" "\n",
                 client ? "client-detected" : "server-detected", x - 4.5, base, x + 4.5, base, x, apex,
                 client ? kClientColour : kServerColour);
}

// Where in the strip a glyph sits, so a client and a server detection a few
// pixels apart do not cover each other.
double mark_offset(MarkKind kind) {
  switch (kind) {
    case MarkKind::client_detected: return 5.5;
    case MarkKind::server_detected: return kMarkStrip - 5.5;
    case MarkKind::link_up: break;
  }
  return kMarkStrip / 2;
}

// Lays legend items left to right, wrapping; returns the y below the last row.
double draw_legend(Out out, const Timeline& t, const std::map<std::string, std::string>& colours, double y) {
  double x = kPlotLeft;
  auto item = [&](const std::string& label, auto&& glyph) {
    double width = 30 + 6 * static_cast<double>(label.size());
    if (x + width > kWidth - 10) {
      x = kPlotLeft;
      y += 18;
    }
    glyph(x + 6, y - 4);
    text(out, x + 16, y, "", label);
    x += width;
  };
  for (const auto& [kind, colour] : colours)
    item(kind, [&, c = colour](double gx, double gy) {
      rect(out, gx - 6, gy - 5, 12, 10, fmt::format(R"(fill="{}" fill-opacity="0.35")", c));
    });
  for (auto [label, colour] :
       {std::pair{"upstream (client to server)", kUpColour}, std::pair{"downstream", kDownColour}})
    item(label, [&, c = colour](double gx, double gy) {
      fmt::format_to(out, R"(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"/>)" "\n", gx, gy, c);
    });
  item("client detected", [&](double gx, double gy) { draw_mark(out, MarkKind::client_detected, gx, gy); });
  item("server detected", [&](double gx, double gy) { draw_mark(out, MarkKind::server_detected, gx, gy); });
  item("link up", [&](double gx, double gy) { draw_mark(out, MarkKind::link_up, gx, gy); });
  if (t.timeout_ms != 0)
    item(fmt::format("T = {} ms, T+T/4 (dashed, dotted)", t.timeout_ms), [&](double gx, double gy) {
      line(out, gx - 6, gy, gx + 6, gy, R"(stroke="#444" stroke-dasharray="6 3")");
    });
  return y + 20;
}

}  // namespace

std::string render_timeline_svg(const Timeline& timeline) {
  bool has_duration = std::isfinite(timeline.duration_ms) && timeline.duration_ms > 0;
  Geometry g{has_duration ? timeline.duration_ms : fit_duration(timeline)};
  auto colours = band_colours(timeline.bands);
  double lanes_bottom = timeline.lanes.empty() ? kTop + 20 : Geometry::lane_top(timeline.lanes.size()) - kLaneGap;
  double axis_y = lanes_bottom + 2;
  // The body first: the document's height is known only once the legend is laid out.
  std::string body;
  Out out(body);

  // Time axis: faint gridlines through every lane, ticks and labels in seconds.
  double step = tick_step_seconds(g.duration_ms / 1000);
  for (int i = 0; i * step * 1000 <= g.duration_ms * (1 + 1e-9); ++i) {
    double x = g.x(i * step * 1000);
    line(out, x, kTop, x, lanes_bottom, R"(stroke="#eee")");
    line(out, x, axis_y, x, axis_y + 5, R"(stroke="#333")");
    text(out, x, axis_y + 17, R"(text-anchor="middle")", fmt::format("{:g}", i * step));
  }
  line(out, kPlotLeft, axis_y, kPlotRight, axis_y, R"(stroke="#333")");
  text(out, kPlotLeft + kPlotWidth / 2, axis_y + 33, R"(text-anchor="middle")", "time (s)");
  draw_lanes(out, timeline);
  draw_bands(out, timeline, g, colours);
  auto [drawn, accepted] = draw_points(out, timeline, g);
  for (const auto& mark : timeline.marks)
    if (mark.lane < timeline.lanes.size() && g.in_range(mark.at_ms))
      draw_mark(out, mark.kind, g.x(mark.at_ms), Geometry::lane_top(mark.lane) + mark_offset(mark.kind));
  double y = draw_legend(out, timeline, colours, axis_y + 56);
  const char* footnote = R"(class="footnote" font-size="10" fill="#555")";
  text(out, kPlotLeft, y, footnote,
       "Dots: message latency, from when it was due to be sent to delivery, "
       "on a log scale from 0.1 ms to 10 s (clamped at the edges).");
  text(out, kPlotLeft, y + 14, footnote,
       fmt::format("Thinned: per lane, direction and {:g}-px column only the lowest and highest latency "
                   "are drawn ({} of {} messages).", kColumnWidth, drawn, accepted));
  double height = y + 28;

  std::string doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  Out head(doc);
  fmt::format_to(head, R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0:g}" height="{1:.0f}" )"
                 R"(viewBox="0 0 {0:g} {1:.0f}" font-family="sans-serif" font-size="11">)" "\n", kWidth, height);
  fmt::format_to(head, "<title>{}</title>\n", escape_xml(timeline.title));
  fmt::format_to(head, R"(<rect width="100%" height="100%" fill="white"/>)" "\n");
  text(head, 8, 24, R"(class="title" font-size="15" font-weight="bold")", timeline.title);
  doc += body;
  doc += "</svg>\n";
  return doc;
}

bool write_timeline_svg(const Timeline& timeline, const std::string& path, std::string* error) {
  std::string svg = render_timeline_svg(timeline);
  auto fail = [&](const char* what, int error_number) {
    if (error) {
      *error = fmt::format("cannot {} timeline SVG {}: {}", what, path,
                           std::generic_category().message(error_number));
    }
    return false;
  };
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) return fail("open", errno);
  bool written = std::fwrite(svg.data(), 1, svg.size(), file) == svg.size();
  int write_errno = errno;
  if (std::fclose(file) != 0 && written) return fail("close", errno);
  if (!written) return fail("write", write_errno);
  return true;
}

}  // namespace resilink::lab
