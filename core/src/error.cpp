#include "resilink/core/error.h"

#include "resilink/core/config.h"

#if RESILINK_ERROR_TEXT
#define RESILINK_TEXT(text) text
#else
#define RESILINK_TEXT(text) nullptr
#endif

namespace resilink::core {

namespace {
struct ErrorInfo {
  const char* name;
  const char* description;
  ErrorKind kind;
};
constexpr ErrorInfo kErrors[] = {
#define RESILINK_X(name, kind, text) {#name, RESILINK_TEXT(text), ErrorKind::kind},
    RESILINK_ERROR_TABLE(RESILINK_X)
#undef RESILINK_X
};
constexpr unsigned kErrorCount = sizeof(kErrors) / sizeof(kErrors[0]);

struct OutageInfo {
  const char* name;
  const char* description;
};
constexpr OutageInfo kOutages[] = {
#define RESILINK_X(name, text) {#name, RESILINK_TEXT(text)},
    RESILINK_OUTAGE_TABLE(RESILINK_X)
#undef RESILINK_X
};
constexpr unsigned kOutageCount = sizeof(kOutages) / sizeof(kOutages[0]);
}  // namespace

const char* error_name(Error e) {
  unsigned i = static_cast<unsigned>(e);
  return i < kErrorCount ? kErrors[i].name : "unknown_error";
}

const char* error_description(Error e) {
  unsigned i = static_cast<unsigned>(e);
  if (i >= kErrorCount) return "unknown error";
  return kErrors[i].description ? kErrors[i].description : kErrors[i].name;
}

ErrorKind error_kind(Error e) {
  unsigned i = static_cast<unsigned>(e);
  return i < kErrorCount ? kErrors[i].kind : ErrorKind::usage;
}

const char* outage_reason_name(OutageReason r) {
  unsigned i = static_cast<unsigned>(r);
  return i < kOutageCount ? kOutages[i].name : "unknown_reason";
}

const char* outage_reason_description(OutageReason r) {
  unsigned i = static_cast<unsigned>(r);
  if (i >= kOutageCount) return "unknown reason";
  return kOutages[i].description ? kOutages[i].description : kOutages[i].name;
}

}  // namespace resilink::core
