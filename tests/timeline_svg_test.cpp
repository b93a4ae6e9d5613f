#include "resilink/lab/timeline_svg.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace resilink::lab {
namespace {

// A small XML well-formedness check, enough for what the renderer emits:
// every element opened is closed, in order, under a single <svg> root;
// attribute values are quoted; text and attributes hold no raw '<' and every
// '&' starts a known entity. Returns "" when well formed, else what is wrong.
std::string xml_problem(const std::string& doc) {
  auto bad_ampersand = [&](size_t from, size_t to) {
    for (size_t i = doc.find('&', from); i < to; i = doc.find('&', i + 1)) {
      bool entity = false;
      for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"})
        entity = entity || doc.compare(i, std::char_traits<char>::length(e), e) == 0;
      if (!entity) return true;
    }
    return false;
  };
  std::vector<std::string> open;
  size_t roots = 0, pos = 0;
  while (pos < doc.size()) {
    size_t lt = doc.find('<', pos);
    if (bad_ampersand(pos, lt == std::string::npos ? doc.size() : lt)) return "raw & in text";
    if (lt == std::string::npos) break;
    if (doc.compare(lt, 2, "<?") == 0) {
      size_t end = doc.find("?>", lt);
      if (lt != 0 || end == std::string::npos) return "misplaced declaration";
      pos = end + 2;
      continue;
    }
    bool closing = doc.compare(lt, 2, "</") == 0;
    size_t i = lt + (closing ? 2 : 1), name_start = i;
    while (i < doc.size() && (std::isalnum(static_cast<unsigned char>(doc[i])) || doc[i] == '-')) ++i;
    std::string name = doc.substr(name_start, i - name_start);
    if (name.empty()) return "element without a name at " + std::to_string(lt);
    // Attributes: name="value" pairs, values without '<'.
    while (i < doc.size() && doc[i] != '>' && doc[i] != '/') {
      if (doc[i] == '"') {
        size_t close = doc.find('"', i + 1);
        if (close == std::string::npos) return "unterminated attribute";
        if (doc.find('<', i) < close) return "raw < in attribute of <" + name + ">";
        if (bad_ampersand(i, close)) return "raw & in attribute of <" + name + ">";
        i = close;
      }
      ++i;
    }
    bool self_closing = i < doc.size() && doc[i] == '/';
    size_t gt = doc.find('>', i);
    if (gt == std::string::npos) return "unterminated tag <" + name;
    if (closing) {
      if (open.empty()) return "</" + name + "> closes nothing";
      if (open.back() != name) return "</" + name + "> closes <" + open.back() + ">";
      open.pop_back();
    } else {
      if (open.empty() && ++roots > 1) return "more than one root element";
      if (open.empty() && name != "svg") return "root is <" + name + ">";
      if (!self_closing) open.push_back(name);
    }
    pos = gt + 1;
  }
  if (!open.empty()) return "<" + open.back() + "> never closed";
  if (roots != 1) return "no root element";
  return "";
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t i = haystack.find(needle); i != std::string::npos; i = haystack.find(needle, i + 1)) ++n;
  return n;
}

TEST(TimelineSvg, XmlCheckerCatchesBrokenDocuments) {
  EXPECT_EQ(xml_problem("<?xml version=\"1.0\"?>\n<svg a=\"1\"><g><rect/></g><text>a &amp; b</text></svg>\n"), "");
  EXPECT_NE(xml_problem("<svg><g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><g><rect></g></rect></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a < b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a & b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg><g a=\"x<y\"/></svg>"), "");
  EXPECT_NE(xml_problem("<svg/><svg/>"), "");
  EXPECT_NE(xml_problem(""), "");
}

Timeline sample() {
  Timeline t;
  t.title = "resilink demo: 3 clients, T=1000 ms, seed 7";
  t.duration_ms = 60000;
  t.timeout_ms = 1000;
  t.lanes = {"client 1", "client 2", "client 3"};
  t.bands = {{0, 5000, 12000, "outage"},
             {1, 20000, 26000, "half_open"},
             {2, 30000, 30000, "reset_peer"},  // an instant fault
             {0, 40000, 45000, "latency"}};
  t.marks = {{0, 6000, MarkKind::client_detected}, {0, 6200, MarkKind::server_detected},
             {0, 12500, MarkKind::link_up},        {1, 21300, MarkKind::server_detected},
             {1, 26400, MarkKind::link_up}};
  for (size_t lane = 0; lane < 3; ++lane)
    for (int i = 0; i < 600; ++i)
      t.points.push_back({lane, i * 100.0, 1.0 + (i % 7), i % 2 == 0});
  return t;
}

