#include "resilink/lab/toxic.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <limits>

namespace resilink::lab {

namespace {

constexpr std::array<ToxicType, 8> kAllTypes = {
    ToxicType::outage,     ToxicType::half_open, ToxicType::reset_peer, ToxicType::slow_close,
    ToxicType::limit_data, ToxicType::slicer,    ToxicType::latency,    ToxicType::bandwidth};

constexpr size_t kMaxNameLength = 64;

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')) ++i;
    size_t start = i;
    while (i < text.size() && !(text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')) ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  return words;
}

std::string type_list() {
  std::string list;
  for (ToxicType t : kAllTypes) list += (list.empty() ? "" : ", ") + std::string(to_string(t));
  return list;
}

// The attributes each type takes besides name and stream.
std::vector<std::string_view> attributes_of(ToxicType type) {
  switch (type) {
    case ToxicType::outage:
    case ToxicType::half_open:
      return {};
    case ToxicType::reset_peer:
      return {"timeout"};
    case ToxicType::slow_close:
      return {"delay"};
    case ToxicType::limit_data:
      return {"bytes"};
    case ToxicType::slicer:
      return {"average_size", "size_variation", "delay"};
    case ToxicType::latency:
      return {"latency", "jitter"};
    case ToxicType::bandwidth:
      return {"rate"};
  }
  return {};
}

bool fail(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return false;
}

// Digits with an optional fraction ("12", "1.5"): the value times 10^decimals.
struct Decimal {
  uint64_t mantissa = 0;
  uint64_t scale = 1;  // 10^(digits after the point)
  std::string_view rest;
};

std::optional<Decimal> parse_decimal(std::string_view text) {
  Decimal d;
  size_t i = 0, digits = 0, decimals = 0;
  bool point = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.' && !point) {
      point = true;
      continue;
    }
    if (c < '0' || c > '9') break;
    if (++digits > 15) return std::nullopt;  // keeps every product below 2^64
    d.mantissa = d.mantissa * 10 + static_cast<uint64_t>(c - '0');
    if (point) {
      d.scale *= 10;
      ++decimals;
    }
  }
  if (digits == 0 || digits == decimals || (point && decimals == 0)) return std::nullopt;
  d.rest = text.substr(i);
  return d;
}

// value * unit when it is a whole number.
std::optional<uint64_t> scaled(const Decimal& d, uint64_t unit) {
  if (d.mantissa > std::numeric_limits<uint64_t>::max() / unit) return std::nullopt;
  uint64_t total = d.mantissa * unit;
  if (total % d.scale != 0) return std::nullopt;
  return total / d.scale;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

std::optional<uint64_t> parse_size(std::string_view text) {
  if (text.size() > 2 && text.substr(text.size() - 2) == "/s") text.remove_suffix(2);
  auto d = parse_decimal(text);
  if (!d) return std::nullopt;
  static const std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1}, {"B", 1}, {"KB", 1000}, {"KiB", 1024}, {"MB", 1000 * 1000}, {"MiB", 1024 * 1024}};
  for (const auto& [unit, factor] : kUnits)
    if (equals_ignoring_case(d->rest, unit)) return scaled(*d, factor);
  return std::nullopt;
}

std::optional<uint32_t> parse_count(std::string_view text) {
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Whole milliseconds that fit 32 bits.
std::optional<uint32_t> parse_ms(std::string_view text) {
  auto us = parse_duration_us(text);
  if (!us || *us % 1000 != 0 || *us / 1000 > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  return static_cast<uint32_t>(*us / 1000);
}

std::string format_duration_us(uint64_t us) {
  if (us % 1000 == 0) return format_duration_ms(us / 1000);
  return std::to_string(us) + "us";
}

const char* value_hint(std::string_view key) {
  if (key == "latency" || key == "jitter" || key == "delay" || key == "timeout")
    return "a duration such as 50ms, 2s or 500us; ms fields take whole milliseconds";
  if (key == "bytes" || key == "rate") return "a size such as 17, 64KB or 1MiB";
  if (key == "stream") return "upstream, downstream or both";
  if (key == "name") return "1..64 printable characters, none of space = , ; |";
  return "a whole number";
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return c > ' ' && c < 0x7f && c != '=' && c != ',' && c != ';' && c != '|';
  });
}

