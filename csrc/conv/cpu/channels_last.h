// The vector kernel of the channels_last convolution (channels_last.cpp), one copy per ISA
// (channels_last_avx2.cpp, channels_last_avx512.cpp over channels_last_rows.h).
//
// Direct convolution over NHWC memory, as oneDNN's NHWC kernels do it: a block of MR output
// pixels x NV vectors of output channels is summed in registers over every tap and input channel,
// each step one broadcast input value (read in place: a pixel's channels are adjacent) times a
// vector of packed weights. No column matrix and no packing of the input; the pixels of a block
// run on across output rows and images, so only the batch's last block has idle lanes.
#pragma once
#include "core/view.h"

namespace fastconv::conv::cpu::channels_last {

// A convolution of one group, in the form both the forward and the stride-1 input gradient take:
// output pixel (n, p, q) reads input pixel (n, p * sh + r * dh + top, q * sw + s * dw + left) for
// tap (r, s); outside the input, zeros.
struct Geometry {
  index_t N, H, W, C;  // input, (N, H, W, C) memory
  index_t P, Q, K;     // output, (N, P, Q, K) memory
  index_t R, S, sh, sw, dh, dw, top, left;
  // Where output pixel (n, p, q) is stored: with `placed`, pixel (p * out_sh + out_top,
  // q * out_sw + out_left) of an (N, out_H, out_W, K) array, every out_sh-th row and out_sw-th
  // column from there (a strided input gradient's sub-pixel phases); else pixel (n, p, q) of y.
  bool placed = false;
  index_t out_H = 0, out_W = 0, out_sh = 1, out_sw = 1, out_top = 0, out_left = 0;
};

// Output channels come in blocks of `block` (a multiple of the vector width; the weights are
// packed per block, zeros past K), pixels in runs of the kernel's MR.
template <class T>
struct DirectPass {
  Geometry g;
  const T* x;
  const T* packed;   // [K blocks][R * S][C][block]: weight of (tap, c) for the block's channels
  index_t block;
  const T* bias;     // [K], or null
  bool relu;
  T* y;
  const T* zero_row;  // C zeros: what a tap reads in the padding
};

// Pixel blocks [lo, hi) of every channel block (pixel block b holds pixels b * mr ...).
// The depthwise kernels (C == K, output channel k reading input channel k alone) take `packed`
// as [K blocks][R * S][block].
template <class T>
void pixels_avx2(const DirectPass<T>& pass, index_t lo, index_t hi);
template <class T>
void pixels_avx512(const DirectPass<T>& pass, index_t lo, index_t hi);
// `sources`: room for kDepthwiseSources * R * S pointers, the calling thread's.
template <class T>
void depthwise_pixels_avx2(const DirectPass<T>& pass, index_t lo, index_t hi, const T** sources);
template <class T>
void depthwise_pixels_avx512(const DirectPass<T>& pass, index_t lo, index_t hi, const T** sources);
// Output rows [lo, hi) (row n * P + p) of a depthwise convolution with unit stride and dilation
// along the width and a kernel 3 or 5 wide (depthwise_row_fits), one vector of channels per
// block (pass.block the vector width).
template <class T>
void depthwise_rows_avx2(const DirectPass<T>& pass, index_t lo, index_t hi);
template <class T>
void depthwise_rows_avx512(const DirectPass<T>& pass, index_t lo, index_t hi);
inline bool depthwise_row_fits(const Geometry& g) { return g.sw == 1 && g.dw == 1 && (g.S == 3 || g.S == 5); }
// The weight (and bias) gradient of a depthwise 3x3 convolution with multiplier 1 and unit
// stride and dilation along the width (depthwise_weight_rows_fit), over the images and channel
// vectors of `part`: sums[tap][c] and sums[9][c] (the bias's) for each of their channels c < C,
// summed per image in T (in image_sums: 10 vectors per channel vector of the part) and added into
// these doubles. `g` is the forward's, dy its output's gradient, zero_row C zeros.
struct DepthwiseWeightPart {
  index_t n_lo, n_hi, kb_lo, kb_hi;
};
template <class T>
void depthwise_weight_rows_avx2(const Geometry& g, const T* x, const T* dy, const T* zero_row,
                                const DepthwiseWeightPart& part, T* image_sums, double* sums);
template <class T>
void depthwise_weight_rows_avx512(const Geometry& g, const T* x, const T* dy, const T* zero_row,
                                  const DepthwiseWeightPart& part, T* image_sums, double* sums);
inline bool depthwise_weight_rows_fit(const Geometry& g) {
  return g.sw == 1 && g.dw == 1 && g.R == 3 && g.S == 3;
}
// The weight gradient of a dense convolution (one group; `g` the forward's): for images [lo, hi),
// sums[(k * R * S + tap) * C + c] += the sum over the image's output pixels of dy[pixel][k] times
// channel c of the tap's input pixel. Blocks of output channels (dy broadcast) by taps (vectors
// of input channels, read from a zero-padded (H, W, C) copy of the image) in registers, an
// image's sums in T, added into these doubles (the calling thread's). x and dy are NCHW with
// `nchw` (the copy transposes the image), else channels_last.
template <class T>
void weight_images_avx2(const Geometry& g, bool nchw, const T* x, const T* dy, double* sums, index_t lo, index_t hi);
template <class T>
void weight_images_avx512(const Geometry& g, bool nchw, const T* x, const T* dy, double* sums, index_t lo,
                          index_t hi);
// The depthwise kernels work on kDepthwiseBlocksAtOnce pixel blocks of at most kMaxPixelsPerBlock
// pixels at a time, and hold each one's input pixels per tap.
constexpr index_t kDepthwiseBlocksAtOnce = 4, kMaxPixelsPerBlock = 24;
constexpr index_t kDepthwiseSources = kDepthwiseBlocksAtOnce * kMaxPixelsPerBlock;
// The kernels' pixels per block and channels per block for K output channels.
template <class T>
void block_shape_avx2(index_t K, index_t* mr, index_t* block);
template <class T>
void block_shape_avx512(index_t K, index_t* mr, index_t* block);

}  // namespace fastconv::conv::cpu::channels_last
