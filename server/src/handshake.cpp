#include "resilink/server/handshake.h"

#include <string.h>

#include "resilink/core/client_id.h"

namespace resilink {

IdLineReader::Result IdLineReader::feed(const uint8_t* data, size_t len) {
  if (status_ != Status::need_more || len == 0) return {status_, 0};
  core::LineDecoder::Result r = decoder_.feed(data, len);
  switch (r.status) {
    case core::LineDecoder::Status::need_more:
      break;
    case core::LineDecoder::Status::too_long:
      status_ = Status::rejected;
      error_ = core::Error::client_id_too_long;
      break;
    case core::LineDecoder::Status::line:
      error_ = core::validate_client_id(decoder_.line(), decoder_.length());
      status_ = error_ == core::Error::ok ? Status::accepted : Status::rejected;
      // A line that arrived whole points into the caller's bytes: keep a copy.
      id_length_ = decoder_.length();
      memmove(buffer_, decoder_.line(), id_length_);
      break;
  }
  return {status_, r.consumed};
}

std::string_view IdLineReader::id() const {
  if (status_ != Status::accepted) return {};
  return {reinterpret_cast<const char*>(buffer_), id_length_};
}

std::string IdLineReader::reason() const {
  if (status_ != Status::rejected) return {};
  // Too long is found before the '\n' arrives, so it has its own wording.
  if (error_ == core::Error::client_id_too_long)
    return "client id line exceeds " + std::to_string(RESILINK_MAX_ID) + " bytes";
  return std::string(core::error_description(error_)) + " (" + core::error_name(error_) + ")";
}

}  // namespace resilink