// Sets one attribute; false if the value does not parse.
bool set_attribute(Toxic& t, std::string_view key, std::string_view value) {
  if (key == "name") {
    if (!valid_name(value)) return false;
    t.name = std::string(value);
    return true;
  }
  if (key == "stream") {
    auto s = stream_from_string(value);
    if (!s) return false;
    t.stream = *s;
    return true;
  }
  if (key == "latency" || key == "jitter" || key == "timeout" ||
      (key == "delay" && t.type == ToxicType::slow_close)) {
    auto ms = parse_ms(value);
    if (!ms) return false;
    (key == "latency" ? t.latency_ms : key == "jitter" ? t.jitter_ms : key == "timeout" ? t.timeout_ms : t.delay_ms) = *ms;
    return true;
  }
  if (key == "delay") {  // slicer: microseconds
    auto us = parse_duration_us(value);
    if (!us || *us > std::numeric_limits<uint32_t>::max()) return false;
    t.delay_us = static_cast<uint32_t>(*us);
    return true;
  }
  if (key == "bytes" || key == "rate") {
    auto size = parse_size(value);
    if (!size) return false;
    (key == "bytes" ? t.bytes : t.rate_bytes_per_s) = *size;
    return true;
  }
  auto n = parse_count(value);
  if (!n) return false;
  (key == "average_size" ? t.average_size : t.size_variation) = *n;
  return true;
}

}  // namespace

const char* to_string(ToxicType type) {
  switch (type) {
    case ToxicType::outage: return "outage";
    case ToxicType::half_open: return "half_open";
    case ToxicType::reset_peer: return "reset_peer";
    case ToxicType::slow_close: return "slow_close";
    case ToxicType::limit_data: return "limit_data";
    case ToxicType::slicer: return "slicer";
    case ToxicType::latency: return "latency";
    case ToxicType::bandwidth: return "bandwidth";
  }
  return "?";
}

const char* to_string(Stream stream) {
  switch (stream) {
    case Stream::upstream: return "upstream";
    case Stream::downstream: return "downstream";
    case Stream::both: return "both";
  }
  return "?";
}

std::optional<ToxicType> toxic_type_from_string(std::string_view text) {
  for (ToxicType t : kAllTypes)
    if (text == to_string(t)) return t;
  return std::nullopt;
}

std::optional<Stream> stream_from_string(std::string_view text) {
  for (Stream s : {Stream::upstream, Stream::downstream, Stream::both})
    if (text == to_string(s)) return s;
  return std::nullopt;
}

bool affects(const Toxic& toxic, Stream direction) {
  return toxic.stream == Stream::both || toxic.stream == direction;
}

bool is_blocking(ToxicType type) { return type == ToxicType::outage || type == ToxicType::half_open; }

std::optional<uint64_t> parse_duration_us(std::string_view text) {
  auto d = parse_decimal(text);
  if (!d) return std::nullopt;
  if (d->rest == "us") return scaled(*d, 1);
  if (d->rest == "ms" || d->rest.empty()) return scaled(*d, 1000);
  if (d->rest == "s") return scaled(*d, 1000 * 1000);
  return std::nullopt;
}

