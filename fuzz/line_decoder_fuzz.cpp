// Fuzzes core::LineDecoder: arbitrary bytes in arbitrary chunkings, every
// feed() compared with a byte-at-a-time reference decoder.
//
// Input: [capacity] [n] [n chunk sizes] [stream...]. Chunk sizes are used in
// turn, round and round; a chunk is fed repeatedly, as Engine::handle_rx
// does, until the decoder has consumed all of it. After too_long both
// decoders reset and the rest of the stream goes on as a new connection.
#include <string.h>

#include <string>
#include <vector>

#include "fuzz_support.h"
#include "resilink/core/line_decoder.h"

using resilink::core::LineDecoder;
using resilink::fuzz::FuzzInput;

namespace {

// One byte at a time: the obviously right decoder.
struct ReferenceDecoder {
  size_t capacity;
  std::string partial;
  uint32_t lines = 0;
  uint64_t offset = 0;      // bytes consumed since reset
  uint64_t line_start = 0;  // offset of the current line's first byte

  // Returns the status and sets *consumed, as LineDecoder::feed should.
  LineDecoder::Status feed(const uint8_t* data, size_t len, size_t* consumed, std::string* line) {
    for (size_t i = 0; i < len; ++i) {
      ++offset;
      if (data[i] == '\n') {
        *consumed = i + 1;
        *line = partial;
        partial.clear();
        ++lines;
        return LineDecoder::Status::line;
      }
      partial.push_back(static_cast<char>(data[i]));
      if (partial.size() > capacity) {
        *consumed = i + 1;
        return LineDecoder::Status::too_long;
      }
    }
    *consumed = len;
    return LineDecoder::Status::need_more;
  }
  void reset() {
    partial.clear();
    lines = 0;
    offset = 0;
    line_start = 0;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const size_t capacity = 1 + in.byte() % 64;
  std::vector<size_t> chunk_sizes(1 + in.byte() % 8);
  for (size_t& c : chunk_sizes) c = in.byte();  // 0 is a valid (empty) feed

  std::vector<uint8_t> buffer(capacity);
  LineDecoder decoder(buffer.data(), capacity);
  ReferenceDecoder ref{capacity, {}};

  size_t turn = 0;
  size_t empty_feeds = 0;
  while (!in.empty()) {
    size_t want = chunk_sizes[turn++ % chunk_sizes.size()];
    if (want == 0 && ++empty_feeds > 64) want = 1;  // all sizes 0: still make progress
    const uint8_t* chunk;
    size_t len = in.take(want, &chunk);
    bool first = true;
    while (first || len > 0) {  // an empty chunk is fed once
      first = false;
      std::string ref_line;
      size_t ref_consumed = 0;
      LineDecoder::Status expected = ref.feed(chunk, len, &ref_consumed, &ref_line);
      LineDecoder::Result r = decoder.feed(chunk, len);

      FUZZ_CHECK(r.consumed <= len, "consumed <= fed");
      FUZZ_CHECK(r.status == expected, "status matches the reference (too_long exactly when a line exceeds the limit)");
      FUZZ_CHECK(r.consumed == ref_consumed, "consumed matches the reference");
      FUZZ_CHECK(r.status == LineDecoder::Status::need_more ? r.consumed == len : r.consumed > 0,
                 "need_more consumes everything; line and too_long consume at least one byte");
      FUZZ_CHECK(decoder.bytes_consumed() == ref.offset, "bytes_consumed counts every consumed byte");
      FUZZ_CHECK(decoder.lines_completed() == ref.lines, "lines_completed counts every line");
      if (r.status == LineDecoder::Status::line) {
        FUZZ_CHECK(decoder.length() <= capacity, "a line is never longer than the buffer");
        FUZZ_CHECK(memchr(decoder.line(), '\n', decoder.length()) == nullptr,
                   "a line never contains '\\n'");
        FUZZ_CHECK(std::string(reinterpret_cast<const char*>(decoder.line()), decoder.length()) == ref_line,
                   "the line's bytes match the reference");
        FUZZ_CHECK(chunk[r.consumed - 1] == '\n', "a line ends at the '\\n' it consumed");
        FUZZ_CHECK(decoder.line_start() == ref.line_start, "line_start is the line's first byte");
        ref.line_start = ref.offset;
      } else if (r.status == LineDecoder::Status::too_long) {
        FUZZ_CHECK(decoder.line_start() == ref.line_start, "too_long names the oversize line's start");
        FUZZ_CHECK(ref.partial.size() == capacity + 1, "too_long at the first byte too many");
        decoder.reset();
        ref.reset();
      } else {
        FUZZ_CHECK(decoder.partial_length() == ref.partial.size(), "partial_length is the bytes held");
        FUZZ_CHECK(decoder.partial_length() <= capacity, "never holds more than the buffer");
      }
      chunk += r.consumed;
      len -= r.consumed;
    }
  }
  return 0;
}
