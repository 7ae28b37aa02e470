#include "core/stream_store.h"

namespace fastconv {

StreamPolicy& stream_policy() {
  static StreamPolicy policy = StreamPolicy::by_size;
  return policy;
}

}  // namespace fastconv
