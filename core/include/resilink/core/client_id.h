// The client id that opens every connection: `<id>\n`.
#ifndef RESILINK_CORE_CLIENT_ID_H
#define RESILINK_CORE_CLIENT_ID_H

#include <stddef.h>
#include <stdint.h>

#include "resilink/core/config.h"
#include "resilink/core/error.h"

namespace resilink::core {

// An id is 1..RESILINK_MAX_ID bytes of printable ASCII without spaces
// (0x21..0x7e), so it survives logs and the `ID<TAB>payload` stdio format.
inline Error validate_client_id(const uint8_t* id, size_t len) {
  if (len == 0) return Error::empty_client_id;
  if (len > RESILINK_MAX_ID) return Error::client_id_too_long;
  for (size_t i = 0; i < len; ++i)
    if (id[i] < 0x21 || id[i] > 0x7e) return Error::bad_client_id;
  return Error::ok;
}

}  // namespace resilink::core

#endif
