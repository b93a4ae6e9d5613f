// The soak's terminal view: a table of every client's link, refreshed in place
// when stdout is a terminal; plain event lines (and a status line now and
// then) when it is not, so a log or CI output stays readable.
#pragma once

#include <cstdio>
#include <string>

#include "resilink/lab/recorder.h"

namespace resilink::lab {

class LiveView {
 public:
  // live: redraw in place (ANSI); otherwise append plain lines.
  LiveView(Recorder& recorder, std::FILE* out, bool live, std::string heading);
  // Call a few times a second; `status` is shown in the heading (time, phase).
  void update(const std::string& status);
  // Leaves the last table on screen (live) or prints a final status (plain).
  void finish(const std::string& status);

 private:
  std::string table(const std::string& status) const;

  Recorder& recorder_;
  std::FILE* out_;
  bool live_;
  std::string heading_;
  int drawn_lines_ = 0;
  std::vector<std::string> recent_;  // last few events, shown under the table
  double last_plain_status_ms_ = -1e18;  // the first update prints the table
};

}  // namespace resilink::lab
