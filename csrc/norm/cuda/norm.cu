// Fused batch norm on CUDA, the CPU kernel's twin (norm/cpu/batch_norm.cpp). A channel's sums
// are reduced in two passes, so that a few channels still fill the GPU: each channel's values
// are cut into `splits` equal ranges, one block sums each range in double (a fixed tree in
// shared memory), then one thread per channel adds its ranges' partial sums in order and
// finishes the channel. The split depends on the shape only (fastconv/cuda/norm.py), so every
// run, on every GPU, adds the same values in the same order. The transforms run one thread per
// element. The per-element and finishing code is in batch_norm_body.h, which the CPU tests run.
#include "common/grid_stride.h"
#include "norm/cuda/batch_norm_body.h"

namespace fastconv::norm {

// The most threads per block the reductions take (loader.THREADS_PER_BLOCK); any power of two
// up to it works, one thread too (the host build of the tests).
constexpr int kThreads = 256;

// Sums (a, b) over the block; the totals are valid in thread 0. `scratch` holds 2 * kThreads.
__device__ void block_sum2(double& a, double& b, double* scratch) {
  scratch[threadIdx.x] = a;
  scratch[kThreads + threadIdx.x] = b;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      scratch[threadIdx.x] += scratch[threadIdx.x + half];
      scratch[kThreads + threadIdx.x] += scratch[kThreads + threadIdx.x + half];
    }
    __syncthreads();
  }
  a = scratch[0];
  b = scratch[kThreads];
  __syncthreads();  // the scratch is reused by the block's next range
}

// Pass 1: block b sums range b % splits of channel b / splits, terms(c, i) giving the pair of
// values of the element at NCHW offset i, into partials[2b], partials[2b + 1].
template <class Terms>
__device__ void channel_partials(index_t N, index_t C, index_t HW, index_t splits, double* partials,
                                 const Terms& terms) {
  __shared__ double scratch[2 * kThreads];
  const index_t count = N * HW;
  for (index_t b = blockIdx.x; b < C * splits; b += gridDim.x) {
    const SplitRange r = split_range(b % splits, splits, count);
    const index_t c = b / splits;
    double a = 0.0, q = 0.0;
    for (index_t j = r.begin + threadIdx.x; j < r.end; j += blockDim.x) {
      const SumPair t = terms(c, channel_offset(c, j, C, HW));
      a += t.first;
      q += t.second;
    }
    block_sum2(a, q, scratch);
    if (threadIdx.x == 0) {
      partials[2 * b] = a;
      partials[2 * b + 1] = q;
    }
  }
}

}  // namespace fastconv::norm

using fastconv::index_t;
namespace nm = fastconv::norm;

#define FASTCONV_NORM_KERNELS(T, SUFFIX)                                                                              \
  /* x - shift and its square, shift = the channel's first value */                                                   \
  extern "C" __global__ void batch_norm_stats_partials_##SUFFIX(const T* x, index_t N, index_t C, index_t HW,         \
                                                                index_t splits, double* partials) {                   \
    nm::channel_partials(N, C, HW, splits, partials, [=](index_t c, index_t i) {                          \
      const double d = static_cast<double>(x[i]) - static_cast<double>(x[c * HW]);                                    \
      return nm::SumPair{d, d * d};                                                                                  \
    });                                                                                                               \
  }                                                                                                                   \
  extern "C" __global__ void batch_norm_stats_finish_##SUFFIX(const double* partials, const T* x, index_t N,          \
                                                              index_t C, index_t HW, index_t splits, double momentum, \
                                                              double eps, T* running_mean, T* running_var,            \
                                                              T* save_mean, T* save_invstd, double* mean,             \
                                                              double* invstd) {                                       \
    FASTCONV_GRID_STRIDE(c, C)                                                                                        \
    nm::finish_batch_stats(c, nm::sum_partials(partials, c, splits), x[c * HW], N * HW, momentum, eps, running_mean,  \
                           running_var, save_mean, save_invstd, mean, invstd);                                        \
  }                                                                                                                   \
  extern "C" __global__ void batch_norm_eval_stats_##SUFFIX(const T* running_mean, const T* running_var, index_t C,   \
                                                            double eps, double* mean, double* invstd) {               \
    FASTCONV_GRID_STRIDE(c, C) nm::eval_stats_body(c, running_mean, running_var, eps, mean, invstd);                  \
  }                                                                                                                   \
  extern "C" __global__ void batch_norm_apply_##SUFFIX(index_t count, index_t C, index_t HW, const T* x,              \
                                                       const T* residual, const T* gamma, const T* beta,              \
                                                       const double* mean, const double* invstd, int relu, T* y) {    \
    FASTCONV_GRID_STRIDE(i, count) nm::batch_norm_apply_body(i, C, HW, x, residual, gamma, beta, mean, invstd,       \
                                                             relu != 0, y);                                           \
  }                                                                                                                   \
  /* g (grad_y through the ReLU mask) and g * (x - mean) */                                                           \
  extern "C" __global__ void batch_norm_grad_partials_##SUFFIX(const T* grad_y, const T* x, const T* y,               \
                                                               const T* mean, index_t N, index_t C, index_t HW,       \
                                                               index_t splits, double* partials) {                    \
    nm::channel_partials(N, C, HW, splits, partials, [=](index_t c, index_t i) {                          \
      const double g = nm::masked_grad(i, grad_y, y);                                                                 \
      return nm::SumPair{g, g * (static_cast<double>(x[i]) - static_cast<double>(mean[c]))};                         \
    });                                                                                                               \
  }                                                                                                                   \
  extern "C" __global__ void batch_norm_grad_finish_##SUFFIX(const double* partials, const T* gamma,                  \
                                                             const T* invstd, int training, index_t N, index_t C,     \
                                                             index_t HW, index_t splits, T* grad_gamma,               \
                                                             T* grad_beta, double* coefficients) {                    \
    FASTCONV_GRID_STRIDE(c, C) {                                                                                      \
      const nm::SumPair s = nm::sum_partials(partials, c, splits);                                                \
      const nm::GradCoefficients k =                                                                                  \
          nm::finish_grad_sums(c, s.first, s.second, N * HW, gamma, invstd, training != 0, grad_gamma, grad_beta);      \
      coefficients[3 * c] = k.k;                                                                                      \
      coefficients[3 * c + 1] = k.k_xmu;                                                                              \
      coefficients[3 * c + 2] = k.k_0;                                                                                \
    }                                                                                                                 \
  }                                                                                                                   \
  extern "C" __global__ void batch_norm_grad_input_##SUFFIX(index_t count, index_t C, index_t HW, const T* grad_y,    \
                                                            const T* x, const T* y, const T* mean,                    \
                                                            const double* coefficients, T* grad_x,                    \
                                                            T* grad_residual) {                                       \
    FASTCONV_GRID_STRIDE(i, count) nm::batch_norm_grad_input_body(i, C, HW, grad_y, x, y, mean, coefficients,        \
                                                                  grad_x, grad_residual);                             \
  }

FASTCONV_NORM_KERNELS(float, f32)
FASTCONV_NORM_KERNELS(double, f64)