TEST(TimelineSvg, WellFormedWithOneElementPerBandAndMark) {
  Timeline t = sample();
  std::string svg = render_timeline_svg(t);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_EQ(count(svg, "class=\"band\""), t.bands.size());
  EXPECT_EQ(count(svg, "class=\"band\" data-kind=\"outage\""), 1u);
  size_t instant = svg.find("data-kind=\"reset_peer\"");  // an instant fault is a thin line
  ASSERT_NE(instant, std::string::npos);
  EXPECT_EQ(svg.compare(svg.rfind('<', instant), 5, "<line"), 0);
  // Each mark kind once per mark, plus its legend glyph.
  EXPECT_EQ(count(svg, "class=\"mark client-detected\""), 1u + 1u);
  EXPECT_EQ(count(svg, "class=\"mark server-detected\""), 2u + 1u);
  EXPECT_EQ(count(svg, "class=\"mark link-up\""), 2u + 1u);
  EXPECT_EQ(count(svg, "class=\"lane-label\""), 3u);
  for (const auto& lane : t.lanes) EXPECT_NE(svg.find(">" + lane + "<"), std::string::npos) << lane;
  EXPECT_NE(svg.find(">" + t.title + "<"), std::string::npos);
  EXPECT_EQ(count(svg, "class=\"ref\""), 2u * 3u);  // T and T+T/4 in every lane
  // 100 ms apart is further than a thinning column: every message is drawn.
  EXPECT_EQ(count(svg, "class=\"pt up\""), 900u);
  EXPECT_EQ(count(svg, "class=\"pt down\""), 900u);
  EXPECT_NE(svg.find("(1800 of 1800 messages)"), std::string::npos);
}

TEST(TimelineSvg, SameInputSameBytes) {
  EXPECT_EQ(render_timeline_svg(sample()), render_timeline_svg(sample()));
}

TEST(TimelineSvg, ThinsAHundredThousandPointsToABoundedCount) {
  Timeline t;
  t.duration_ms = 100000;
  t.lanes = {"client 1", "client 2"};
  uint32_t state = 7;  // a fixed LCG: deterministic spread of latencies
  for (int i = 0; i < 100000; ++i) {
    state = state * 1664525u + 1013904223u;
    t.points.push_back({static_cast<size_t>(i % 2), i * 1.0, 0.05 + (state >> 8) % 20000 / 2.0, (state & 1) != 0});
  }
  std::string svg = render_timeline_svg(t);
  EXPECT_EQ(xml_problem(svg), "");
  size_t drawn = count(svg, "class=\"pt ");
  // At most the lowest and highest per lane, direction and 2-px column (~1010 px wide).
  EXPECT_LE(drawn, 2u * 2u * 2u * 505u);
  EXPECT_GE(drawn, 2u * 2u * 505u);  // every column of every lane and direction has messages
  EXPECT_LT(svg.size(), 300u * 1024u);
  EXPECT_NE(svg.find("(" + std::to_string(drawn) + " of 100000 messages)"), std::string::npos);
}

TEST(TimelineSvg, KeepsOnlyTheLowestAndHighestLatencyOfAColumn) {
  Timeline t;
  t.duration_ms = 1000;
  t.lanes = {"client 1"};
  for (int i = 0; i < 50; ++i) t.points.push_back({0, 500, 5.0 + i, true});
  t.points.push_back({0, 500, 1, true});
  t.points.push_back({0, 500, 1000, true});
  t.points.push_back({0, 500, 3, false});  // the other direction keeps its own
  std::string svg = render_timeline_svg(t);
  EXPECT_EQ(count(svg, "class=\"pt up\""), 2u);
  EXPECT_EQ(count(svg, "class=\"pt down\""), 1u);
  EXPECT_NE(svg.find("(3 of 53 messages)"), std::string::npos);
}

TEST(TimelineSvg, EscapesTitleAndLaneLabels) {
  Timeline t = sample();
  t.title = "demo <4 clients> & \"T\"";
  t.lanes[0] = "client <1> & 'co'";
  t.bands[0].kind = "out<age>&";
  std::string svg = render_timeline_svg(t);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find("demo &lt;4 clients&gt; &amp; &quot;T&quot;"), std::string::npos);
  EXPECT_NE(svg.find("client &lt;1&gt; &amp; &apos;co&apos;"), std::string::npos);
  EXPECT_NE(svg.find("data-kind=\"out&lt;age&gt;&amp;\""), std::string::npos);
  EXPECT_EQ(svg.find("<4 clients>"), std::string::npos);
}

