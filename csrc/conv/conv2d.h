// Convolution geometry shared by every conv2d algorithm, and the im2col + GEMM kernels.
// Semantics follow torch.nn.functional.conv2d (cross-correlation, NCHW, groups).
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "common/conv_geometry.h"
#include "core/isa.h"
#include "core/view.h"
#include "gemm/pack.h"

namespace fastconv::conv {

// Arguments after Python has normalised them (padding may be asymmetric: 'same' with an even
// kernel puts the extra row/column at the end, as PyTorch does).
struct Conv2dParams {
  std::array<index_t, 2> stride{1, 1};
  std::array<index_t, 2> pad_begin{0, 0};  // top, left
  std::array<index_t, 2> pad_end{0, 0};    // bottom, right; negative crops the input's end
  std::array<index_t, 2> dilation{1, 1};
  index_t groups = 1;
};

// Every size of one convolution, checked for consistency on construction.
struct Conv2dShape {
  index_t N, C, H, W;  // input
  index_t K, R, S;     // weight: K x (C / groups) x R x S
  index_t P, Q;        // output
  Conv2dParams p;

  // input (N, C, H, W), weight (K, C/groups, R, S); throws ValueError naming the problem.
  Conv2dShape(const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
              const Conv2dParams& params);

  index_t groups() const { return p.groups; }
  index_t C_per_group() const { return C / p.groups; }
  index_t K_per_group() const { return K / p.groups; }
  index_t column_rows() const { return C * R * S; }  // rows of the im2col matrix
  index_t pixels() const { return P * Q; }
  std::array<index_t, 4> output_shape() const { return {N, K, P, Q}; }
  std::array<index_t, 4> input_shape() const { return {N, C, H, W}; }
  std::array<index_t, 4> weight_shape() const { return {K, C / p.groups, R, S}; }
  // A 1x1, stride-1, unpadded convolution reads its input as the column matrix itself.
  bool is_pointwise() const;
  bool is_strided() const { return p.stride[0] > 1 || p.stride[1] > 1; }
  // The filters of each stride phase, ceil(R / stride) x ceil(S / stride): the kernel a strided
  // convolution's phases convolve with at stride 1 (tiled_conv.h); R x S at stride 1.
  std::array<index_t, 2> phase_kernel() const {
    return {(R + p.stride[0] - 1) / p.stride[0], (S + p.stride[1] - 1) / p.stride[1]};
  }
};

// The algorithms behind conv2d. Each lives in its own file and provides the three kernels
// below with an `_<algo>` suffix; conv2d.cpp dispatches and refuses unsupported shapes.
enum class Algo { im2col, implicit_gemm, direct, depthwise, winograd_2x3, winograd_4x3, winograd_2x5, fft };

Algo parse_algo(const std::string& name);  // ValueError naming the choices
const char* algo_name(Algo algo);
std::vector<std::string> algorithm_names();
// Why `algo` cannot run shape `s` (e.g. "needs a 3x3 kernel"), or nullptr when it can.
const char* unsupported_reason(Algo algo, const Conv2dShape& s);
// ValueError naming the algorithm and the reason when it cannot run shape `s`.
void check_supported(Algo algo, const Conv2dShape& s);
// The algorithm whose kernel computes `algo`'s input / weight gradient of shape s: `algo` itself
// when it has one of its own, else im2col (conv2d_backward_input / _weight dispatch by it).
Algo input_gradient_kernel(Algo algo, const Conv2dShape& s);
Algo weight_gradient_kernel(Algo algo, const Conv2dShape& s);
// Whether `algo`'s transformed weight for s depends on the weight and groups alone, so that a
// cache keyed on them (ops/conv_weight_cache.py) may reuse it: not a strided Winograd's, made
// from the stride's phase filters (and cheap beside its convolution: 0.1 ms of AlexNet's conv1).
bool weight_transform_reusable(Algo algo, const Conv2dShape& s);

// Transformed weights: an algorithm that maps each filter to another domain before convolving
// (Winograd's U = G g G^T) can do it once per weight and reuse it across calls. `use` says which
// filters: the forward convolution's, or its input gradient's (rotated, channel-transposed).
enum class WeightUse { forward, input_gradient };
// FFT transforms its filters at the tile size a shape runs (weight_transform_tile: a power of
// two, chosen per input size); `tile` 0 below means that size for shape s. Winograd's
// transform depends on the weight alone, and its tile is 0.
index_t weight_transform_tile(Algo algo, const Conv2dShape& s, WeightUse use);
// Values in `algo`'s transformed weight for shape s; 0 when the algorithm has none.
index_t transformed_weight_size(Algo algo, const Conv2dShape& s, WeightUse use, index_t tile = 0);
// out (transformed_weight_size values) = `algo`'s transform of w for `use`.
template <class T>
void transform_weight(Algo algo, const Conv2dShape& s, WeightUse use, const T* w, T* out, index_t tile = 0);

// y = conv2d(x, w) + bias (nullable), then ReLU if `relu`. Overwrites y. `transformed`: w
// already transformed for (algo, WeightUse::forward), or null (then the call transforms it).
template <class T>
void conv2d_forward(Algo algo, const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y,
                    const T* transformed = nullptr);

// grad_x of conv2d. Overwrites grad_x. `transformed`: as for conv2d_forward, for
// WeightUse::input_gradient.
template <class T>
void conv2d_backward_input(Algo algo, const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x,
                           const T* transformed = nullptr);

// grad_w (and grad_bias if not null) of conv2d. Overwrites both.
template <class T>
void conv2d_backward_weight(Algo algo, const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w,
                            T* grad_bias);

// Keeps gcc from turning a function's plain loops into memset / memcpy calls: for rows of a
// few values (8x8 maps) the calls cost more than the copying.
#define FASTCONV_NO_LIBRARY_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))

// out[q] = src[q * Stride] for q in [lo, hi). The AVX2 entry shuffles 8 values per store where
// SSE2's shuffles give 4: the stride-2 and stride-4 phase copies of implicit GEMM (the 7x7/2
// stem, AlexNet's 11x11/4) were 5% of those layers.
template <index_t Stride, class T>
__attribute__((always_inline)) inline void copy_strided_body(T* __restrict out, const T* __restrict src, index_t lo,
                                                             index_t hi) {
  for (index_t q = lo; q < hi; ++q) out[q] = src[q * Stride];
}
template <index_t Stride, class T>
__attribute__((target("avx2,fma"))) FASTCONV_NO_LIBRARY_CALLS void copy_strided_avx2(T* __restrict out,
                                                                                      const T* __restrict src,
                                                                                      index_t lo, index_t hi) {
  copy_strided_body<Stride>(out, src, lo, hi);
}
template <index_t Stride, class T>
FASTCONV_NO_LIBRARY_CALLS inline void copy_strided(T* __restrict out, const T* __restrict src, index_t lo, index_t hi) {
  if (hi - lo >= 16 && active_isa() >= Isa::avx2) copy_strided_avx2<Stride>(out, src, lo, hi);
  else copy_strided_body<Stride>(out, src, lo, hi);
}

// out[0, Q) = src[q * stride] for q in [lo, hi), else 0: one output row of an im2col row,
// or one row of a stride phase (implicit_gemm.cpp). Rows
// of a few values (8x8 maps) cost more in library calls (memset, memcpy, memset) than in
// copying, so the edges and short runs are plain loops, kept from being turned back into calls.
template <class T>
FASTCONV_NO_LIBRARY_CALLS inline void copy_row_padded(T* __restrict out, const T* __restrict src, Range qs,
                                                      index_t Q, index_t stride) {
  for (index_t q = 0; q < qs.lo; ++q) out[q] = T(0);
  if (stride == 1 && qs.hi - qs.lo > 16) {
    std::memcpy(out + qs.lo, src + qs.lo, sizeof(T) * (qs.hi - qs.lo));
  } else if (stride == 1) {
    for (index_t q = qs.lo; q < qs.hi; ++q) out[q] = src[q];
  } else if (stride == 2) {  // constant strides: vectorised with shuffles
    copy_strided<2>(out, src, qs.lo, qs.hi);
  } else if (stride == 4) {  // AlexNet's conv1 (implicit GEMM's stride phases)
    copy_strided<4>(out, src, qs.lo, qs.hi);
  } else {
    for (index_t q = qs.lo; q < qs.hi; ++q) out[q] = src[q * stride];
  }
  for (index_t q = qs.hi; q < Q; ++q) out[q] = T(0);
}

// dst[i][j] = plane[top + i * step_h][left + j * step_w] for `rows` rows of `ld` values, 0
// outside the H x W plane: a zero-padded copy that kernels then read without bounds checks
// (direct, depthwise, the tiled transforms), of one stride phase when a step is above 1
// (implicit GEMM's phase planes, a strided convolution's tiled phases).
template <class T>
inline void copy_padded_rows(const T* plane, index_t H, index_t W, index_t top, index_t left, index_t rows,
                             index_t ld, T* dst, index_t step_h = 1, index_t step_w = 1) {
  const Range cols = valid_range(left, step_w, W, ld);
  for (index_t i = 0; i < rows; ++i, dst += ld) {
    const index_t h = top + i * step_h;
    const bool inside = h >= 0 && h < H;
    copy_row_padded(dst, inside ? plane + h * W + left : plane, inside ? cols : Range{0, 0}, ld, step_w);
  }
}

// Each group's weights (K/G x C/G*R*S) packed whole, once per call, for every GEMM of the call
// (im2col's chunks, implicit GEMM's bands).
template <class T>
std::vector<gemm::PackedA<T>> packed_weights(const Conv2dShape& s, const T* w) {
  const index_t G = s.groups(), Kg = s.K_per_group(), CRSg = s.column_rows() / G;
  std::vector<gemm::PackedA<T>> packed;
  for (index_t g = 0; g < G; ++g) packed.emplace_back(as_const(dense_matrix(const_cast<T*>(w) + g * Kg * CRSg, Kg, CRSg)));
  return packed;
}

// The input gradient of a stride-1 convolution is a stride-1 convolution of grad_y with these
// weights (winograd.cpp, fft.cpp, direct.cpp run it so).
// w (K, C/G, R, S) -> w' (C, K/G, R, S) with w'[g, c, k, r, s] = w[g, k, c, R-1-r, S-1-s].
template <class T>
std::vector<T> rotated_transposed_weights(const Conv2dShape& s, const T* w) {
  const index_t Kg = s.K_per_group(), Cg = s.C_per_group(), RS = s.R * s.S;
  std::vector<T> out(s.K * Cg * RS);
  for (index_t g = 0; g < s.groups(); ++g)
    for (index_t k = 0; k < Kg; ++k)
      for (index_t c = 0; c < Cg; ++c) {
        const T* src = w + ((g * Kg + k) * Cg + c) * RS;
        T* dst = out.data() + ((g * Cg + c) * Kg + k) * RS;
        for (index_t i = 0; i < RS; ++i) dst[i] = src[RS - 1 - i];
      }
  return out;
}

// --- implicit GEMM (implicit_gemm.cpp): forward only; its gradients run im2col ----------------
template <class T>
void conv2d_forward_implicit_gemm(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y);

// --- direct convolution (direct.cpp, direct.h): AVX2, stride 1 along the width; the input
// gradient runs it too when the stride is 1 (input_gradient_kernel), else im2col; the weight
// gradient has its own ---
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
// --- Winograd F(M x M, R x R): (2, 3), (4, 3), (2, 5) (winograd.cpp) ---------------------------
// `u`: the weight already transformed (winograd_transform_weight), or null.
template <int M, int R>
index_t winograd_transformed_size(const Conv2dShape& s, WeightUse use);
template <int M, int R, class T>
void winograd_transform_weight(const Conv2dShape& s, WeightUse use, const T* w, T* u);
template <int M, int R, class T>
void conv2d_backward_weight_winograd(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias);
template <int M, int R, class T>
void conv2d_forward_winograd(const Conv2dShape& s, const T* x, const T* w, const T* u, const T* bias, bool relu, T* y);
template <int M, int R, class T>
void conv2d_backward_input_winograd(const Conv2dShape& s, const T* grad_y, const T* w, const T* u, T* grad_x);

// One 2-D transform of F(M x M, 3 x 3) on `count` tiles: filter (3x3 -> alpha^2, G g G^T),
// input (alpha^2 -> alpha^2, B^T d B) or output (alpha^2 -> M^2, A^T m A); exposed for tests.
enum class WinogradCodelet { input, filter, output };
template <int M, class T>
void winograd_codelet(WinogradCodelet which, const T* in, index_t count, T* out);

// --- FFT, tiled overlap-save (fft.cpp) ----------------------------------------------------------
// `u`: the weight already transformed (fft_transform_weight at the shape's tile), or null.
constexpr index_t kFftMaxKernel = 63;  // FFT tiles are at most 64 x 64
index_t fft_weight_tile(const Conv2dShape& s, WeightUse use);
index_t fft_transformed_size(const Conv2dShape& s, WeightUse use, index_t tile);
template <class T>
void fft_transform_weight(const Conv2dShape& s, WeightUse use, index_t tile, const T* w, T* u);
template <class T>
void conv2d_forward_fft(const Conv2dShape& s, const T* x, const T* w, const T* u, const T* bias, bool relu, T* y);
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
void conv2d_forward_im2col(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y);
template <class T>
void conv2d_backward_input_im2col(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x);
template <class T>
void conv2d_backward_weight_im2col(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias);
// y = conv2d(x, w) and the weight gradient for (x, grad_y) in one pass over x's columns: both
// GEMMs read each chunk's column matrix while it is in cache (conv_transpose2d's backward).
template <class T>
void conv2d_forward_and_backward_weight_im2col(const Conv2dShape& s, const T* x, const T* w, T* y,
                                               const T* grad_y, T* grad_w);

// Sum of grad_y over batch and pixels: the bias gradient, shared by every algorithm.
template <class T>
void conv2d_bias_grad(const Conv2dShape& s, const T* grad_y, T* grad_bias);

}  // namespace fastconv::conv
