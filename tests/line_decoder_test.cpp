#include "resilink/core/line_decoder.h"

#include <gtest/gtest.h>

#include <string>

using resilink::core::LineDecoder;

namespace {

std::string feed_all(LineDecoder& d, const std::string& in, std::vector<std::string>* lines) {
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  size_t left = in.size();
  while (left) {
    auto r = d.feed(p, left);
    p += r.consumed;
    left -= r.consumed;
    if (r.status == LineDecoder::Status::line)
      lines->emplace_back(reinterpret_cast<const char*>(d.line()), d.length());
    if (r.status == LineDecoder::Status::too_long) return "too_long";
  }
  return "ok";
}

TEST(LineDecoder, SplitsLinesAcrossChunks) {
  uint8_t buf[16];
  LineDecoder d(buf, sizeof buf);
  std::vector<std::string> lines;
  EXPECT_EQ(feed_all(d, "01hel", &lines), "ok");
  EXPECT_TRUE(lines.empty());
  EXPECT_EQ(feed_all(d, "lo\n\n02", &lines), "ok");
  EXPECT_EQ(feed_all(d, "x\n", &lines), "ok");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "01hello");
  EXPECT_EQ(lines[1], "");
  EXPECT_EQ(lines[2], "02x");
  EXPECT_EQ(d.lines_completed(), 3u);
}

TEST(LineDecoder, AcceptsLineOfExactlyCapacity) {
  uint8_t buf[4];
  LineDecoder d(buf, sizeof buf);
  std::vector<std::string> lines;
  EXPECT_EQ(feed_all(d, "abcd\n", &lines), "ok");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "abcd");
}

TEST(LineDecoder, ReportsOversizeLineAtFirstExtraByte) {
  uint8_t buf[4];
  LineDecoder d(buf, sizeof buf);
  std::vector<std::string> lines;
  EXPECT_EQ(feed_all(d, "ab", &lines), "ok");
  EXPECT_EQ(feed_all(d, "cde", &lines), "too_long");
  d.reset();
  EXPECT_EQ(feed_all(d, "ok\n", &lines), "ok");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "ok");
}

TEST(LineDecoder, EveryByteSplitGivesTheSameLines) {
  const std::string stream = "id\n\n00first\n01\n02second line\n\n";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    uint8_t buf[32];
    LineDecoder d(buf, sizeof buf);
    std::vector<std::string> lines;
    feed_all(d, stream.substr(0, cut), &lines);
    feed_all(d, stream.substr(cut), &lines);
    ASSERT_EQ(lines.size(), 6u) << "cut at " << cut;
    EXPECT_EQ(lines[2], "00first");
    EXPECT_EQ(lines[4], "02second line");
  }
}

}  // namespace
