// The gemm family on CUDA: fastconv's own tiled GEMM (tiled_gemm.h: SIMT, f32 and f64;
// mma_gemm.h: tensor cores, tf32 = float operands rounded to TF32, f16, bf16) as
//   gemm_<suffix>:   C[o, i] = alpha * A[o, i] @ B[o, i] + beta * C[o, i] over a two-level batch
//                    (o, i), every operand of any strides (0 broadcasts it along a batch axis);
//   implicit_conv2d_forward_<suffix>: conv2d as the GEMM y[g] = w[g] @ cols[g] per group whose
//                    column matrix is never written: B's tile is gathered from the input with the
//                    convolution's geometry (common/conv_geometry.h), and the bias and the ReLU
//                    are applied as the tile is written.
// One block of 256 threads per output tile, looping over tiles when the grid
// is capped (fastconv/cuda/loader.py launch_blocks); the sizes were checked by the caller
// (fastconv/cuda/gemm.py, fastconv/cuda/conv.py) before any launch.
#include "common/conv_geometry.h"
#include "gemm/cuda/mma_gemm.h"
#include "gemm/cuda/precision.h"
#include "gemm/cuda/tiled_gemm.h"

using fastconv::index_t;
namespace gm = fastconv::gemm;
namespace cv = fastconv::conv;
namespace fp = fastconv::precision;