TEST(TimelineSvg, OutOfRangeInputIsClampedOrDropped) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Timeline t;
  t.duration_ms = 10000;
  t.timeout_ms = 1000;
  t.lanes = {"client 1"};
  t.bands = {{0, -500, 2000, "outage"},     // clipped to start at 0: drawn
             {0, 9000, 20000, "outage"},    // clipped to end at 10 s: drawn
             {0, 3000, 2500, "half_open"},  // reversed: drawn
             {0, -900, -100, "outage"},     // entirely before 0: dropped
             {0, 11000, 12000, "outage"},   // entirely after the end: dropped
             {3, 1000, 2000, "outage"},     // no such lane: dropped
             {0, nan, 2000, "outage"}};     // dropped
  t.marks = {{0, -1, MarkKind::link_up}, {0, 20000, MarkKind::link_up}, {9, 100, MarkKind::link_up},
             {0, nan, MarkKind::link_up}, {0, 100, MarkKind::client_detected}};
  t.points = {{0, 1000, 0, true},      // latency 0: clamped to the axis floor
              {0, 2000, -5, true},     // negative latency: clamped too
              {0, 3000, 1e9, true},    // beyond 10 s: clamped to the top
              {0, -10, 5, true},       // before 0: dropped
              {0, 1e9, 5, true},       // after the end: dropped
              {1, 100, 5, true},       // no such lane: dropped
              {0, 4000, nan, true}};   // dropped
  std::string svg = render_timeline_svg(t);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(count(svg, "class=\"band\""), 3u);
  EXPECT_EQ(count(svg, "class=\"mark link-up\""), 1u);  // the legend's only
  EXPECT_EQ(count(svg, "class=\"mark client-detected\""), 2u);
  EXPECT_NE(svg.find("(3 of 3 messages)"), std::string::npos);
  // Lane 0 spans y 48..178 with its latency plot from y 68 down: latency 0 and
  // -5 sit on the floor (0.1 ms), 1e9 ms on the ceiling (10 s).
  EXPECT_EQ(count(svg, "cy=\"178.0\" r=\"1.6\""), 2u);
  EXPECT_EQ(count(svg, "cy=\"68.0\" r=\"1.6\""), 1u);
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  EXPECT_EQ(svg.find("=\"-"), std::string::npos);  // no negative coordinate
}

TEST(TimelineSvg, EmptyOrDurationlessTimelineStillRenders) {
  std::string empty = render_timeline_svg(Timeline{});
  EXPECT_EQ(xml_problem(empty), "");
  EXPECT_EQ(count(empty, "class=\"band\""), 0u);
  EXPECT_NE(empty.find("(0 of 0 messages)"), std::string::npos);

  Timeline fit;  // no duration: the axis fits the data
  fit.lanes = {"client 1"};
  fit.duration_ms = std::numeric_limits<double>::quiet_NaN();
  fit.points = {{0, 2500, 10, true}};
  fit.bands = {{0, 1000, 3000, "outage"}};
  std::string svg = render_timeline_svg(fit);
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(count(svg, "class=\"band\""), 1u);
  EXPECT_NE(svg.find("(1 of 1 messages)"), std::string::npos);
}

TEST(TimelineSvg, WritesTheFileOrNamesThePathInTheError) {
  const std::string path = ::testing::TempDir() + "timeline_svg_test.svg";
  std::string error;
  ASSERT_TRUE(write_timeline_svg(sample(), path, &error)) << error;
  std::ifstream in(path, std::ios::binary);
  std::stringstream written;
  written << in.rdbuf();
  EXPECT_EQ(written.str(), render_timeline_svg(sample()));
  std::remove(path.c_str());

  const std::string bad = "/nonexistent-resilink-dir/timeline.svg";
  EXPECT_FALSE(write_timeline_svg(sample(), bad, &error));
  EXPECT_NE(error.find(bad), std::string::npos) << error;
  EXPECT_NE(error.find("No such file or directory"), std::string::npos) << error;
  EXPECT_FALSE(write_timeline_svg(sample(), bad, nullptr));  // a null error is allowed
}

}  // namespace
}  // namespace resilink::lab