std::string format_duration_ms(uint64_t ms) {
  if (ms >= 1000 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::optional<Toxic> parse_toxic(std::string_view text, std::string* error) {
  std::vector<std::string_view> words = split_words(text);
  if (words.empty()) {
    fail(error, "empty toxic spec (expected a type: " + type_list() + ")");
    return std::nullopt;
  }
  auto type = toxic_type_from_string(words[0]);
  if (!type) {
    fail(error, "unknown toxic type '" + std::string(words[0]) + "' (types: " + type_list() + ")");
    return std::nullopt;
  }
  Toxic toxic;
  toxic.type = *type;
  if (*type == ToxicType::half_open) toxic.stream = Stream::upstream;
  const std::string prefix = std::string(words[0]) + ": ";
  std::vector<std::string_view> allowed = attributes_of(*type);
  allowed.push_back("name");
  allowed.push_back("stream");
  std::vector<std::string_view> seen;
  for (size_t i = 1; i < words.size(); ++i) {
    std::string_view word = words[i];
    size_t eq = word.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      fail(error, prefix + "expected key=value, got '" + std::string(word) + "'");
      return std::nullopt;
    }
    std::string_view key = word.substr(0, eq), value = word.substr(eq + 1);
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string takes;
      for (auto a : allowed) takes += (takes.empty() ? "" : ", ") + std::string(a);
      fail(error, prefix + "unknown attribute '" + std::string(key) + "' (" + std::string(words[0]) +
                      " takes " + takes + ")");
      return std::nullopt;
    }
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      fail(error, prefix + "'" + std::string(key) + "' given twice");
      return std::nullopt;
    }
    seen.push_back(key);
    if (!set_attribute(toxic, key, value)) {
      fail(error, prefix + "bad value '" + std::string(value) + "' for '" + std::string(key) + "' (" +
                      value_hint(key) + ")");
      return std::nullopt;
    }
  }
  if (toxic.type == ToxicType::half_open && toxic.stream == Stream::both) {
    fail(error, prefix + "stream must be upstream or downstream, not both");
    return std::nullopt;
  }
  std::string problem = validate_toxic(toxic);
  if (!problem.empty()) {
    fail(error, problem);
    return std::nullopt;
  }
  return toxic;
}

std::string validate_toxic(const Toxic& t) {
  const std::string prefix = std::string(to_string(t.type)) + ": ";
  if (!t.name.empty() && !valid_name(t.name))
    return prefix + "bad name '" + t.name + "' (" + value_hint("name") + ")";
  switch (t.type) {
    case ToxicType::slicer:
      if (t.average_size == 0) return prefix + "average_size must be at least 1";
      if (t.size_variation >= t.average_size)
        return prefix + "size_variation (" + std::to_string(t.size_variation) +
               ") must be less than average_size (" + std::to_string(t.average_size) + ")";
      break;
    case ToxicType::bandwidth:
      if (t.rate_bytes_per_s == 0) return prefix + "rate must be given and above 0 (e.g. rate=64KB)";
      break;
    default:
      break;
  }
  return "";
}

std::string format_toxic(const Toxic& t) {
  std::string out = to_string(t.type);
  if (!t.name.empty()) out += " name=" + t.name;
  out += std::string(" stream=") + to_string(t.stream);
  switch (t.type) {
    case ToxicType::outage:
    case ToxicType::half_open:
      break;
    case ToxicType::reset_peer:
      out += " timeout=" + format_duration_ms(t.timeout_ms);
      break;
    case ToxicType::slow_close:
      out += " delay=" + format_duration_ms(t.delay_ms);
      break;
    case ToxicType::limit_data:
      out += " bytes=" + std::to_string(t.bytes);
      break;
    case ToxicType::slicer:
      out += " average_size=" + std::to_string(t.average_size) +
             " size_variation=" + std::to_string(t.size_variation) + " delay=" + format_duration_us(t.delay_us);
      break;
    case ToxicType::latency:
      out += " latency=" + format_duration_ms(t.latency_ms) + " jitter=" + format_duration_ms(t.jitter_ms);
      break;
    case ToxicType::bandwidth:
      out += " rate=" + std::to_string(t.rate_bytes_per_s);
      break;
  }
  return out;
}

std::optional<Spread> parse_spread(std::string_view text) {
  size_t pm = text.find("+-");
  auto mean = parse_ms(text.substr(0, pm));
  if (!mean) return std::nullopt;
  Spread s{*mean, 0};
  if (pm != std::string_view::npos) {
    auto spread = parse_ms(text.substr(pm + 2));
    if (!spread) return std::nullopt;
    s.spread_ms = *spread;
  }
  return s;
}

std::string format_spread(const Spread& s) {
  std::string out = format_duration_ms(s.mean_ms);
  if (s.spread_ms) out += "+-" + format_duration_ms(s.spread_ms);
  return out;
}

