#include "core/stream_store.h"

#include "core/errors.h"

namespace fastconv {

StreamPolicy& stream_policy() {
  static StreamPolicy policy = StreamPolicy::by_size;
  return policy;
}

void set_stream_policy(const std::string& mode) {
  if (mode == "by_size") stream_policy() = StreamPolicy::by_size;
  else if (mode == "always") stream_policy() = StreamPolicy::always;
  else if (mode == "never") stream_policy() = StreamPolicy::never;
  else fail<ValueError>("mode: expected 'by_size', 'always' or 'never', got '", mode, "'");
}

}  // namespace fastconv
