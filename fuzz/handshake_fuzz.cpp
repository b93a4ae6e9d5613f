// Fuzzes the server's id-line reader (resilink::IdLineReader): arbitrary
// bytes in arbitrary chunkings, checked against what the protocol says the
// verdict must be (docs/PROTOCOL.md §1).
//
// Input: [n] [n chunk sizes] [stream...].
#include <string.h>

#include <string>
#include <vector>

#include "fuzz_support.h"
#include "resilink/core/client_id.h"
#include "resilink/server/handshake.h"

using resilink::IdLineReader;
using resilink::core::Error;
using resilink::fuzz::FuzzInput;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  std::vector<size_t> chunk_sizes(1 + in.byte() % 8);
  for (size_t& c : chunk_sizes) c = in.byte();
  const uint8_t* stream;
  const size_t stream_len = in.take(in.remaining(), &stream);

  // The verdict, from the whole stream: the first line decides.
  const void* nl = memchr(stream, '\n', stream_len);
  const size_t first_line = nl ? static_cast<size_t>(static_cast<const uint8_t*>(nl) - stream) : stream_len;
  IdLineReader::Status expected = IdLineReader::Status::need_more;
  Error expected_error = Error::ok;
  if (first_line > RESILINK_MAX_ID) {
    expected = IdLineReader::Status::rejected;
    expected_error = Error::client_id_too_long;
  } else if (nl) {
    expected_error = resilink::core::validate_client_id(stream, first_line);
    expected = expected_error == Error::ok ? IdLineReader::Status::accepted : IdLineReader::Status::rejected;
  }

  IdLineReader reader;
  size_t pos = 0;
  size_t turn = 0;
  size_t zero_feeds = 0;
  while (pos < stream_len) {
    size_t len = chunk_sizes[turn++ % chunk_sizes.size()];
    if (len == 0 && ++zero_feeds > 64) len = 1;  // all sizes 0: still make progress
    if (len > stream_len - pos) len = stream_len - pos;
    IdLineReader::Result r = reader.feed(stream + pos, len);
    FUZZ_CHECK(r.consumed <= len, "consumed <= fed");
    FUZZ_CHECK(r.status == reader.status(), "feed's status is the reader's status");
    if (r.status == IdLineReader::Status::need_more) {
      FUZZ_CHECK(r.consumed == len, "need_more consumes the whole chunk");
      FUZZ_CHECK(reader.id().empty(), "no id before acceptance");
      pos += len;
      continue;
    }
    if (r.status == IdLineReader::Status::accepted) {
      FUZZ_CHECK(expected == IdLineReader::Status::accepted, "accepts exactly a valid first line");
      std::string_view id = reader.id();
      FUZZ_CHECK(resilink::core::validate_client_id(reinterpret_cast<const uint8_t*>(id.data()), id.size()) ==
                     Error::ok,
                 "an accepted id is valid per core::validate_client_id");
      FUZZ_CHECK(id == std::string_view(reinterpret_cast<const char*>(stream), first_line),
                 "the accepted id is the bytes before the first '\\n'");
      FUZZ_CHECK(pos + r.consumed == first_line + 1,
                 "the leftover starts right after the first '\\n'");
      // The leftover (rest of this chunk, then the stream) is every byte after it.
      FUZZ_CHECK(r.consumed > 0 && stream[pos + r.consumed - 1] == '\n', "the id line ends at its '\\n'");
      IdLineReader::Result again = reader.feed(stream + pos + r.consumed, len - r.consumed);
      FUZZ_CHECK(again.status == IdLineReader::Status::accepted && again.consumed == 0,
                 "an accepted verdict stands and consumes nothing more");
      FUZZ_CHECK(reader.reason().empty(), "no rejection reason for an accepted id");
      return 0;
    }
    FUZZ_CHECK(expected == IdLineReader::Status::rejected, "rejects exactly an invalid first line");
    FUZZ_CHECK(reader.error() == expected_error, "the rejection names the right core::Error");
    FUZZ_CHECK(!reader.reason().empty(), "a rejection has a message");
    FUZZ_CHECK(reader.id().empty(), "no id after a rejection");
    if (expected_error == Error::client_id_too_long)
      FUZZ_CHECK(pos + r.consumed == RESILINK_MAX_ID + 1, "too long is seen at the first byte too many");
    else
      FUZZ_CHECK(pos + r.consumed == first_line + 1, "a bad id is judged at its '\\n'");
    return 0;
  }
  if (pos == stream_len)
    FUZZ_CHECK(expected == IdLineReader::Status::need_more, "waits for more only while the first line is incomplete");
  return 0;
}
