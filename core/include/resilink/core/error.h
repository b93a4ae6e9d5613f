// The core's one error enum and its outage reasons, with printable names.
//
// Errors fall into three kinds, kept apart on purpose:
//  - flow: not an error of anyone, "no room now, try again when told";
//  - usage: the caller broke an API precondition (a bug in the application);
//  - protocol: the peer sent bytes that break the wire protocol.
#ifndef RESILINK_CORE_ERROR_H
#define RESILINK_CORE_ERROR_H

#include <stdint.h>

#include "resilink/core/config.h"

namespace resilink::core {

// X(name, kind, description)
#define RESILINK_ERROR_TABLE(X)                                                      \
  X(ok, flow, "success")                                                             \
  X(would_block, flow, "no room in the window or send buffer; wait for on_writable") \
  X(link_down, flow, "the link is down; non-qos writes wait for it to come back")    \
  X(empty_payload, usage, "a message payload must not be empty")                     \
  X(payload_has_newline, usage, "a message payload must not contain '\\n'")          \
  X(payload_too_long, usage, "payload longer than RESILINK_MAX_LINE - 2 bytes")      \
  X(bad_config, usage, "engine configuration is invalid")                           \
  X(wrong_role, usage, "call not valid for this engine's role")                      \
  X(wrong_state, usage, "call not valid in the engine's current state")              \
  X(closed, usage, "the engine was closed")                                          \
  X(line_too_long, protocol, "received line longer than RESILINK_MAX_LINE")          \
  X(bad_message_id, protocol, "message id is not two hex digits")                    \
  X(malformed_line, protocol, "one-character line is neither ACK nor message")       \
  X(empty_client_id, protocol, "client id line is empty")                            \
  X(bad_client_id, protocol, "client id has a byte outside printable ASCII")         \
  X(client_id_too_long, protocol, "client id longer than RESILINK_MAX_ID")

enum class Error : uint8_t {
#define RESILINK_X(name, kind, text) name,
  RESILINK_ERROR_TABLE(RESILINK_X)
#undef RESILINK_X
};

enum class ErrorKind : uint8_t { flow, usage, protocol };

const char* error_name(Error e);
// A sentence when RESILINK_ERROR_TEXT is 1 (Linux), else the name.
const char* error_description(Error e);
ErrorKind error_kind(Error e);

// Why a link was declared down.
#define RESILINK_OUTAGE_TABLE(X)                                               \
  X(none, "link is up")                                                        \
  X(read_timeout, "nothing received for the outage timeout")                   \
  X(send_stalled, "peer took no bytes for the outage timeout (not reading?)") \
  X(peer_closed, "peer closed the connection")                                 \
  X(socket_error, "socket error reported by the driver")                       \
  X(connect_failed, "connection attempt failed")                               \
  X(protocol_error, "peer broke the protocol")                                 \
  X(replaced, "a newer connection for the same client id took over")           \
  X(closed_by_app, "closed by the application")

enum class OutageReason : uint8_t {
#define RESILINK_X(name, text) name,
  RESILINK_OUTAGE_TABLE(RESILINK_X)
#undef RESILINK_X
};

const char* outage_reason_name(OutageReason r);
const char* outage_reason_description(OutageReason r);

}  // namespace resilink::core

#endif
