// Fused batch norm on CUDA, the CPU kernel's twin (norm/cpu/batch_norm.cpp). A channel's
// statistics are reduced by one block (a fixed tree over a fixed split of the channel's
// values, so the result is the same every run), in double; the transforms run one thread per
// element through the bodies of batch_norm_body.h, which the CPU tests run over the whole grid.
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
  __syncthreads();  // the scratch is reused by the block's next channel
}

template <class T>
__device__ void batch_stats(const T* x, index_t N, index_t C, index_t HW, double momentum, double eps,
                            T* running_mean, T* running_var, T* save_mean, T* save_invstd, double* mean,
                            double* invstd) {
  __shared__ double scratch[2 * kThreads];
  const index_t count = N * HW;
  for (index_t c = blockIdx.x; c < C; c += gridDim.x) {
    const double shift = x[c * HW];
    ShiftedSums s{0.0, 0.0};
    for (index_t j = threadIdx.x; j < count; j += blockDim.x) {
      const double d = static_cast<double>(x[channel_offset(c, j, C, HW)]) - shift;
      s.sum += d;
      s.sum_sq += d * d;
    }
    block_sum2(s.sum, s.sum_sq, scratch);
    if (threadIdx.x == 0)
      finish_batch_stats(c, s, shift, count, momentum, eps, running_mean, running_var, save_mean, save_invstd, mean,
                         invstd);
  }
}

template <class T>
__device__ void grad_sums(const T* grad_y, const T* x, const T* y, const T* gamma, const T* mean_saved,
                          const T* invstd_saved, int training, index_t N, index_t C, index_t HW, T* grad_gamma,
                          T* grad_beta, double* coefficients) {
  __shared__ double scratch[2 * kThreads];
  const index_t count = N * HW;
  for (index_t c = blockIdx.x; c < C; c += gridDim.x) {
    const double mean = mean_saved[c];
    double sum = 0.0, sum_xmu = 0.0;
    for (index_t j = threadIdx.x; j < count; j += blockDim.x) {
      const index_t i = channel_offset(c, j, C, HW);
      const double g = masked_grad(i, grad_y, y);
      sum += g;
      sum_xmu += g * (static_cast<double>(x[i]) - mean);
    }
    block_sum2(sum, sum_xmu, scratch);
    if (threadIdx.x == 0) {
      const GradCoefficients k =
          finish_grad_sums(c, sum, sum_xmu, count, gamma, invstd_saved, training != 0, grad_gamma, grad_beta);
      coefficients[3 * c] = k.k;
      coefficients[3 * c + 1] = k.k_xmu;
      coefficients[3 * c + 2] = k.k_0;
    }
  }
}

}  // namespace fastconv::norm

using fastconv::index_t;
namespace nm = fastconv::norm;

#define FASTCONV_NORM_KERNELS(T, SUFFIX)                                                                              \
  extern "C" __global__ void batch_norm_stats_##SUFFIX(const T* x, index_t N, index_t C, index_t HW, double momentum, \
                                                       double eps, T* running_mean, T* running_var, T* save_mean,     \
                                                       T* save_invstd, double* mean, double* invstd) {                \
    nm::batch_stats(x, N, C, HW, momentum, eps, running_mean, running_var, save_mean, save_invstd, mean, invstd);     \
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
  extern "C" __global__ void batch_norm_grad_sums_##SUFFIX(const T* grad_y, const T* x, const T* y, const T* gamma,   \
                                                           const T* mean, const T* invstd, int training, index_t N,   \
                                                           index_t C, index_t HW, T* grad_gamma, T* grad_beta,        \
                                                           double* coefficients) {                                    \
    nm::grad_sums(grad_y, x, y, gamma, mean, invstd, training, N, C, HW, grad_gamma, grad_beta, coefficients);       \
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
