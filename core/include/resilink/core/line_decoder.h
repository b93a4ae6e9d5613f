// Incremental splitter of a byte stream into '\n'-terminated lines.
//
// The caller owns the line buffer; its capacity is the longest line accepted
// (not counting the '\n'). feed() stops right after each complete line so the
// caller can act on it before the next one is decoded, and reports a line that
// outgrows the buffer as soon as the first byte too many arrives: an oversize
// line never needs more memory than its limit.
#ifndef RESILINK_CORE_LINE_DECODER_H
#define RESILINK_CORE_LINE_DECODER_H

#include <stddef.h>
#include <stdint.h>

namespace resilink::core {

class LineDecoder {
 public:
  enum class Status : uint8_t {
    need_more,  // every byte given was consumed; no complete line yet
    line,       // a complete line is available through line()/length()
    too_long,   // the current line exceeds capacity; decoder must be reset
  };
  struct Result {
    Status status;
    size_t consumed;  // bytes of the input used by this call
  };

  LineDecoder(uint8_t* buffer, size_t capacity) : buffer_(buffer), capacity_(capacity) {}

  Result feed(const uint8_t* data, size_t len);

  // The last complete line, without its '\n'. Valid until the next feed(),
  // and while the bytes given to the feed() that completed it are: a line
  // that arrives whole in one feed() is not copied.
  const uint8_t* line() const { return line_; }
  size_t length() const { return line_length_; }

  // Start a new stream: forget any partial line and the stream position.
  void reset();

  // Position of the decoder in the stream, for error messages.
  uint32_t lines_completed() const { return lines_completed_; }
  uint64_t bytes_consumed() const { return bytes_consumed_; }
  // Stream offset of the first byte of the current (or last complete) line.
  uint64_t line_start() const { return line_start_; }
  size_t partial_length() const { return fill_; }
  // True while part of a line is held in the buffer (it must not change).
  bool mid_line() const { return fill_ > 0 && !line_ready_; }
  // Lends a buffer of the same capacity. Only between lines (!mid_line()):
  // the stream position is kept, the bytes of a handled line are not.
  void set_buffer(uint8_t* buffer) { buffer_ = buffer; }

 private:
  uint8_t* buffer_;
  const uint8_t* line_ = nullptr;
  size_t capacity_;
  size_t fill_ = 0;
  size_t line_length_ = 0;
  bool line_ready_ = false;
  uint32_t lines_completed_ = 0;
  uint64_t bytes_consumed_ = 0;
  uint64_t line_start_ = 0;
};

}  // namespace resilink::core

#endif
