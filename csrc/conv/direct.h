// Direct convolution (direct.cpp, with its AVX2 row kernel in direct_avx2.cpp).
//
// A GEMM formulation of a convolution with few output channels spends most of its time moving
// the input into columns or packed panels: each packed value feeds only 2 * K flops. The direct
// kernel skips the packing. An output row is computed for a block of MR output channels at once:
// MR x (NV vectors of pixels) accumulators stay in registers while, for every input channel and
// kernel tap, NV unaligned vectors of a zero-padded input row are loaded and each is multiplied
// by MR broadcast weights. The input rows a band of output rows reads are copied, zero-padded,
// once per band.
#pragma once
#include "core/view.h"

namespace fastconv::conv::direct {

// One output row for a block of output channels. The input row that kernel row r of channel c
// reads is at in + c * ld_c + r * ld_r, zero-padded so that every vector the kernel loads is
// inside it; weights are packed [c][r][s][mr]; output channel m of the block at out + m * ld_out.
template <class T>
struct RowJob {
  const T* in;
  index_t ld_c, ld_r, C, R, S, dil_w;
  const T* w;
  T* out;
  index_t ld_out, Q, channels;  // channels <= mr are stored
  const T* bias;                // `channels` values, or null
  bool relu;
};

// The register tile (mr output channels x nv vectors of pixels) the kernel uses for Q output
// columns, and the pixels it covers per step.
struct Tile {
  int mr, pixels;
};
template <class T>
Tile row_tile(index_t Q);

// Runs one RowJob with the AVX2 kernel (the CPU must have AVX2 and FMA).
template <class T>
void run_row_avx2(const RowJob<T>& job);

}  // namespace fastconv::conv::direct
