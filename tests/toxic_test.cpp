// The toxic and schedule parsers (lab/toxic.h) and the seeded FaultPlan:
// good forms, canonical round trips, and errors that name the bad word.
#include "resilink/lab/toxic.h"

#include <gtest/gtest.h>

namespace resilink::lab {
namespace {

Toxic parse(std::string_view text) {
  std::string error;
  auto toxic = parse_toxic(text, &error);
  EXPECT_TRUE(toxic.has_value()) << text << ": " << error;
  return toxic.value_or(Toxic{});
}

std::string parse_error(std::string_view text) {
  std::string error;
  EXPECT_FALSE(parse_toxic(text, &error).has_value()) << text;
  return error;
}

std::string schedule_error(std::string_view text) {
  std::string error;
  EXPECT_FALSE(parse_schedule(text, &error).has_value()) << text;
  return error;
}

bool starts_with(const std::string& text, std::string_view prefix) { return text.rfind(prefix, 0) == 0; }

TEST(ToxicParse, ReadsEveryForm) {
  Toxic t = parse("outage");
  EXPECT_EQ(t.type, ToxicType::outage);
  EXPECT_EQ(t.stream, Stream::both);
  EXPECT_EQ(t.name, "");
  EXPECT_EQ(parse("half_open").stream, Stream::upstream);
  EXPECT_EQ(parse("half_open stream=downstream").stream, Stream::downstream);

  t = parse("latency latency=50ms jitter=10ms stream=downstream");
  EXPECT_EQ(t.type, ToxicType::latency);
  EXPECT_EQ(t.latency_ms, 50u);
  EXPECT_EQ(t.jitter_ms, 10u);
  EXPECT_EQ(t.stream, Stream::downstream);
  EXPECT_EQ(parse("latency latency=1.5s name=slow").latency_ms, 1500u);
  EXPECT_EQ(parse("latency latency=1.5s name=slow").name, "slow");
  EXPECT_EQ(parse("latency latency=250").latency_ms, 250u);  // bare numbers are ms

  EXPECT_EQ(parse("bandwidth rate=64KB").rate_bytes_per_s, 64000u);
  EXPECT_EQ(parse("bandwidth rate=1MiB/s").rate_bytes_per_s, 1048576u);
  EXPECT_EQ(parse("bandwidth rate=512").rate_bytes_per_s, 512u);
  EXPECT_EQ(parse("limit_data bytes=17").bytes, 17u);
  EXPECT_EQ(parse("limit_data bytes=2KiB").bytes, 2048u);
  EXPECT_EQ(parse("reset_peer timeout=500ms").timeout_ms, 500u);
  EXPECT_EQ(parse("reset_peer").timeout_ms, 0u);
  EXPECT_EQ(parse("slow_close delay=2s").delay_ms, 2000u);

  t = parse("slicer average_size=3 size_variation=2 delay=500us");
  EXPECT_EQ(t.average_size, 3u);
  EXPECT_EQ(t.size_variation, 2u);
  EXPECT_EQ(t.delay_us, 500u);
  EXPECT_EQ(parse("slicer delay=2ms").delay_us, 2000u);
  EXPECT_EQ(parse("  outage\tname=wifi  ").name, "wifi");
}

TEST(ToxicParse, ErrorsNameTheBadWord) {
  const std::pair<const char*, const char*> cases[] = {
      {"blackhole", "unknown toxic type 'blackhole'"},
      {"", "empty toxic spec"},
      {"latency jitter=abc", "latency: bad value 'abc' for 'jitter'"},
      {"latency latency=500us", "latency: bad value '500us' for 'latency'"},  // not whole ms
      {"latency latency=5min", "latency: bad value '5min' for 'latency'"},
      {"latency foo=1", "latency: unknown attribute 'foo'"},
      {"latency 50ms", "latency: expected key=value, got '50ms'"},
      {"latency jitter=1ms jitter=2ms", "latency: 'jitter' given twice"},
      {"half_open stream=both", "half_open: stream must be upstream or downstream, not both"},
      {"outage stream=sideways", "outage: bad value 'sideways' for 'stream'"},
      {"outage timeout=1s", "outage: unknown attribute 'timeout'"},
      {"outage name=a,b", "outage: bad value 'a,b' for 'name'"},
      {"slicer average_size=0", "slicer: average_size must be at least 1"},
      {"slicer average_size=3 size_variation=3", "slicer: size_variation (3) must be less than average_size (3)"},
      {"slicer average_size=x", "slicer: bad value 'x' for 'average_size'"},
      {"bandwidth", "bandwidth: rate must be given and above 0"},
      {"bandwidth rate=fast", "bandwidth: bad value 'fast' for 'rate'"},
      {"limit_data bytes=-1", "limit_data: bad value '-1' for 'bytes'"},
      {"reset_peer timeout=", "reset_peer: bad value '' for 'timeout'"},
  };
  for (const auto& [spec, expected] : cases) {
    std::string error = parse_error(spec);
    EXPECT_TRUE(starts_with(error, expected)) << "spec '" << spec << "': got '" << error << "'";
  }
}

TEST(ToxicParse, CanonicalFormRoundTrips) {
  for (const char* spec :
       {"outage", "half_open stream=downstream name=radio", "reset_peer timeout=500ms", "slow_close delay=2s",
        "limit_data bytes=17 stream=upstream", "slicer average_size=3 size_variation=2 delay=500us",
        "slicer delay=3ms", "latency latency=50ms jitter=10ms", "bandwidth rate=64KB"}) {
    Toxic t = parse(spec);
    std::string text = format_toxic(t);
    EXPECT_EQ(parse(text), t) << spec << " -> " << text;
  }
  EXPECT_EQ(format_toxic(parse("latency latency=2s")), "latency stream=both latency=2s jitter=0ms");
}

TEST(ScheduleParse, ReadsSpreadsAndRefusesNonsense) {
  std::string error;
  auto s = parse_schedule("outage every=20s+-10s for=3s+-2s", &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->toxic.type, ToxicType::outage);
  EXPECT_EQ(s->every, (Spread{20000, 10000}));
  EXPECT_EQ(s->duration, (Spread{3000, 2000}));
  s = parse_schedule("half_open stream=downstream every=5s for=1s", &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->toxic.stream, Stream::downstream);
  EXPECT_EQ(s->every, (Spread{5000, 0}));
  EXPECT_EQ(s->duration, (Spread{1000, 0}));
  s = parse_schedule("reset_peer every=30s", &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->duration, (Spread{0, 0}));  // instantaneous
  s = parse_schedule("latency latency=40ms every=500ms+-100ms for=200ms", &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->toxic.latency_ms, 40u);
  EXPECT_EQ(parse_schedule(format_schedule(*s), &error), s);

  const std::pair<const char*, const char*> cases[] = {
      {"outage for=3s", "outage: a schedule needs every=<duration>"},
      {"outage every=5s", "outage: a schedule needs for=<duration> (only reset_peer can be instantaneous)"},
      {"outage every=soon for=1s", "outage: bad value 'soon' for 'every'"},
      {"outage every=5s for=1s+-x", "outage: bad value '1s+-x' for 'for'"},
      {"outage every=5s+-5s for=1s", "outage: every=5s+-5s: the spread must be less than the mean"},
      {"outage every=5s for=1s+-2s", "outage: for=1s+-2s: the spread must not exceed the mean"},
      {"reset_peer timeout=1s every=5s", "reset_peer: an instantaneous schedule"},
      {"blackhole every=1s", "unknown toxic type 'blackhole'"},
      {"latency jitter=x every=1s for=1s", "latency: bad value 'x' for 'jitter'"},
  };
  for (const auto& [spec, expected] : cases) {
    std::string e = schedule_error(spec);
    EXPECT_TRUE(starts_with(e, expected)) << "spec '" << spec << "': got '" << e << "'";
  }
}

TEST(FaultPlan, SameSeedSameDrawsWithinBoundsNeverOverlapping) {
  FaultSchedule s = *parse_schedule("outage every=20s+-10s for=3s+-2s", nullptr);
  FaultPlan a(s, 7), b(s, 7), c(s, 8);
  std::vector<FaultPlan::Occurrence> from_a, from_c;
  uint64_t last_start = 0, last_end = 0;
  for (int i = 0; i < 200; ++i) {
    auto o = a.next();
    EXPECT_EQ(o, b.next()) << "draw " << i;
    from_a.push_back(o);
    from_c.push_back(c.next());
    EXPECT_GE(o.duration_ms, 1000u);
    EXPECT_LE(o.duration_ms, 5000u);
    EXPECT_GE(o.start_ms, last_end) << "faults of one schedule never overlap";
    EXPECT_GE(o.start_ms, last_start + 10000);
    EXPECT_LE(o.start_ms, std::max(last_start + 30000, last_end));
    last_start = o.start_ms;
    last_end = o.start_ms + o.duration_ms;
  }
  EXPECT_NE(from_a, from_c) << "another seed, other draws";
}

}  // namespace
}  // namespace resilink::lab