namespace fastconv::gemm {

// How a block computes its tile of C: the SIMT outer products of tiled_gemm.h (in T's own
// precision, DefaultTile<T>), or the tensor cores' products accumulated in float (mma_gemm.h:
// TF32 for float, the 16-bit instruction for half and bfloat16). Both call store(m, n, sum)
// with sum an accumulator_t<T>.
struct Simt {
  template <class T>
  using Tile = typename DefaultTile<T>::type;
  template <class T, class A, class B, class Store>
  __device__ static void tile(index_t M, index_t N, index_t K, index_t m0, index_t n0, const A& a, const B& b,
                              const Store& store) {
    gemm_tile<T, Tile<T>>(M, N, K, m0, n0, a, b, store);
  }
};

struct TensorCores {
  template <class T>
  using Tile = mma::MmaTile;
  template <class T, class A, class B, class Store>
  __device__ static void tile(index_t M, index_t N, index_t K, index_t m0, index_t n0, const A& a, const B& b,
                              const Store& store) {
    mma::mma_gemm_tile<T, mma::MmaTile>(M, N, K, m0, n0, a, b, store);
  }
};

// C(m, n) = alpha * sum + beta * C(m, n) in the accumulator's precision, stored as a T; C is not
// read when beta is 0 (BLAS's rule: a NaN already in C does not survive).
template <class T>
struct ScaledStore {
  using S = fp::accumulator_t<T>;
  T* data;
  index_t row_stride, col_stride;
  S alpha, beta;
  __device__ void operator()(index_t m, index_t n, S sum) const {
    T* c = data + m * row_stride + n * col_stride;
    *c = fp::narrow<T>(beta == S(0) ? alpha * sum : alpha * sum + beta * fp::widen(*c));
  }
};

// An operand's strides: the two batch levels, then row and column.
struct Strides {
  index_t outer, inner, row, col;
  __device__ index_t batch(index_t b, index_t inners) const { return b / inners * outer + b % inners * inner; }
};

template <class T, class Engine>
__device__ void strided_gemm(index_t outers, index_t inners, index_t M, index_t N, index_t K, const T* a, Strides as,
                             const T* b, Strides bs, T* c, Strides cs, fp::accumulator_t<T> alpha,
                             fp::accumulator_t<T> beta) {
  using Tile = typename Engine::template Tile<T>;
  const index_t count = tile_count<Tile>(outers * inners, M, N);
  for (index_t item = blockIdx.x; item < count; item += gridDim.x) {
    const TileIndex t = tile_index<Tile>(item, M, N);
    Engine::template tile<T>(M, N, K, t.m0, t.n0, StridedMatrix<T>{a + as.batch(t.batch, inners), as.row, as.col},
                             StridedMatrix<T>{b + bs.batch(t.batch, inners), bs.row, bs.col},
                             ScaledStore<T>{c + cs.batch(t.batch, inners), cs.row, cs.col, alpha, beta});
  }
}

// The column matrix of group g seen as B(k, n): k = (c * R + r) * S + s over the group's
// channels and taps, n = (image * P + p) * Q + q over the output pixels (im2col's layout,
// conv/cuda/im2col_body.h, with the images side by side); 0 in the padding. The gather divides
// six times per element, so its index arithmetic runs in `Index`: 32-bit unsigned where the
// column matrix's sizes fit (a GPU divides 64-bit integers several times slower), int64
// otherwise; addresses are int64 either way.
template <class T, class Index>
struct ImplicitColumns {
  const T* x;  // (N, C, H, W), at the group's first channel
  index_t C;
  Index R, S, P, Q;
  cv::ConvAxis h, w;
  __device__ T operator()(index_t k_, index_t n_) const {
    const Index k = static_cast<Index>(k_), n = static_cast<Index>(n_);
    const Index s = k % S, r = k / S % R, c = k / (S * R);
    const Index q = n % Q, p = n / Q % P, image = n / (P * Q);
    const index_t row = static_cast<index_t>(p) * h.stride - h.pad_begin + static_cast<index_t>(r) * h.dilation;
    const index_t col = static_cast<index_t>(q) * w.stride - w.pad_begin + static_cast<index_t>(s) * w.dilation;
    if (row < 0 || row >= h.input || col < 0 || col >= w.input) return T{};  // +0 of every T
    return x[((static_cast<index_t>(image) * C + c) * h.input + row) * w.input + col];
  }
  // Neighbouring output pixels read neighbouring input columns (at stride 1).
  __device__ bool columns_adjacent() const { return true; }
};

// y[image, k, p, q] = relu?(sum + bias[k]) for row k of the group's weight (global channel
// k_offset + k) and column n = (image * P + p) * Q + q, in the accumulator's precision, stored
// as a T.
template <class T>
struct ConvOutput {
  using S = fp::accumulator_t<T>;
  T* y;
  const T* bias;  // null: none
  index_t K, PQ, k_offset;
  int relu;
  __device__ void operator()(index_t k, index_t n, S sum) const {
    const index_t channel = k_offset + k;
    S value = bias ? sum + fp::widen(bias[channel]) : sum;
    if (relu && value < S(0)) value = S(0);  // NaN passes, as torch.relu's
    y[(n / PQ * K + channel) * PQ + n % PQ] = fp::narrow<T>(value);
  }
};

template <class T, class Engine, class Index>
__device__ void implicit_conv2d(index_t N, index_t C, index_t K, index_t groups, cv::ConvAxis h, cv::ConvAxis w,
                                index_t P, index_t Q, const T* x, const T* weight, const T* bias, T* y, int relu) {
  using Tile = typename Engine::template Tile<T>;
  const index_t group_k = K / groups, group_c = C / groups, depth = group_c * h.kernel * w.kernel;
  const index_t columns = N * P * Q, count = tile_count<Tile>(groups, group_k, columns);
  const auto narrow = [](index_t v) { return static_cast<Index>(v); };
  for (index_t item = blockIdx.x; item < count; item += gridDim.x) {
    const TileIndex t = tile_index<Tile>(item, group_k, columns);
    const StridedMatrix<T> a{weight + t.batch * group_k * depth, depth, 1};
    const ImplicitColumns<T, Index> b{x + t.batch * group_c * h.input * w.input, C, narrow(h.kernel),
                                      narrow(w.kernel), narrow(P), narrow(Q), h, w};
    Engine::template tile<T>(group_k, columns, depth, t.m0, t.n0, a, b,
                             ConvOutput<T>{y, bias, K, P * Q, t.batch * group_k, relu});
  }
}

// The 32-bit gather where every index it divides (k < depth, n < N * P * Q) fits. (The limit is
// a macro so that the host tests run the int64 gather on small shapes.)
#ifndef FASTCONV_GATHER_32BIT_LIMIT
#define FASTCONV_GATHER_32BIT_LIMIT 0xffffffffLL
#endif
template <class T, class Engine>
__device__ void implicit_conv2d_forward(index_t N, index_t C, index_t K, index_t groups, cv::ConvAxis h,
                                        cv::ConvAxis w, index_t P, index_t Q, const T* x, const T* weight,
                                        const T* bias, T* y, int relu) {
  const index_t limit = FASTCONV_GATHER_32BIT_LIMIT, depth = C / groups * h.kernel * w.kernel;
  if (depth <= limit && N * P * Q <= limit)
    implicit_conv2d<T, Engine, uint32_t>(N, C, K, groups, h, w, P, Q, x, weight, bias, y, relu);
  else
    implicit_conv2d<T, Engine, index_t>(N, C, K, groups, h, w, P, Q, x, weight, bias, y, relu);
}

}  // namespace fastconv::gemm

