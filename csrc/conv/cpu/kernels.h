// The CPU kernels of every conv2d algorithm, one file of this folder each, and the switch that
// runs the one an algorithm names (conv2d.cpp). Their arguments are checked by conv/conv.cpp.
#pragma once
#include <cstddef>

#include "conv/conv.h"
#include "core/isa.h"
#include "core/view.h"

namespace fastconv::conv::cpu {

// --- the switch over algorithms (conv2d.cpp), for conv/conv.cpp and conv_transpose: arguments
// already checked, and s a shape `algo` can run ---

// out (transformed_weight_size values) = `algo`'s transform of w for `use`.
template <class T>
void transform_weight(Algo algo, const Conv2dShape& s, WeightUse use, const T* w, T* out, index_t tile = 0);

// y = conv2d(x, w) + bias (nullable) + residual (nullable, y's shape and layout), then ReLU if
// `relu`. Overwrites y. `transformed`: w already transformed for (algo, WeightUse::forward), or
// null (then the call transforms it). The GEMM and tiled algorithms (im2col, implicit GEMM,
// Winograd, FFT) add the residual as they store each output; direct and depthwise in a pass after.
// `shuffle` > 1 (Winograd, no residual): y is the output pixel-shuffled by that factor,
// (N, K / shuffle^2, P shuffle, Q shuffle), written so directly.
template <class T>
void conv2d_forward(Algo algo, const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y,
                    const T* transformed = nullptr, const T* residual = nullptr, index_t shuffle = 1);
// dst[i] = src[i] + residual[i], then ReLU if `relu` (a NaN passes, as torch.relu), i < n:
// what an algorithm's store does with the residual, as a loop of its own (dst may be src).
template <class T>
void add_residual(const T* src, const T* residual, index_t n, bool relu, T* dst);
// The same over y[0, n) in place, spread over the threads: for a kernel computed without it.
template <class T>
void add_residual_pass(T* y, const T* residual, index_t n, bool relu);

// grad_x of conv2d, with input_gradient_kernel(algo, s)'s kernel. Overwrites grad_x.
// `transformed`: as for conv2d_forward, for WeightUse::input_gradient. `shuffle` > 1 (Winograd,
// stride 1): grad_y is the gradient of the pixel-shuffled output, read as its unshuffle.
template <class T>
void conv2d_backward_input(Algo algo, const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x,
                           const T* transformed = nullptr, index_t shuffle = 1);

// grad_w (and grad_bias if not null) of conv2d, with weight_gradient_kernel(algo, s)'s kernel.
// Overwrites both.
template <class T>
void conv2d_backward_weight(Algo algo, const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w,
                            T* grad_bias);

// grad_x, grad_w (and grad_bias if not null) of conv2d by `algo`'s gradient kernels: in one pass
// where the algorithm has one (depthwise), else the two calls above.
template <class T>
void conv2d_backward(Algo algo, const Conv2dShape& s, const T* x, const T* w, const T* grad_y, T* grad_x, T* grad_w,
                     T* grad_bias);

// --- implicit GEMM (implicit_gemm.cpp): the forward, and the input gradient where it is a stride-1
// forward (implicit_input_gradient_fits); its other gradients run im2col --------------------------
// nullptr, or why implicit GEMM cannot run `s`: a band's stride phases grow as stride^2.
const char* implicit_gemm_unsupported_reason(const Conv2dShape& s);
template <class T>
void conv2d_forward_implicit_gemm(const Conv2dShape& s, const T* x, const T* w, const T* bias, const T* residual,
                                  bool relu, T* y);
// The stride-1 input gradient of a convolution with a kernel (not 1x1) that the forward pads by
// at most (R-1)*dilation on each side: a forward convolution of grad_y with rotated weights.
inline bool implicit_input_gradient_fits(const Conv2dShape& s) {
  const index_t reach[2] = {(s.R - 1) * s.p.dilation[0], (s.S - 1) * s.p.dilation[1]};
  for (int i = 0; i < 2; ++i)
    if (s.p.pad_begin[i] > reach[i] || s.p.pad_end[i] > reach[i]) return false;
  return !s.is_strided() && !s.is_pointwise();
}
template <class T>
void conv2d_backward_input_implicit_gemm(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x);

// --- direct convolution (direct.cpp, direct.h): AVX2, any stride (phases along the width); the input
// gradient runs it too when the stride is 1 (input_gradient_kernel), else im2col; the weight
// gradient has its own (conv2d_backward_weight_taps below where it fits) ---
const char* direct_unsupported_reason(const Conv2dShape& s);
template <class T>
void conv2d_forward_direct(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y);
template <class T>
void conv2d_backward_input_direct(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x);
template <class T>
void conv2d_backward_weight_direct(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias);

// --- direct depthwise (depthwise.cpp): groups == C, any multiplier K / C ---------------------
template <class T>
void conv2d_forward_depthwise(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y);
template <class T>
void conv2d_backward_input_depthwise(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x);
template <class T>
void conv2d_backward_weight_depthwise(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias);
// Both gradients at once, reading grad_y from memory once (the two above's results, bit for bit).
template <class T>
void conv2d_backward_depthwise(const Conv2dShape& s, const T* x, const T* w, const T* grad_y, T* grad_x, T* grad_w,
                               T* grad_bias);
// --- Winograd F(M x M, R x R): (2, 3), (4, 3), (2, 5), (4, 5), (2, 7), (4, 2) (winograd.cpp) -----
// `u`: the weight already transformed (winograd_transform_weight), or null.
template <int M, int R>
index_t winograd_transformed_size(const Conv2dShape& s, WeightUse use);
template <int M, int R, class T>
void winograd_transform_weight(const Conv2dShape& s, WeightUse use, const T* w, T* u);
template <int M, int R, class T>
void conv2d_backward_weight_winograd(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias);
// `shuffle` > 1: y is the output pixel-shuffled by that factor (no residual), and grad_y the
// gradient of such an output (stride 1).
template <int M, int R, class T>
void conv2d_forward_winograd(const Conv2dShape& s, const T* x, const T* w, const T* u, const T* bias, const T* residual,
                             bool relu, T* y, index_t shuffle = 1);
template <int M, int R, class T>
void conv2d_backward_input_winograd(const Conv2dShape& s, const T* grad_y, const T* w, const T* u, T* grad_x,
                                    index_t shuffle = 1);

// One 2-D transform of F(M x M, 3 x 3) on `count` tiles: filter (3x3 -> alpha^2, G g G^T),
// input (alpha^2 -> alpha^2, B^T d B) or output (alpha^2 -> M^2, A^T m A); exposed for tests.
enum class WinogradCodelet { input, filter, output };
template <int M, class T>
void winograd_codelet(WinogradCodelet which, const T* in, index_t count, T* out);

// --- FFT, tiled overlap-save (fft.cpp) ----------------------------------------------------------
// `u`: the weight already transformed (fft_transform_weight at the shape's tile), or null.
index_t fft_weight_tile(const Conv2dShape& s, WeightUse use);
index_t fft_transformed_size(const Conv2dShape& s, WeightUse use, index_t tile);
template <class T>
void fft_transform_weight(const Conv2dShape& s, WeightUse use, index_t tile, const T* w, T* u);
template <class T>
void conv2d_forward_fft(const Conv2dShape& s, const T* x, const T* w, const T* u, const T* bias, const T* residual,
                        bool relu, T* y);
template <class T>
void conv2d_backward_input_fft(const Conv2dShape& s, const T* grad_y, const T* w, const T* u, T* grad_x);
template <class T>
void conv2d_backward_weight_fft(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias);
// Whether FFT's weight gradient pays: its per-frequency GEMMs are small (a block holds few tiles
// of many frequencies), so below 7x7 kernels or 256 channel pairs per group im2col's is faster
// (measured, 2 threads: 5x5 with 64 channels 39 ms vs 31, resnet50's 3x3 8x slower, depthwise
// 5x slower; 7x7 with 32 channels 47 vs 52 ms, 11x11 15 vs 34 ms). There it runs im2col.
inline bool fft_suits_weight_gradient(const Conv2dShape& s) {
  return s.R * s.S >= 49 && s.C_per_group() * s.K_per_group() >= 256;
}

// --- im2col + GEMM (im2col.cpp) -----------------------------------------------------------
// Largest column buffer im2col builds at once on one thread: the batch is processed in chunks
// of images, or of output-row bands of one image, that fit, so that the GEMM finds the columns
// still in cache. One output row's columns are the floor (the input gradient's, one image).
constexpr std::size_t kColumnBudgetBytes = 1u << 20;
// Largest block of column-gradient rows made at once before col2im adds it up (whole
// channels, at least one): half of a 512 KiB L2.
constexpr std::size_t kCol2imBlockBytes = 1u << 18;

template <class T>
void conv2d_forward_im2col(const Conv2dShape& s, const T* x, const T* w, const T* bias, const T* residual, bool relu,
                           T* y);
template <class T>
void conv2d_backward_input_im2col(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x);
template <class T>
void conv2d_backward_weight_im2col(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias);
// y = conv2d(x, w) and the weight gradient for (x, grad_y) in one pass over x's columns: both
// GEMMs read each chunk's column matrix while it is in cache (conv_transpose2d's backward).
template <class T>
void conv2d_forward_and_backward_weight_im2col(const Conv2dShape& s, const T* x, const T* w, T* y,
                                               const T* grad_y, T* grad_w);

// --- channels_last arrays (channels_last.cpp): im2col + GEMM over NHWC memory, the input's
// (N, H, W, C) and the output's (N, P, Q, K); any stride, padding, dilation and groups ---
template <class T>
void conv2d_forward_channels_last(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y);
template <class T>
void conv2d_backward_input_channels_last(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x);
template <class T>
void conv2d_backward_weight_channels_last(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w,
                                          T* grad_bias);

// The weight gradient of a convolution without groups by tap tiles (channels_last.h's
// weight_images): each image copied once, zero-padded, as (H, W, C); a block of output channels
// by a block of taps held in registers over one vector of input channels, dy broadcast, no
// column matrix. Direct's weight gradient, and channels_last's, where it fits (weight_taps_fit):
// 16 or more input channels (a whole AVX-512 vector) and at least 3x3 taps. Measured (Xeon,
// AVX-512, 2 threads, NCHW): conv7x7_s1 11.7 -> 8.9 ms, resnet20's 3x3/2 1.4 -> 0.65 ms, its
// 16-channel 3x3 2.1 -> 1.0 ms (Winograd's 1.2); on the AVX2 path 18.4 -> 15.8, 1.5 -> 1.0 and
// 2.5 -> 1.6 ms. x and grad_y NCHW or channels_last; false (nothing done) where it does not
// apply, and with fewer images than threads (threads take runs of images).
inline bool weight_taps_fit(const Conv2dShape& s) {
  return vector_isa() >= Isa::avx2 && s.groups() == 1 && s.C >= 16 && s.R * s.S >= 9;
}
template <class T>
bool conv2d_backward_weight_taps(const Conv2dShape& s, bool channels_last, const T* x, const T* grad_y, T* grad_w);

// Sum of grad_y over batch and pixels: the bias gradient, shared by every algorithm.
template <class T>
void conv2d_bias_grad(const Conv2dShape& s, const T* grad_y, T* grad_bias);

}  // namespace fastconv::conv::cpu
