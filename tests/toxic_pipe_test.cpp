// ToxicPipe (lab/toxic_pipe.h), one direction of a proxied connection, with
// literal microsecond timestamps and a virtual clock: no sockets, instant.
#include "resilink/lab/toxic_pipe.h"

#include <gtest/gtest.h>

namespace resilink::lab {
namespace {

using Kind = ToxicPipe::Action::Kind;

constexpr uint64_t kMs = 1000;  // ToxicPipe time is in microseconds

std::vector<Toxic> toxics(std::initializer_list<const char*> specs) {
  std::vector<Toxic> out;
  for (const char* spec : specs) {
    std::string error;
    auto toxic = parse_toxic(spec, &error);
    EXPECT_TRUE(toxic.has_value()) << spec << ": " << error;
    out.push_back(toxic.value_or(Toxic{}));
    if (out.back().name.empty()) out.back().name = to_string(out.back().type);
  }
  return out;
}

void push(ToxicPipe& pipe, std::string_view bytes, uint64_t now) {
  pipe.push_data(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), now);
}

// Plays the writer with a virtual clock until the pipe has nothing left to
// write: each write is taken whole, each wait ends on time. Returns the
// bytes written; `times` and `sizes` get each write's time and size.
std::string drain(ToxicPipe& pipe, uint64_t& now, std::vector<uint64_t>* times = nullptr,
                  std::vector<size_t>* sizes = nullptr) {
  std::string out;
  for (int guard = 0; guard < 100000; ++guard) {
    ToxicPipe::Action a = pipe.next(now);
    if (a.kind == Kind::wait) {
      EXPECT_GT(a.until_us, now);
      now = a.until_us;
      continue;
    }
    if (a.kind != Kind::write) return out;
    out.append(reinterpret_cast<const char*>(a.data), a.size);
    if (times) times->push_back(now);
    if (sizes) sizes->push_back(a.size);
    pipe.wrote(a.size, now);
  }
  ADD_FAILURE() << "the pipe never ran dry";
  return out;
}

TEST(ToxicPipe, PassesBytesThenTheEof) {
  ToxicPipe pipe(Stream::upstream, 1);
  uint64_t now = 0;
  push(pipe, "hello", now);
  EXPECT_EQ(drain(pipe, now), "hello");
  EXPECT_EQ(now, 0u);
  EXPECT_EQ(pipe.next(now).kind, Kind::idle);
  pipe.push_end(ToxicPipe::End::eof, now);
  EXPECT_EQ(pipe.room(), 0u) << "the reader is done after the end";
  EXPECT_EQ(pipe.next(now).kind, Kind::shutdown);
  pipe.passed_end();
  EXPECT_TRUE(pipe.finished());
  EXPECT_EQ(pipe.crossed(), 5u);
  // A reset after the EOF was passed on is passed on too.
  pipe.push_end(ToxicPipe::End::reset, now);
  EXPECT_FALSE(pipe.finished());
  EXPECT_EQ(pipe.next(now).kind, Kind::reset);
}

TEST(ToxicPipe, BoundedRoom) {
  ToxicPipe pipe(Stream::upstream, 1, /*capacity=*/10);
  EXPECT_EQ(pipe.room(), 10u);
  push(pipe, "0123456", 0);
  EXPECT_EQ(pipe.room(), 3u);
  push(pipe, "789", 0);
  EXPECT_EQ(pipe.room(), 0u) << "a full pipe stops reading";
  uint64_t now = 0;
  drain(pipe, now);
  EXPECT_EQ(pipe.room(), 10u);
}

TEST(ToxicPipe, OutageHoldsDataAndTheEndThenReleasesThemInOrder) {
  ToxicPipe pipe(Stream::downstream, 1);
  push(pipe, "ab", 0);
  push(pipe, "cd", 1);
  pipe.push_end(ToxicPipe::End::eof, 2);
  pipe.set_toxics(toxics({"outage"}));
  EXPECT_TRUE(pipe.held());
  EXPECT_EQ(pipe.next(5000 * kMs).kind, Kind::idle);
  pipe.set_toxics({});
  uint64_t now = 5000 * kMs;
  EXPECT_EQ(drain(pipe, now), "abcd");
  EXPECT_EQ(pipe.next(now).kind, Kind::shutdown);

  ToxicPipe fresh(Stream::downstream, 1);
  fresh.set_toxics(toxics({"outage"}));
  EXPECT_EQ(fresh.room(), 0u) << "held: the source is not even read";
}

TEST(ToxicPipe, HalfOpenHoldsOneDirection) {
  ToxicPipe up(Stream::upstream, 1), down(Stream::downstream, 2);
  auto half = toxics({"half_open stream=upstream"});
  up.set_toxics(half);
  down.set_toxics(half);
  EXPECT_TRUE(up.held());
  EXPECT_FALSE(down.held());
  EXPECT_EQ(up.room(), 0u);
  EXPECT_GT(down.room(), 0u);
}

TEST(ToxicPipe, LatencyDelaysEachChunkAndKeepsOrder) {
  ToxicPipe pipe(Stream::upstream, 3);
  pipe.set_toxics(toxics({"latency latency=100ms jitter=90ms"}));
  std::string sent;
  std::vector<uint64_t> arrived;
  for (int i = 0; i < 50; ++i) {
    std::string chunk = "<" + std::to_string(i) + ">";
    push(pipe, chunk, static_cast<uint64_t>(i) * kMs);
    sent += chunk;
    arrived.push_back(static_cast<uint64_t>(i) * kMs);
  }
  uint64_t now = 0;
  std::vector<uint64_t> times;
  EXPECT_EQ(drain(pipe, now, &times), sent) << "order kept despite jitter";
  ASSERT_EQ(times.size(), 50u);
  for (size_t i = 0; i < times.size(); ++i) {
    EXPECT_GE(times[i], arrived[i] + 10 * kMs) << "chunk " << i << " left before latency - jitter";
    if (i) {
      EXPECT_GE(times[i], times[i - 1]);
    }
  }
  EXPECT_LE(times.back(), arrived.back() + 190 * kMs) << "the last chunk waited at most latency + jitter";
}

TEST(ToxicPipe, LimitDataCutsAtExactlyTheBudget) {
  ToxicPipe pipe(Stream::upstream, 1);
  uint64_t now = 0;
  push(pipe, "xyz", now);
  drain(pipe, now);  // before the toxic: not counted
  pipe.set_toxics(toxics({"limit_data bytes=5 name=cut"}));
  push(pipe, "abcdefgh", now);
  EXPECT_EQ(drain(pipe, now), "abcde");
  ToxicPipe::Action a = pipe.next(now);
  EXPECT_EQ(a.kind, Kind::limit_close);
  EXPECT_EQ(a.toxic, "cut");

  ToxicPipe zero(Stream::upstream, 1);
  zero.set_toxics(toxics({"limit_data bytes=0"}));
  EXPECT_EQ(zero.next(0).kind, Kind::limit_close) << "bytes=0 closes before anything crosses";

  ToxicPipe other(Stream::downstream, 1);
  other.set_toxics(toxics({"limit_data bytes=0 stream=upstream"}));
  EXPECT_EQ(other.next(0).kind, Kind::idle) << "another stream's limit";
}

TEST(ToxicPipe, SlicerWritesSmallPiecesApart) {
  ToxicPipe pipe(Stream::upstream, 5);
  pipe.set_toxics(toxics({"slicer average_size=3 size_variation=2 delay=500us"}));
  std::string sent(100, 'x');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 26);
  push(pipe, sent, 0);
  uint64_t now = 0;
  std::vector<uint64_t> times;
  std::vector<size_t> sizes;
  EXPECT_EQ(drain(pipe, now, &times, &sizes), sent);
  EXPECT_GE(sizes.size(), 20u);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_GE(sizes[i], 1u);
    EXPECT_LE(sizes[i], 5u);
    if (i) {
      EXPECT_GE(times[i], times[i - 1] + 500) << "piece " << i;
    }
  }
}