std::optional<FaultSchedule> parse_schedule(std::string_view text, std::string* error) {
  std::vector<std::string_view> words = split_words(text);
  std::string toxic_text;
  std::optional<std::string_view> every, duration;
  for (auto word : words) {
    if (word.starts_with("every=")) {
      every = word.substr(6);
    } else if (word.starts_with("for=")) {
      duration = word.substr(4);
    } else {
      toxic_text += std::string(word) + " ";
    }
  }
  auto toxic = parse_toxic(toxic_text, error);
  if (!toxic) return std::nullopt;
  const std::string prefix = std::string(to_string(toxic->type)) + ": ";
  if (!every) {
    fail(error, prefix + "a schedule needs every=<duration> (e.g. every=20s+-10s)");
    return std::nullopt;
  }
  FaultSchedule schedule;
  schedule.toxic = *toxic;
  auto every_spread = parse_spread(*every);
  if (!every_spread) {
    fail(error, prefix + "bad value '" + std::string(*every) + "' for 'every' (a duration such as 20s or 20s+-10s)");
    return std::nullopt;
  }
  schedule.every = *every_spread;
  if (duration) {
    auto duration_spread = parse_spread(*duration);
    if (!duration_spread) {
      fail(error, prefix + "bad value '" + std::string(*duration) + "' for 'for' (a duration such as 3s or 3s+-2s)");
      return std::nullopt;
    }
    schedule.duration = *duration_spread;
  }
  std::string problem = validate_schedule(schedule);
  if (!problem.empty()) {
    fail(error, problem);
    return std::nullopt;
  }
  return schedule;
}

std::string validate_schedule(const FaultSchedule& s) {
  std::string problem = validate_toxic(s.toxic);
  if (!problem.empty()) return problem;
  const std::string prefix = std::string(to_string(s.toxic.type)) + ": ";
  if (s.every.mean_ms == 0) return prefix + "every= must be above 0";
  if (s.every.spread_ms >= s.every.mean_ms)
    return prefix + "every=" + format_spread(s.every) + ": the spread must be less than the mean";
  if (s.duration.spread_ms > s.duration.mean_ms)
    return prefix + "for=" + format_spread(s.duration) + ": the spread must not exceed the mean";
  bool instantaneous = s.duration.mean_ms == 0 && s.duration.spread_ms == 0;
  if (instantaneous && s.toxic.type != ToxicType::reset_peer)
    return prefix + "a schedule needs for=<duration> (only reset_peer can be instantaneous)";
  if (instantaneous && s.toxic.timeout_ms != 0)
    return prefix + "an instantaneous schedule (no for=) resets at once; drop timeout= or add for=";
  return "";
}

std::string format_schedule(const FaultSchedule& s) {
  std::string out = format_toxic(s.toxic) + " every=" + format_spread(s.every);
  if (s.duration.mean_ms || s.duration.spread_ms) out += " for=" + format_spread(s.duration);
  return out;
}

uint64_t ChaosRandom::next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t ChaosRandom::between(uint64_t low, uint64_t high) {
  if (high <= low) return low;
  uint64_t span = high - low + 1;
  return low + (span == 0 ? next() : next() % span);  // modulo bias is irrelevant at these spans
}

uint64_t ChaosRandom::around(uint64_t mean, uint64_t spread) {
  return between(mean > spread ? mean - spread : 0, mean + spread);
}

uint64_t derive_seed(uint64_t seed, uint64_t index) {
  ChaosRandom mix(seed ^ (0xd1b54a32d192ed03ull * (index + 1)));
  return mix.next();
}

FaultPlan::FaultPlan(const FaultSchedule& schedule, uint64_t seed)
    : every_(schedule.every), duration_(schedule.duration), random_(seed) {}

FaultPlan::Occurrence FaultPlan::next() {
  uint64_t gap = std::max<uint64_t>(1, random_.around(every_.mean_ms, every_.spread_ms));
  uint64_t duration = random_.around(duration_.mean_ms, duration_.spread_ms);
  uint64_t start = std::max(last_start_ + gap, last_end_);
  last_start_ = start;
  last_end_ = start + duration;
  return {start, duration};
}

}  // namespace resilink::lab
