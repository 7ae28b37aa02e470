// Where the tiled driver's transforms (tiled_conv.h) read their input patches and write their
// output tiles, lane by lane. Plain structs: the AVX2 transforms include this too.
#pragma once
#include "core/view.h"

namespace fastconv::conv::cpu::tiled {

// Lane l's input patch: alpha_h rows from origin[l], row stride ld, each readable for
// alpha_w + kReadSlack values (zero-padded planes: no bounds to check).
template <class T>
struct PatchSource {
  const T* const* origin;
  index_t ld;
};

// Lane l's output tile: its first `rows` x `cols` values go to dst (row stride ld); rows == 0
// for a lane past the block's last tile. `residual`: values added on the way (before the ReLU),
// laid out as dst, or nullptr; a call's real lanes all have one or none, the lanes past the last
// tile none (the vector stores look at their first lane: a group with a real lane starts with one).
template <class T>
struct TileTarget {
  T* dst;
  index_t rows, cols;
  const T* residual = nullptr;
};

// Every lane's output tile, with what is applied on the way: + bias (+ residual), then ReLU if asked.
template <class T>
struct TileRows {
  const TileTarget<T>* targets;
  index_t ld;
  T bias;
  bool relu;
};

// Row `row` of every lane's tile (as much of it as the lane's target has) from values[b * lanes + l].
template <class T>
inline void scatter_row(const TileRows<T>& tiles, index_t row, index_t m_w, const T* values, index_t lanes) {
  for (index_t l = 0; l < lanes; ++l) {
    const TileTarget<T>& t = tiles.targets[l];
    if (row >= t.rows) continue;
    T* dst = t.dst + row * tiles.ld;
    const T* residual = t.residual ? t.residual + row * tiles.ld : nullptr;
    for (index_t b = 0; b < t.cols && b < m_w; ++b) {
      T v = values[b * lanes + l] + tiles.bias;
      if (residual) v += residual[b];
      dst[b] = tiles.relu && v < T(0) ? T(0) : v;
    }
  }
}

constexpr index_t kReadSlack = 8;

// dst[b * 16 + l] = src.origin[l][row * src.ld + b] for b < cols (a multiple of 8): row `row`
// of 16 lanes' patches, transposed in registers (tile_io_avx2.cpp; AVX2 machines only).
void gather_row16_avx2(const PatchSource<float>& src, index_t row, index_t cols, float* dst);
// scatter_row for 16 lanes, transposed in registers; values holds round_up(m_w, 8) columns.
void scatter_row16_avx2(const TileRows<float>& tiles, index_t row, index_t m_w, const float* values);

}  // namespace fastconv::conv::cpu::tiled