TEST(ToxicPipe, BandwidthSpacesWritesToTheRate) {
  ToxicPipe pipe(Stream::downstream, 1);
  pipe.set_toxics(toxics({"bandwidth rate=1000"}));
  push(pipe, std::string(500, 'b'), 0);
  uint64_t now = 0;
  std::vector<size_t> sizes;
  EXPECT_EQ(drain(pipe, now, nullptr, &sizes).size(), 500u);
  for (size_t size : sizes) EXPECT_LE(size, 50u) << "at most 50 ms worth per write";
  EXPECT_GE(now, 450 * kMs) << "500 bytes at 1000 B/s, the first 50 at once";
}

TEST(ToxicPipe, SlowCloseDelaysTheEndNotTheData) {
  ToxicPipe pipe(Stream::upstream, 1);
  pipe.set_toxics(toxics({"slow_close delay=300ms"}));
  push(pipe, "data", 10 * kMs);
  pipe.push_end(ToxicPipe::End::eof, 10 * kMs);
  uint64_t now = 10 * kMs;
  ToxicPipe::Action a = pipe.next(now);
  ASSERT_EQ(a.kind, Kind::write) << "the data is not delayed";
  EXPECT_EQ(a.size, 4u);
  pipe.wrote(a.size, now);
  a = pipe.next(now);
  EXPECT_EQ(a.kind, Kind::wait);
  EXPECT_EQ(a.until_us, 310 * kMs);
  EXPECT_EQ(pipe.next(310 * kMs).kind, Kind::shutdown);
  pipe.set_toxics({});
  ToxicPipe reset(Stream::upstream, 1);
  reset.set_toxics(toxics({"slow_close delay=1s"}));
  reset.push_end(ToxicPipe::End::reset, 0);
  EXPECT_EQ(reset.next(999 * kMs).kind, Kind::wait) << "a reset is delayed too";
  EXPECT_EQ(reset.next(1000 * kMs).kind, Kind::reset);
}

TEST(ToxicPipe, DiscardDropsWhatIsQueuedAndWhatComes) {
  ToxicPipe pipe(Stream::upstream, 1);
  push(pipe, "lost", 0);
  pipe.discard();
  push(pipe, "also lost", 0);
  EXPECT_EQ(pipe.next(0).kind, Kind::idle);
  EXPECT_GT(pipe.room(), 0u) << "the source is still drained";
  EXPECT_FALSE(pipe.finished());
  pipe.push_end(ToxicPipe::End::eof, 0);
  EXPECT_TRUE(pipe.finished());
}

}  // namespace
}  // namespace resilink::lab
