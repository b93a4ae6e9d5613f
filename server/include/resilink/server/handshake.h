// The first thing a server reads on a new connection: the client's id line.
//
// Pure and incremental (no socket, no clock), so it can be unit-tested and
// fuzzed: Server::handshake owns the socket and the 2T deadline and feeds each
// chunk it reads here until the reader accepts or rejects.
#ifndef RESILINK_SERVER_HANDSHAKE_H
#define RESILINK_SERVER_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <string_view>

#include "resilink/core/config.h"
#include "resilink/core/error.h"
#include "resilink/core/line_decoder.h"

namespace resilink {

class IdLineReader {
 public:
  enum class Status : uint8_t {
    need_more,  // no complete id line yet: read more
    accepted,   // id() is valid; the link's bytes start at data + consumed
    rejected,   // error()/reason() say why; close the connection
  };
  struct Result {
    Status status;
    // Bytes of this chunk used. On accepted: the id line with its '\n', so
    // whatever follows in the chunk is the link's first bytes (the leftover).
    size_t consumed;
  };

  IdLineReader() = default;
  IdLineReader(const IdLineReader&) = delete;
  IdLineReader& operator=(const IdLineReader&) = delete;

  // Feeds the next chunk read from the socket. Once accepted or rejected, the
  // verdict stands and further calls consume nothing.
  Result feed(const uint8_t* data, size_t len);

  Status status() const { return status_; }
  // The accepted id (empty before acceptance).
  std::string_view id() const;
  // Why the id was rejected: client_id_too_long (the line grew past
  // RESILINK_MAX_ID before its '\n'), empty_client_id or bad_client_id.
  core::Error error() const { return error_; }
  // The rejection in words, as the server logs it after "connection from X: ".
  std::string reason() const;

 private:
  uint8_t buffer_[RESILINK_MAX_ID];
  size_t id_length_ = 0;
  core::LineDecoder decoder_{buffer_, sizeof buffer_};
  Status status_ = Status::need_more;
  core::Error error_ = core::Error::ok;
};

}  // namespace resilink

#endif
