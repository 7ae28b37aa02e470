// Direct convolution (direct.cpp, with its vector kernels in direct_rows.h, compiled by
// direct_avx2.cpp and direct_avx512.cpp).
//
// A GEMM formulation of a convolution with few output channels spends most of its time moving
// the input into columns or packed panels: each packed value feeds only 2 * K flops. The direct
// kernel skips the packing. An output row is computed for a block of MR output channels at once:
// MR x (NV vectors of pixels) accumulators stay in registers while, for every input channel and
// kernel tap, NV unaligned vectors of a zero-padded input row are loaded and each is multiplied
// by MR broadcast weights (with AVX-512, rows of 9-16 floats go two at a time where P is even,
// each weight feeding both). The input rows a band of output rows reads are copied,
// zero-padded, once per band.
//
// A stride along the width makes an output row's pixels every stride-th input value. The band
// is then copied split by column phase, as implicit GEMM's phases (implicit_gemm.cpp): phase b
// holds input columns j * stride + b, and tap s reads phase (s * dilation) % stride shifted by
// (s * dilation) / stride, so every load is again a contiguous vector. At stride 2 with rows of
// whole vectors (resnet20's 3x3/2 layer, 16 pixels; float) the band holds a plane per tap
// column instead, plane s holding columns j * 2 + s: no tap then loads a row shifted by one
// value, which split a cache line on every other load, and every row is a whole, aligned
// vector (S planes instead of two phases one value longer: 48 values per input row instead of
// 34 for a 3x3 kernel). Each tap's place in a channel's copy is in a table, one per call.
#pragma once
#include <vector>

#include "core/view.h"

namespace fastconv::conv::cpu::direct {

// A band's output rows for a block of output channels. Tap t of channel c reads the input row at
// in + c * ld_c + taps[t], zero-padded so that every vector the kernel loads is inside it;
// weights are packed [c][tap][mr]; output channel m of the block at out + m * ld_out.
template <class T>
struct RowJob {
  const T* in;
  index_t ld_c, C;
  const index_t* taps;
  index_t tap_count;
  const T* w;
  T* out;
  index_t ld_out, Q, channels;  // channels <= mr are stored
  const T* bias;                // `channels` values, or null
  bool relu;
  int mr;     // the tile's channels (row_tile), which the weights were packed for
  int lanes;  // the tile's vector width: AVX2's, or AVX-512's (whose kernels run it)
  int rows = 1;             // output rows per step: row r reads in + r * in_row_step, writes out + r * Q
  index_t in_row_step = 0;
  index_t groups = 1;       // steps of `rows` rows, one after the other: all of a band's rows in one call
};

// The register tile (mr output channels x nv vectors of pixels) the kernel uses for P x Q
// outputs and Kg output channels per group, the pixels it covers per step, its vectors' lanes
// and the output rows it covers at once. Depthwise layers (Kg = 1) take one channel and four
// vectors: a wider tile would compute zero channels. With AVX-512, its tiles (16 x 1, 8 x 2,
// 12 x 2 vectors of 16 floats) where they compute fewer padded channels and pixels than AVX2's:
// resnet20's 3x3/2 layer (32 channels of 16 pixels) as 16 x 1 instead of 6 x 2 vectors of 8, 36
// channels, and then, P being even, as 8 channels x two rows of one vector.
struct Tile {
  int mr, pixels, lanes;
  int rows = 1;  // output rows per job (P is a multiple of it)
};
template <class T>
Tile row_tile(index_t P, index_t Q, index_t Kg);

// Runs one RowJob with the AVX2 kernel (the CPU must have AVX2 and FMA), or the AVX-512 one.
template <class T>
void run_row_avx2(const RowJob<T>& job);
template <class T>
void run_row_avx512(const RowJob<T>& job);

// The weight gradient of kWeightBlock output channels against one input channel, where kernels.h's
// tap tiles do not run (weight_taps_fit fails, or there are fewer images than threads):
// sums[m][t] = sum over images and j of dy[m][j] * x[taps[t] + j], for every tap t, x being the
// input plane split by stride phase (conv2d_backward_weight_direct) and dy's rows taking its
// pitch, so that an image is one flat row. The kernel takes the taps three at a time, holding
// kWeightBlock x 3 accumulator vectors, each input vector feeding kWeightBlock of them, each
// gradient vector 3 (on AVX-512 six taps at a time); lanes are added up once at the end. dy is
// zero past Q in each row and past the last row up to a whole vector of `lanes`, so the
// columns it pads contribute nothing.
// Depthwise layers (one output channel per group) use blocks of one: zero channels in a block
// of four had made three quarters of the work.
constexpr int kWeightBlock = 4;
inline int weight_block(index_t Kg) { return Kg == 1 ? 1 : kWeightBlock; }
template <class T>
struct WeightJob {
  const T* dy;                  // image i's dy[m][j] at dy + i * ld_dy_i + m * ld_dy_m + j
  index_t ld_dy_i, ld_dy_m;
  const T* x;                   // image i's input planes at x + i * ld_x_i
  index_t ld_x_i, images;
  index_t length;               // j runs over [0, length): whole vectors, rows of one pitch in x and dy
  const index_t* taps;          // R * S offsets, [r][s]
  index_t tap_count;
  double* sums;                 // sums[m * ld_sums + t] += ..., t < tap_count
  index_t ld_sums;
  int mb;                       // channels in the block: weight_block(K / groups)
  int lanes;                    // the kernel's vector width (weight_lanes): length is whole vectors of it
};
// AVX-512's vectors where the CPU runs them, else AVX2's.
template <class T>
int weight_lanes();
template <class T>
void run_weight_avx2(const WeightJob<T>& job);
template <class T>
void run_weight_avx512(const WeightJob<T>& job);

// The kernels' entries for direct.cpp and depthwise.cpp (defined in direct.cpp). The AVX2
// kernels exist in x86 builds only; elsewhere direct_unsupported_reason refuses the algorithm
// and depthwise takes its scalar path first, so a call that still arrives there is a bug,
// reported as one.
template <class T>
void run_row_job(const RowJob<T>& job);
template <class T>
void run_weight_job(const WeightJob<T>& job);

}  // namespace fastconv::conv::cpu::direct
