// Where the tiled driver's transforms (tiled_conv.h) read their input patches and write their
// output tiles, lane by lane. Plain structs: the AVX2 transforms include this too.
#pragma once
#include "core/view.h"

namespace fastconv::conv::tiled {

// Lane l's input patch: alpha_h rows from origin[l], row stride ld, each readable for
// alpha_w + kReadSlack values (zero-padded planes: no bounds to check).
template <class T>
struct PatchSource {
  const T* const* origin;
  index_t ld;
};

// Lane l's output tile: its first `rows` x `cols` values go to dst (row stride ld); rows == 0
// for a lane past the block's last tile.
template <class T>
struct TileTarget {
  T* dst;
  index_t rows, cols;
};

constexpr index_t kReadSlack = 8;

}  // namespace fastconv::conv::tiled