// Every kernel runs blocks of gemm.py's THREADS (256) threads: one per thread block of the tile.
static_assert(gm::DefaultTile<float>::type::THREADS == 256 && gm::DefaultTile<double>::type::THREADS == 256 &&
                  gm::mma::MmaTile::THREADS == 256,
              "fastconv/cuda/gemm.py launches 256 threads per block");

// T: the element type; S: alpha's and beta's (the accumulator's); ENGINE: Simt or TensorCores.
#define FASTCONV_GEMM_KERNELS(T, S, ENGINE, SUFFIX)                                                               \
  extern "C" __global__ void __launch_bounds__(256)                                                               \
      gemm_##SUFFIX(index_t outers, index_t inners, index_t M, index_t N, index_t K, const T* a, index_t a_outer, \
                    index_t a_inner, index_t a_row, index_t a_col, const T* b, index_t b_outer, index_t b_inner,  \
                    index_t b_row, index_t b_col, T* c, index_t c_outer, index_t c_inner, index_t c_row,         \
                    index_t c_col, S alpha, S beta) {                                                             \
    gm::strided_gemm<T, gm::ENGINE>(outers, inners, M, N, K, a, {a_outer, a_inner, a_row, a_col}, b,              \
                                    {b_outer, b_inner, b_row, b_col}, c, {c_outer, c_inner, c_row, c_col}, alpha, \
                                    beta);                                                                        \
  }                                                                                                               \
  extern "C" __global__ void __launch_bounds__(256) implicit_conv2d_forward_##SUFFIX(                             \
      index_t N, index_t C, index_t H, index_t W, index_t K, index_t R, index_t S_, index_t sh, index_t sw,       \
      index_t ph, index_t pw, index_t dh, index_t dw, index_t P, index_t Q, index_t groups, const T* x,            \
      const T* weight, const T* bias, T* y, int relu) {                                                           \
    gm::implicit_conv2d_forward<T, gm::ENGINE>(N, C, K, groups, {H, R, sh, ph, 0, dh}, {W, S_, sw, pw, 0, dw}, P, \
                                               Q, x, weight, bias, y, relu);                                      \
  }

FASTCONV_GEMM_KERNELS(float, float, Simt, f32)
FASTCONV_GEMM_KERNELS(double, double, Simt, f64)
// The tensor-core kernels (sm_80+), all accumulated in float: float operands rounded to TF32
// (when the caller allows it), half / bfloat16 operands multiplied as they are.
FASTCONV_GEMM_KERNELS(float, float, TensorCores, tf32)
FASTCONV_GEMM_KERNELS(fp::half, float, TensorCores, f16)
FASTCONV_GEMM_KERNELS(fp::bfloat16, float, TensorCores, bf16)
