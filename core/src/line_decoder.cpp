#include "resilink/core/line_decoder.h"

#include <string.h>

namespace resilink::core {

LineDecoder::Result LineDecoder::feed(const uint8_t* data, size_t len) {
  if (line_ready_) {  // the previous line has been handled: start a new one
    line_ready_ = false;
    fill_ = 0;
  }
  if (fill_ == 0) line_start_ = bytes_consumed_;
  const void* newline = len ? memchr(data, '\n', len) : nullptr;
  size_t take = newline ? static_cast<size_t>(static_cast<const uint8_t*>(newline) - data) : len;
  if (take > capacity_ - fill_) {
    size_t fits = capacity_ - fill_;
    bytes_consumed_ += fits + 1;
    return {Status::too_long, fits + 1};
  }
  if (newline && fill_ == 0) {
    // The whole line is in the input: hand it out from there, uncopied.
    line_ = data;
    line_length_ = take;
    line_ready_ = true;
    ++lines_completed_;
    bytes_consumed_ += take + 1;
    return {Status::line, take + 1};
  }
  memcpy(buffer_ + fill_, data, take);
  fill_ += take;
  if (!newline) {
    bytes_consumed_ += take;
    return {Status::need_more, take};
  }
  line_ = buffer_;
  line_length_ = fill_;
  line_ready_ = true;
  ++lines_completed_;
  bytes_consumed_ += take + 1;
  return {Status::line, take + 1};
}

void LineDecoder::reset() {
  fill_ = 0;
  line_length_ = 0;
  line_ready_ = false;
  lines_completed_ = 0;
  bytes_consumed_ = 0;
  line_start_ = 0;
}

}  // namespace resilink::core
