// The soak's terminal view: redrawn in place on a terminal, plain lines
// otherwise.
#include "resilink/lab/live_view.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace resilink::lab {
namespace {

std::string contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

struct Fixture {
  uint64_t now_us = 0;
  std::string error;
  Recorder recorder{2, 1000, "", &error, [this] { return now_us; }};
  std::FILE* out = std::tmpfile();
  ~Fixture() { std::fclose(out); }
};

TEST(LiveView, OnATerminalTheTableIsRedrawnInPlace) {
  Fixture f;
  LiveView view(f.recorder, f.out, /*live=*/true, "resilink demo");
  f.recorder.link(0, End::client, true);
  view.update("1.0 s");
  std::string first = contents(f.out);
  EXPECT_EQ(count(first, "\x1b["), count(first, "\x1b[K"));  // no cursor move before the first frame
  EXPECT_NE(first.find("resilink demo  1.0 s"), std::string::npos);
  EXPECT_NE(first.find("link up at the client"), std::string::npos);  // recent events under the table
  f.recorder.fault(1, "outage-1", "outage", true, 0);
  view.update("2.0 s");
  std::string both = contents(f.out);
  // The second frame starts by moving the cursor up over the first.
  size_t lines_first = count(first, "\n");
  EXPECT_NE(both.find("\x1b[" + std::to_string(lines_first) + "F", first.size()), std::string::npos);
  EXPECT_NE(both.find("down (outage)", first.size()), std::string::npos);
}

TEST(LiveView, ElsewhereEventsArePlainLinesAndTheTableComesNowAndThen) {
  Fixture f;
  LiveView view(f.recorder, f.out, /*live=*/false, "resilink soak");
  f.recorder.link(0, End::server, true);
  f.recorder.fault(0, "outage-1", "outage", true, 10);
  view.update("0.0 s");
  f.now_us = 1'010'000;
  f.recorder.link(0, End::server, false, core::OutageReason::read_timeout);
  view.update("1.0 s");
  view.finish("done");
  std::string text = contents(f.out);
  EXPECT_EQ(text.find("\x1b["), std::string::npos);  // no terminal control codes
  EXPECT_NE(text.find("client 1: outage-1 starts"), std::string::npos);
  EXPECT_NE(text.find("the server declares the link down (read_timeout), 1000 ms after the fault began"),
            std::string::npos);
  EXPECT_EQ(count(text, "resilink soak  "), 2u);  // the first update and the finish
  EXPECT_NE(text.find("resilink soak  done"), std::string::npos);
}

}  // namespace
}  // namespace resilink::lab
